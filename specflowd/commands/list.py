"""`specflowd list`: the project's orchestrations, one line each."""

from __future__ import annotations

import json

import click

from specflowd.core.overview import RECENT


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the summaries as JSON.")
@click.option("-n", "--limit", type=click.IntRange(min=0), default=None,
              help=f"How many of the ended orchestrations to show, newest first (default {RECENT}).")
@click.option("--all", "show_all", is_flag=True, help="Every ended orchestration, however many.")
def command(as_json: bool, limit: int | None, show_all: bool) -> None:
    """One line per orchestration: id, spec, status, phase, batch, tasks, cost, time. Every active
    orchestration, then the most recent that ended (`--all` for all of them)."""
    from datetime import UTC, datetime

    from specflowd.core.overview import list_line, listing
    from specflowd.core.text import visible
    from specflowd.repo import project as projects
    from specflowd.views.status import load

    project = projects.locate().require_initialized()
    now = datetime.now(UTC)
    states, ended, notes = load(project)
    for note in notes:
        click.echo(visible(note), err=True)
    view = None
    if project.remote_name:  # many machines: the other hosts' orchestrations too, and who runs each
        from specflowd.views import shared

        view = shared.fleet_view(project)
        if view:
            states = shared.with_fleet(states, ended, view)
    rows, left_out = listing(states, ended, now, None if show_all else RECENT if limit is None else limit)
    if view:
        rows = shared.annotate_all(rows, states, view, now)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if view:
        click.echo(visible(shared.remote_line(view)))
    for row in rows:
        click.echo(list_line(row) + (shared.host_suffix(row) if view else ""))
    if left_out:
        click.echo(f"… and {left_out} older: `specflowd list --all` shows them")
    if not rows and not left_out:
        click.echo("no orchestrations yet: start one with `specflowd start SPEC-ID`")
