"""`specflowd start SPEC-ID`: ask the daemon to start an orchestration of a spec."""

from __future__ import annotations

import sys
import tomllib
from typing import Any

import click

from specflowd.repo import git
from specflowd.views.client import DEFAULT_WAIT_S, checked_spec, current_project, submit, wait_option
from specflowd.views.progress import follow_orchestration


@click.command("start")
@click.argument("spec_id")
@click.option("--auto-merge/--no-auto-merge", default=None, help="Merge when verified, or wait for `merge`.")
@click.option("--skip-design", is_flag=True, default=None, help="Skip the design phase.")
@click.option("--skip-analyze", is_flag=True, default=None, help="Skip the analyze phase.")
@click.option("--base-branch", default=None, help="The branch to merge into.")
@click.option("--verify-command", default=None, help="The command that verifies the work (exit 0 passes).")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Any [orchestration] setting, or budget.per_batch|healing|total, for this orchestration; "
                   "VALUE in TOML (--set max_heal_attempts=2 --set budget.total=80).")
@click.option("--follow", is_flag=True, help="Then print the feed as it lands until it ends (exit codes as `wait`).")
@wait_option
def command(spec_id: str, auto_merge: bool | None, skip_design: bool | None, skip_analyze: bool | None,
            base_branch: str | None, verify_command: str | None, settings: tuple[str, ...], follow: bool,
            wait: float | None, as_json: bool) -> None:
    """Start an orchestration of SPEC_ID. With --wait, prints the orchestration id; with --follow,
    its feed until it ends."""
    checked_spec(spec_id)
    config: dict[str, Any] = {key: value for key, value in (
        ("auto_merge", auto_merge), ("skip_design", skip_design), ("skip_analyze", skip_analyze),
        ("base_branch", base_branch), ("verify_command", verify_command)) if value is not None}
    budget: dict[str, Any] = {}
    for item in settings:
        key, value = _setting(item)
        if key.startswith("budget."):
            budget[key.removeprefix("budget.")] = value
        else:
            config[key] = value
    payload: dict[str, Any] = {"action": "start", "spec": spec_id}
    if config:
        payload["config"] = config
    if budget:
        payload["budget"] = budget
    project = current_project()
    tip = git.read_ref(project.common_dir, project.branch_ref)
    answer = submit(project, payload, wait=wait if wait is not None or not follow else DEFAULT_WAIT_S,
                    as_json=as_json, describe=lambda r: r["orchestration"])
    if follow and answer is not None:
        code, _ = follow_orchestration(project, answer["result"]["orchestration"], click.echo, None, since=tip)
        sys.exit(code)


def _setting(item: str) -> tuple[str, Any]:
    key, eq, value = item.partition("=")
    if not eq or not key.strip():
        raise click.UsageError(f"--set {item!r}: write KEY=VALUE")
    try:
        return key.strip(), tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return key.strip(), value  # a bare word is a string
