"""`specflowd hooks install|uninstall`: put specflowd's git hooks in place, chaining existing ones."""

from __future__ import annotations

import click


@click.group("hooks")
def command() -> None:
    """Install or remove specflowd's git hooks (post-commit, pre-commit)."""


@command.command("install")
@click.option("--worktree", type=click.Path(exists=True, file_okay=False), default=None,
              help="A worktree of the repository (default: the current folder). Hooks are shared by all "
                   "worktrees of a repository.")
def install_command(worktree: str | None) -> None:
    """Install the hooks where git runs them (core.hooksPath is honoured). An existing hook that is
    not specflowd's is kept and run first. Running it again changes nothing."""
    from pathlib import Path

    from specflowd.ops import hooks as hookfiles
    from specflowd.repo import project as projects
    from specflowd.repo.settings import load_config

    where = Path(worktree) if worktree else Path.cwd()
    # The validated setting: the branch's name is written into the hooks' shell scripts.
    report = hookfiles.install(where, load_config(projects.locate(where)).design_docs.branch)
    if report.disabled:
        click.echo(f"note: {report.disabled}")
        return
    for name in report.chained:
        click.echo(f"kept your {name} hook: specflowd's runs it first")
    for name in report.installed:
        click.echo(f"installed {name}")
    if not report.installed:
        click.echo(f"hooks already installed in {hookfiles.hooks_dir(where)}: nothing changed")


@command.command("uninstall")
@click.option("--worktree", type=click.Path(exists=True, file_okay=False), default=None,
              help="A worktree of the repository (default: the current folder).")
def uninstall_command(worktree: str | None) -> None:
    """Remove specflowd's hooks and put back the ones they chained."""
    from pathlib import Path

    from specflowd.ops import hooks as hookfiles

    report = hookfiles.uninstall(Path(worktree) if worktree else Path.cwd())
    for name in report.removed:
        click.echo(f"removed {name}")
    for name in report.restored:
        click.echo(f"restored your {name} hook")
    if not report.removed:
        click.echo("no specflowd hooks were installed: nothing changed")
