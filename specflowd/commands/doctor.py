"""`specflowd doctor`: check the set-up and say how to fix what is wrong."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

import click


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
def command(as_json: bool) -> None:
    """Check git, the design-docs branch and worktree, .specflow/ exclusion, hooks, the agent CLI,
    inotify limits, systemd and the daemon. Exit 1 when something is wrong."""
    from pathlib import Path

    from specflowd.core.text import visible
    from specflowd.ops.doctor import FAIL, run_checks

    checks = run_checks(Path.cwd())
    if as_json:
        click.echo(json.dumps([asdict(c) for c in checks], indent=2))
    else:
        for c in checks:
            click.echo(f"{c.level:<4}  {c.name:<11}  {visible(c.detail)}")
            if c.fix and c.level != "ok":
                click.echo(f"{'':<4}  {'':<11}  fix: {visible(c.fix)}")
    if any(c.level == FAIL for c in checks):
        sys.exit(1)
