"""`specflowd run`: the daemon, in the foreground (what systemd runs)."""

from __future__ import annotations

import os

import click

LEVELS = ["debug", "info", "warning", "error"]


@click.command("run")
@click.option("--project", "paths", multiple=True, type=click.Path(file_okay=False),
              help="A project to serve (repeatable; default: the current repository). Projects listed "
                   "in $XDG_CONFIG_HOME/specflowd/config.toml are served too.")
@click.option("--log-level", type=click.Choice(LEVELS), default=None,
              help="Log level (default: $SPECFLOWD_LOG_LEVEL, else [daemon] log_level of the user config, "
                   "else of the first project's, else info). Logs go to stderr.")
@click.option("--observer", type=click.Choice(["inotify", "polling"]), default="inotify", hidden=True,
              help="Filesystem watcher (polling only for benchmarks).")
def command(paths: tuple[str, ...], log_level: str | None, observer: str) -> None:
    """Serve the projects' inboxes until SIGTERM or SIGINT; SIGHUP reloads the configuration."""
    import sys

    from specflowd.daemon.main import Daemon, configure_logging, projects_to_serve
    from specflowd.daemon.notify import Notifier
    from specflowd.errors import EXIT_CONFIG, UserError
    from specflowd.repo.settings import load_config

    notifier = Notifier.from_environ()  # first: even the git run to find the projects must not inherit it
    try:
        projects = projects_to_serve(list(paths))
        # The project's setting over the user's, as for every other setting.
        configured = load_config(projects[0]).daemon.log_level
    except UserError as e:
        # Nothing to serve, or settings that do not parse: no restart fixes that (see EXIT_CONFIG).
        e.exit_code = EXIT_CONFIG
        raise
    configure_logging(log_level or os.environ.get("SPECFLOWD_LOG_LEVEL") or configured)
    daemon = Daemon(projects, notifier, observer=observer)
    sys.exit(daemon.run())
