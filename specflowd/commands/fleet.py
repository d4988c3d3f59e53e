"""`specflowd fleet`: every agent run across the projects the daemon serves."""

from __future__ import annotations

import json
import threading

import click


@click.command("fleet")
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
@click.option("--watch", is_flag=True, help="Redraw every second (Ctrl-C stops).")
def command(as_json: bool, watch: bool) -> None:
    """Project, spec, orchestration, phase, batch, the task each agent is on (with two before and
    after), run time and cost; runs waiting for a pool slot too. Reads state files only."""
    from datetime import UTC, datetime

    from specflowd.views.fleet import HEADER, gather, line, served_projects

    projects, missing = served_projects()

    def table() -> str:
        rows, problems = gather(projects, datetime.now(UTC))
        out = [HEADER, *(line(r) for r in rows)] if rows else ["no agent is running or waiting"]
        return "\n".join(out + [f"warning: {p}" for p in missing + problems])

    if as_json:
        rows, _ = gather(projects, datetime.now(UTC))
        click.echo(json.dumps(rows, indent=2))
        return
    if not watch:
        click.echo(table())
        return
    from rich.live import Live
    from rich.text import Text

    stop = threading.Event()
    try:
        with Live(Text(table()), auto_refresh=False) as live:
            while not stop.wait(1.0):
                live.update(Text(table()), refresh=True)
    except KeyboardInterrupt:
        pass
