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

    from specflowd.gitstore import git, git_bytes
    from specflowd.lint import lint
    from specflowd.progress import parse

    cwd = Path.cwd()
    staged = git(cwd, "diff", "--cached", "--name-only", "-z", "--diff-filter=AM", "--",
                 "specs/*/progress.md", "specs/*/tasks.md").split("\0")
    failed = False
    for path in filter(None, staged):
        for problem in lint(parse(git_bytes(cwd, "show", f":{path}"))):
            click.echo(f"{path}: {problem}", err=True)
            failed = True
    if failed:
        click.echo("specflowd: commit refused: fix the task list(s) above, or commit with --no-verify", err=True)
        sys.exit(1)
