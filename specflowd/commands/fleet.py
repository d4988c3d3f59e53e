"""`specflowd fleet`: every agent run across the projects the daemon serves."""

from __future__ import annotations

import json
import threading
from typing import Any

import click


@click.command("fleet")
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
@click.option("--watch", is_flag=True, help="Redraw every second (Ctrl-C stops).")
@click.option("--hosts", is_flag=True, help="Many machines: every host of the fleet, what it holds, when last seen.")
def command(as_json: bool, watch: bool, hosts: bool) -> None:
    """Project, spec, orchestration, phase, batch, the task each agent is on (with two before and
    after), run time and cost; runs waiting for a pool slot too. Reads state files only; on many
    machines, also the orchestrations other hosts run and the hosts (from the remote's feed and
    lease refs, as the daemon last synced them)."""
    from datetime import UTC, datetime
    from pathlib import Path

    from specflowd.core.text import visible_lines as visible
    from specflowd.views.fleet import HEADER, gather, line, served_projects

    projects, missing = served_projects()
    shared = [p for p in projects if p.remote_name]
    if shared:
        from specflowd.views.shared import fleet_view, host_lines, hosts_now, remote_line, remote_rows

    def rows_now() -> tuple[list[dict[str, Any]], list[str], list[dict[str, Any]]]:
        """The runs, the problems, and (many machines) each shared project's view of its fleet."""
        now = datetime.now(UTC)
        rows, problems = gather(projects, now)
        views = []
        for project in shared:
            view = fleet_view(project)
            if view is None:
                continue
            for row in rows:
                if row["project"] == str(project.root):
                    row["host"] = view["host"]
            rows += remote_rows(project, view, now)
            views.append({"project": str(project.root), **view})
        return rows, problems, views

    def table() -> str:
        rows, problems, views = rows_now()
        out = [HEADER, *(line(r) for r in rows)] if rows else ["no agent is running or waiting"]
        for view in views:
            out += ["", f"{Path(view['project']).name}: {remote_line(view)}", *host_lines(view, datetime.now(UTC))]
        return visible("\n".join(out + [f"warning: {p}" for p in missing + problems]))

    if as_json:
        rows, _, views = rows_now()
        if hosts:
            click.echo(json.dumps([{"project": v["project"], "remote": v["remote"], "host": v["host"],
                                    "reachable": v.get("reachable"), "unreachable_since": v.get("unreachable_since"),
                                    "hosts": hosts_now(v, datetime.now(UTC))} for v in views], indent=2))
        else:
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
