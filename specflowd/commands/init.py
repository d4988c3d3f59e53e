"""`specflowd init`: set a repository up for specflowd."""

from __future__ import annotations

import click

from specflowd.ops.init import initialize
from specflowd.repo import project as projects


@click.command("init")
@click.option("--project", "path", type=click.Path(file_okay=False, path_type=str), default=None,
              help="The repository to set up (default: the one around the current folder).")
def command(path: str | None) -> None:
    """Create the design-docs branch (orphan) and its worktree, .specflow/ and its config, and
    install the git hooks (existing hooks are kept and chained).

    Safe to run again: what already exists is left as it is.
    """
    from pathlib import Path

    project = projects.locate(Path(path) if path else None)
    done = initialize(project)
    if not done:
        click.echo(f"{project.root} is already set up for specflowd: nothing changed.")
        return
    for line in done:
        click.echo(f"  {line}")
    click.echo(f"Ready. Add a spec with `specflowd new SPEC-ID`; specs live on branch {project.branch}.")
