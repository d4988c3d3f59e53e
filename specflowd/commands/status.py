"""`specflowd status [ID]`: orchestrations' phase, batches, tasks, cost and last decisions."""

from __future__ import annotations

import json
import sys

import click


@click.command("status")
@click.argument("orchestration", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the summary (and, with ID, the state) as JSON.")
@click.option("--watch", is_flag=True, help="Redraw live as the state changes (Ctrl-C stops).")
def command(orchestration: str | None, as_json: bool, watch: bool) -> None:
    """Show one orchestration in detail, or every orchestration of this project. Works from the
    state files alone; when they are gone, rebuilds them from the design-docs branch's history."""
    from datetime import UTC, datetime

    from specflowd.core.overview import details, summary
    from specflowd.core.text import visible
    from specflowd.repo import project as projects
    from specflowd.views.status import document, load, ordered, titles

    project = projects.locate().require_initialized()
    if orchestration is not None:
        from specflowd.views.client import checked_orchestration

        checked_orchestration(orchestration)
    view = None
    if project.remote_name:  # many machines: the orchestrations of the other hosts too
        from specflowd.views.shared import annotate, fleet_view, held_line, remote_line, view_states

        view = fleet_view(project)
    states, notes = load(project, orchestration, view_states(view) if view else None)
    for note in notes:
        click.echo(visible(note), err=True)
    if watch:
        from specflowd.views.live import watch as live

        live(project, orchestration, screen=sys.stdout.isatty())
        return
    now = datetime.now(UTC)
    chosen = [states[orchestration]] if orchestration else ordered(states)
    names = titles(project, {s.spec for s in chosen})
    if as_json:
        out = [document(s, now, names[s.spec]) if orchestration else summary(s, now, names[s.spec])
               for s in chosen]
        if view:
            out = [annotate(o, view, now, s) for o, s in zip(out, chosen, strict=True)]
        click.echo(json.dumps(out[0] if orchestration else out, indent=2))
        return
    if view:
        click.echo(visible(remote_line(view)) + "\n")
    if not chosen:
        click.echo("no orchestrations yet: start one with `specflowd start SPEC-ID`")
        return
    click.echo("\n\n".join(details(s, now, names[s.spec]) + (held_line(annotate(summary(s, now), view, now, s)) if view else "")
                             for s in chosen))
    sys.stdout.flush()

