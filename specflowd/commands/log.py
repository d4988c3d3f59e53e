"""`specflowd log`: the progress feed, read from the design-docs branch; `-f` follows it."""

from __future__ import annotations

import json
from typing import Any

import click


@click.command("log")
@click.argument("spec", required=False)
@click.option("-n", "limit", type=click.IntRange(1, None), default=50, show_default=True,
              help="How many entries to show.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new entries as they land (Ctrl-C stops).")
@click.option("--json", "as_json", is_flag=True, help="JSON: an array, or one object per line with -f.")
def command(spec: str | None, limit: int, follow: bool, as_json: bool) -> None:
    """Show marks and orchestration events, oldest first, for every spec or for SPEC."""
    from specflowd.errors import UserError
    from specflowd.repo import feed, git
    from specflowd.repo import project as projects

    project = projects.locate()
    if spec is not None:
        from specflowd.views.status import existing_spec

        existing_spec(project, spec)
    tip = git.read_ref(project.common_dir, project.branch_ref)
    if tip is None:
        raise UserError(f"no branch {project.branch} here: run `specflowd init` first")
    entries = feed.read(project, spec=spec, limit=limit, until=tip)
    if as_json and not follow:
        click.echo(json.dumps(entries, indent=2))
        return
    for entry in entries:
        click.echo(json.dumps(entry) if as_json else render(entry))
    if not follow:
        return
    from specflowd.repo.follow import follow as follow_feed

    try:
        for batch in follow_feed(project, spec, tip):
            for entry in batch:
                click.echo(json.dumps(entry) if as_json else render(entry))
    except KeyboardInterrupt:
        pass


def render(entry: dict[str, Any]) -> str:
    """One line of the feed for a terminal: everything a commit says is shown as text."""
    from specflowd.core.text import visible

    when = entry["time"].replace("T", " ")[:19]
    extra = []
    if entry.get("orchestration"):
        extra.append(f"orch {entry['orchestration']}")
    if entry.get("evidence"):
        extra.append(f"evidence {entry['evidence'][:10]}")
    if entry.get("cost_usd") is not None:
        extra.append(f"${entry['cost_usd']:.2f}")
    tail = f"  ({', '.join(extra)})" if extra else ""
    line = f"{when}  {entry['commit'][:8]}  {entry.get('spec') or '-':<20}  {entry['subject']}{tail}"
    return visible(line)
