"""`specflowd recover ID --retry/--skip/--abort`: decide for an orchestration that needs attention."""

from __future__ import annotations

from typing import Any

import click

from specflowd.views.client import (
    checked_orchestration,
    current_project,
    describe_orchestration,
    one_of,
    submit,
    wait_option,
)


@click.command("recover")
@click.argument("orchestration")
@click.option("--retry", is_flag=True, help="Run the failed step again.")
@click.option("--skip", is_flag=True, help="Skip the failed step and go on.")
@click.option("--abort", is_flag=True, help="Stop the orchestration.")
@click.option("--budget-total", type=click.FloatRange(min=0), default=None, metavar="USD",
              help="With --retry or --skip: the total budget from now on (a way on from a budget stop).")
@click.option("--budget-per-batch", type=click.FloatRange(min=0), default=None, metavar="USD",
              help="With --retry or --skip: the per-batch budget from now on.")
@click.option("--budget-healing", type=click.FloatRange(min=0), default=None, metavar="USD",
              help="With --retry or --skip: the healing budget from now on.")
@wait_option
def command(orchestration: str, retry: bool, skip: bool, abort: bool, budget_total: float | None,
            budget_per_batch: float | None, budget_healing: float | None, wait: float | None, as_json: bool) -> None:
    """Decide how orchestration ORCHESTRATION, which needs attention, goes on (one of --retry,
    --skip, --abort)."""
    choice = one_of("say how to go on, once", retry=retry, skip=skip, abort=abort)
    if choice is None:
        raise click.UsageError("say how to go on: --retry, --skip or --abort")
    budget = {key: value for key, value in (("total", budget_total), ("per_batch", budget_per_batch),
                                            ("healing", budget_healing)) if value is not None}
    if budget and choice == "abort":
        raise click.UsageError("--abort stops the orchestration: a budget would change nothing")
    payload: dict[str, Any] = {"action": "recover", "orchestration": checked_orchestration(orchestration),
                               "choice": choice}
    if budget:
        payload["budget"] = budget
    submit(current_project(), payload, wait=wait, as_json=as_json, describe=describe_orchestration)
