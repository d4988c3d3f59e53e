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
    from pathlib import Path

    from specflowd.core.config import load_user_config
    from specflowd.core.state import utcnow
    from specflowd.errors import UserError
    from specflowd.repo.project import locate
    from specflowd.views.fleet import gather, line

    roots = [Path(p).expanduser().resolve() for p in load_user_config().projects]
    try:
        here = locate().root
        if here not in roots:
            roots.append(here)
    except UserError:
        pass
    if not roots:
        raise UserError("no projects: run it inside a project, or list projects in the user config")

    def table() -> str:
        rows, problems = gather(roots, utcnow())
        out = [line(r) for r in rows] or ["no agent is running or waiting"]
        return "\n".join(out + [f"warning: {p}" for p in problems])

    if as_json:
        rows, _ = gather(roots, utcnow())
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
