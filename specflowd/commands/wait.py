"""`specflowd wait ID`: print an orchestration's feed as it lands until it ends."""

from __future__ import annotations

import sys

import click


@click.command("wait")
@click.argument("orchestration")
@click.option("--timeout", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="Give up after this long (exit 3); default: wait as long as it takes.")
def command(orchestration: str, timeout: float | None) -> None:
    """Print ORCHESTRATION's feed entries as they land, until it ends or waits for a person.

    Exit 0 completed, 1 failed or cancelled, 4 needs attention (or waits for `merge`), 3 when
    --timeout passed first."""
    from specflowd.daemon.statefile import read_one
    from specflowd.errors import UserError
    from specflowd.views.client import checked_orchestration, current_project
    from specflowd.views.progress import EXIT_CODES, follow_orchestration

    project = current_project()
    oid = checked_orchestration(orchestration)
    state = read_one(project, oid)
    if state is None:
        raise UserError(f"no orchestration {oid} in {project.root}")
    if state.status in EXIT_CODES:  # it ended (or waits for a person) already
        click.echo(f"orchestration {oid}: {state.status.value}")
        sys.exit(EXIT_CODES[state.status])
    from specflowd.repo import git

    code, _ = follow_orchestration(project, oid, click.echo, timeout,
                                   since=git.read_ref(project.common_dir, project.branch_ref))
    final = read_one(project, oid)
    click.echo(f"orchestration {oid}: {final.status.value if final else 'unknown'}"
               + (" (still running: --timeout passed)" if code == 3 else ""))
    sys.exit(code)
