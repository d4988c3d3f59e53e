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

    from specflowd.core.lint import lint
    from specflowd.core.tasklist import parse
    from specflowd.repo.git import git, git_bytes

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


@command.command("post-commit")
def post_commit() -> None:
    """Turn the new commit's `Specflow-Task:` trailers into one mark request (evidence: the commit).
    Never fails the commit: with no daemon running, the request waits in the inbox."""
    from pathlib import Path

    from specflowd.commands.mark import spec_hint
    from specflowd.core.trailers import commit_tasks
    from specflowd.repo import project as projects
    from specflowd.repo.git import git
    from specflowd.views.client import drop

    cwd = Path.cwd()
    project = projects.locate(cwd)
    top = Path(git(cwd, "rev-parse", "--show-toplevel").strip()).resolve()
    if top == project.design_docs or not project.requests.is_dir():
        return  # the design-docs worktree: the daemon watches it itself
    sha = git(cwd, "rev-parse", "HEAD").strip()
    spec, tasks = commit_tasks(git(cwd, "log", "-1", "--format=%B", sha))
    if not tasks:
        return
    payload = {"id": f"commit-{sha[:16]}", "action": "mark", "tasks": tasks, "status": "done", "evidence": sha}
    spec = spec or spec_hint(project.root)
    if spec:
        payload["spec"] = spec
    drop(project, payload)
