"""`specflowd status [ID]`: orchestrations' phase, batches, tasks, cost and last decisions."""

from __future__ import annotations

import json
import sys

import click


@click.command("status")
@click.argument("orchestration", required=False)
@click.option("--json", "as_json", is_flag=True,
              help="Print the summaries (with ID: the summary and the whole state) as JSON.")
@click.option("--watch", is_flag=True, help="Redraw live as the state changes (Ctrl-C stops).")
def command(orchestration: str | None, as_json: bool, watch: bool) -> None:
    """Show one orchestration in detail, or every active one (and the most recent that ended;
    `specflowd list` shows the rest). Works from the state files alone; when the file of ID was lost,
    rebuilds ID from its commits on the design-docs branch."""
    from datetime import UTC, datetime

    from specflowd.core.overview import RECENT, details, listing, summary
    from specflowd.core.text import visible
    from specflowd.repo import project as projects
    from specflowd.views.status import document, load, load_one, newest_ended, titles

    project = projects.locate().require_initialized()
    if orchestration is not None:
        from specflowd.views.client import checked_orchestration

        checked_orchestration(orchestration)
    if watch:
        from specflowd.views.live import watch as live

        if orchestration is not None:
            load_one(project, orchestration)  # an unknown id is refused before the screen is taken
        live(project, orchestration, screen=sys.stdout.isatty())
        return
    now = datetime.now(UTC)
    view = None
    if project.remote_name:  # many machines: the other hosts' orchestrations too
        from specflowd.views import shared

        view = shared.fleet_view(project)
    if orchestration is not None:
        state, notes = shared.load_one(project, orchestration, view) if view else load_one(project, orchestration)
        for note in notes:
            click.echo(visible(note), err=True)
        names = titles(project, {state.spec})
        if as_json:
            out = document(state, now, names[state.spec])
            click.echo(json.dumps(shared.annotate(out, view, now, state) if view else out, indent=2))
        else:
            click.echo(details(state, now, names[state.spec]) + (shared.held_line(
                shared.annotate(summary(state, now), view, now, state)) if view else ""))
        return
    states, ended, notes = load(project)
    for note in notes:
        click.echo(visible(note), err=True)
    if view:
        states = shared.with_fleet(states, ended, view)
    if as_json:
        rows = listing(states, ended, now, RECENT)[0]
        click.echo(json.dumps(shared.annotate_all(rows, states, view, now) if view else rows, indent=2))
        return
    if view:
        click.echo(visible(shared.remote_line(view)) + "\n")
    chosen = sorted((s for s in states.values() if s.active), key=lambda s: s.created_at)
    if not chosen and (last := newest_ended(project, states, ended)) is not None:
        chosen = [last]
    if not chosen:
        click.echo("no orchestrations yet: start one with `specflowd start SPEC-ID`")
        return
    names = titles(project, {s.spec for s in chosen})
    click.echo("\n\n".join(details(s, now, names[s.spec]) + (shared.held_line(
        shared.annotate(summary(s, now), view, now, s)) if view else "") for s in chosen))
    others = len(states) + len(ended) - len(chosen)
    if others:
        click.echo(f"\n{others} more orchestration{'s' if others != 1 else ''} ended: `specflowd list` shows them")
    sys.stdout.flush()
