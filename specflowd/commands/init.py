"""`specflowd init`: set a repository up for specflowd."""

from __future__ import annotations

import click

from specflowd.ops.init import initialize
from specflowd.repo import project as projects


@click.command("init")
@click.option("--project", "path", type=click.Path(file_okay=False, path_type=str), default=None,
              help="The repository to set up (default: the one around the current folder).")
@click.option("--remote", metavar="NAME", default=None,
              help="Share the design-docs branch through this git remote, with the other clones' daemons "
                   "(README: 'Many machines'): taken from it when it has one, else pushed to it.")
def command(path: str | None, remote: str | None) -> None:
    """Create the design-docs branch (orphan) and its worktree, .specflow/ and its config, and
    install the git hooks (existing hooks are kept and chained).

    Safe to run again: what already exists is left as it is.
    """
    from pathlib import Path

    from specflowd.core.config import RemoteConfig
    from specflowd.errors import UserError

    if remote is not None:
        try:
            RemoteConfig(name=remote)
        except ValueError:
            raise UserError(f"--remote {remote!r} is not a git remote's name (letters, digits, '.', '_', '-')",
                            exit_code=2) from None
    project = projects.locate(Path(path) if path else None)
    done = initialize(project, remote)
    if not done:
        click.echo(f"{project.root} is already set up for specflowd: nothing changed.")
        return
    for line in done:
        click.echo(f"  {line}")
    click.echo(f"Ready. Add a spec with `specflowd new SPEC-ID`; specs live on branch {project.branch}.")
