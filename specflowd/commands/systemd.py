"""`specflowd systemd install`: put the user units where systemd finds them."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("systemd")
def command() -> None:
    """systemd units for running the daemon as a user service."""


@command.command("install")
@click.option("--user", "user", is_flag=True, default=True, help="Install user units (the default; no root).")
@click.option("--project", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Also list this project in the user config, so that specflowd.service serves it.")
@click.option("--dir", "target", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write the units here instead of ~/.config/systemd/user.")
def install_command(user: bool, project: Path | None, target: Path | None) -> None:
    """Write specflowd.service, specflowd@.service and specflowd@.path with ExecStart pointing at
    this specflowd; reload the user manager when it is reachable, else print what to run. With
    --project, list the project in the user config (made if need be), which specflowd.service serves."""
    from specflowd.ops import systemd as units
    from specflowd.repo.project import locate
    from specflowd.repo.settings import add_project, user_config_path

    root = locate(project).require_initialized().root if project else None
    result = units.install(target or units.user_unit_dir(), units.specflowd_executable())
    if root is not None:
        added = add_project(root)
        click.echo(f"{'listed' if added else 'already listed'} {root} in {user_config_path()}")
    for path in result.written:
        click.echo(f"wrote {path}")
    if not result.written:
        click.echo("units already up to date")
    click.echo("user manager reloaded" if result.reloaded else "no user manager reachable from here; run:")
    for line in result.next_steps:
        click.echo(f"  {line}")
