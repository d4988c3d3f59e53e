"""`specflowd list`: every orchestration of the project, one line each."""

from __future__ import annotations

import json

import click


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the summaries as JSON.")
def command(as_json: bool) -> None:
    """One line per orchestration: id, spec, status, phase, batch, tasks, cost, time."""
    from datetime import UTC, datetime

    from specflowd.core.overview import list_line, summary
    from specflowd.core.text import visible
    from specflowd.repo import project as projects
    from specflowd.views.status import load, ordered

    project = projects.locate().require_initialized()
    now = datetime.now(UTC)
    view = None
    if project.remote_name:  # many machines: the orchestrations of the other hosts too
        from specflowd.views.shared import annotate, fleet_view, remote_line, view_states

        view = fleet_view(project)
    found, notes = load(project, None, view_states(view) if view else None)
    for note in notes:
        click.echo(visible(note), err=True)
    states = ordered(found)
    if as_json:
        click.echo(json.dumps([annotate(summary(s, now), view, now, s) if view else summary(s, now) for s in states],
                              indent=2))
        return
    if view:
        click.echo(visible(remote_line(view)))
    for s in states:
        line = list_line(summary(s, now))
        if view:
            held = annotate(summary(s, now), view, now, s)
            line += f"  {held['host'] or '-'}" + (" (unreachable)" if held["host_unreachable"] else "")
        click.echo(line)
    if not states:
        click.echo("no orchestrations yet: start one with `specflowd start SPEC-ID`")
