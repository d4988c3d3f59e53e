"""`specflowd hook NAME`: the work behind the git hook scripts (they call it only when needed)."""

from __future__ import annotations

import sys

import click


@click.group("hook", hidden=True)
def command() -> None:
    """Run by specflowd's git hooks; not meant to be typed."""


@command.command("pre-commit")
def pre_commit() -> None:
    """Refuse a design-docs commit whose staged task lists no longer parse."""
    from pathlib import Path

    from specflowd.core.text import visible
    from specflowd.ops.hooks import staged_problems

    problems = staged_problems(Path.cwd())
    for problem in problems:
        click.echo(visible(problem), err=True)
    if problems:
        click.echo("specflowd: commit refused: fix the task list(s) above, or commit with --no-verify", err=True)
        sys.exit(1)


@command.command("post-commit")
def post_commit() -> None:
    """Turn the new commit's `Specflow-Task:` trailers into one mark request (evidence: the commit).
    Never fails the commit: with no daemon running, the request waits in the inbox."""
    from pathlib import Path

    from specflowd.ops.hooks import deliver_trailers

    deliver_trailers(Path.cwd())
