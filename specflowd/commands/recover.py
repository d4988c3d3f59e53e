"""`specflowd recover ID --retry/--skip/--abort`: decide for an orchestration that needs attention."""

from __future__ import annotations

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
@wait_option
def command(orchestration: str, retry: bool, skip: bool, abort: bool, wait: float | None, as_json: bool) -> None:
    """Decide how orchestration ORCHESTRATION, which needs attention, goes on (one of --retry,
    --skip, --abort)."""
    choice = one_of("say how to go on, once", retry=retry, skip=skip, abort=abort)
    if choice is None:
        raise click.UsageError("say how to go on: --retry, --skip or --abort")
    submit(current_project(),
           {"action": "recover", "orchestration": checked_orchestration(orchestration), "choice": choice},
           wait=wait, as_json=as_json, describe=describe_orchestration)
