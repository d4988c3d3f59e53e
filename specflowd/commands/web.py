"""`specflowd web`: a read-only live page of the fleet in the browser."""

from __future__ import annotations

import click


@click.command("web")
@click.option("--bind", default="127.0.0.1", show_default=True,
              help="The address to listen on. Anything but loopback lets anyone who reaches it read the "
                   "fleet: prefer an SSH tunnel (README).")
@click.option("--port", type=click.IntRange(0, 65535), default=8470, show_default=True,
              help="The port (0: any free one; the address is printed).")
def command(bind: str, port: int) -> None:
    """Serve the page of every project the daemon serves (this one and the user config's): each
    orchestration with its batches, tasks, budgets and decisions, each agent at work, the feed.
    Pushed live (server-sent events on inotify); read only. Ctrl-C stops."""
    import contextlib
    import logging
    import signal
    import socket
    import sys

    from specflowd.views.board import Board
    from specflowd.views.fleet import served_projects
    from specflowd.views.web import is_loopback, open_server, serve, url_of

    projects, missing = served_projects()
    for why in missing:
        click.echo(f"warning: {why}", err=True)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    board = Board(projects, socket.gethostname(), missing)
    server = open_server(board, bind, port)
    if not is_loopback(bind):
        click.echo(f"warning: listening on {bind}: anyone who can reach it can read every served project's "
                   "fleet; prefer --bind 127.0.0.1 and an SSH tunnel", err=True)
    click.echo(f"specflowd web: {url_of(server)} ({len(projects)} project{'s' * (len(projects) != 1)}, "
               "read only; Ctrl-C stops)")
    sys.stdout.flush()

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    with contextlib.suppress(KeyboardInterrupt):
        serve(server)
