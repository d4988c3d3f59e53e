"""`specflowd demo [NAME]`: the whole product, end to end, in a throw-away folder."""

from __future__ import annotations

import sys

import click


@click.command("demo")
@click.argument("name", required=False, default="hello")
@click.option("--list", "listing", is_flag=True, help="List the examples there are, and what each shows.")
@click.option("--dir", "folder", type=click.Path(file_okay=False), default=None,
              help="Where to build the throw-away project (default: a new temporary folder, kept).")
def command(name: str, listing: bool, folder: str | None) -> None:
    """Create a repository with an example spec (NAME, default `hello`: 12 tasks in 3 sections, one
    of which fails once and is healed), run a daemon with the built-in demo agent, start an
    orchestration, verify, merge, and print the feed as it lands."""
    import tempfile
    from pathlib import Path

    from specflowd.errors import UserError
    from specflowd.ops.demo import SCENARIOS, run

    if listing:
        for scenario in SCENARIOS.values():
            click.echo(f"{scenario.name:<8} {scenario.about}")
        return
    if name not in SCENARIOS:
        raise UserError(f"no demo {name!r}: there are {', '.join(SCENARIOS)} (`specflowd demo --list`)")
    where = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="specflowd-demo-"))
    sys.exit(run(where.resolve(), click.echo, SCENARIOS[name]))
