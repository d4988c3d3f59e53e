"""`specflowd start SPEC-ID`: ask the daemon to start an orchestration of a spec."""

from __future__ import annotations

import tomllib
from typing import Any

import click

from specflowd.core import ids
from specflowd.errors import UserError
from specflowd.views.client import current_project, submit, wait_option


@click.command("start")
@click.argument("spec_id")
@click.option("--auto-merge/--no-auto-merge", default=None, help="Merge when verified, or wait for `merge`.")
@click.option("--skip-design", is_flag=True, default=None, help="Skip the design phase.")
@click.option("--skip-analyze", is_flag=True, default=None, help="Skip the analyze phase.")
@click.option("--base-branch", default=None, help="The branch to merge into.")
@click.option("--verify-command", default=None, help="The command that verifies the work (exit 0 passes).")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Any [orchestration] setting, VALUE in TOML (--set max_heal_attempts=2).")
@wait_option
def command(spec_id: str, auto_merge: bool | None, skip_design: bool | None, skip_analyze: bool | None,
            base_branch: str | None, verify_command: str | None, settings: tuple[str, ...],
            wait: float | None, as_json: bool) -> None:
    """Start an orchestration of SPEC_ID. With --wait, prints the orchestration id."""
    try:
        ids.check_spec_id(spec_id)
    except ValueError as e:
        raise UserError(str(e), exit_code=2) from None
    config: dict[str, Any] = {key: value for key, value in (
        ("auto_merge", auto_merge), ("skip_design", skip_design), ("skip_analyze", skip_analyze),
        ("base_branch", base_branch), ("verify_command", verify_command)) if value is not None}
    for item in settings:
        config.update(_setting(item))
    payload: dict[str, Any] = {"action": "start", "spec": spec_id}
    if config:
        payload["config"] = config
    submit(current_project(), payload, wait=wait, as_json=as_json, describe=lambda r: r["orchestration"])


def _setting(item: str) -> dict[str, Any]:
    key, eq, value = item.partition("=")
    if not eq or not key.strip():
        raise click.UsageError(f"--set {item!r}: write KEY=VALUE")
    try:
        return {key.strip(): tomllib.loads(f"v = {value}")["v"]}
    except tomllib.TOMLDecodeError:
        return {key.strip(): value}  # a bare word is a string
