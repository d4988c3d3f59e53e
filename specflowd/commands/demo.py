"""`specflowd demo`: the whole product, end to end, in a throw-away folder."""

from __future__ import annotations

import sys

import click


@click.command("demo")
@click.option("--dir", "folder", type=click.Path(file_okay=False), default=None,
              help="Where to build the throw-away project (default: a new temporary folder, kept).")
def command(folder: str | None) -> None:
    """Create a repository with a 12-task spec, run a daemon with the built-in demo agent, start an
    orchestration (one batch fails once and is healed), verify, merge, and print the feed."""
    import tempfile
    from pathlib import Path

    from specflowd.ops.demo import run

    where = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="specflowd-demo-"))
    sys.exit(run(where.resolve(), click.echo))
