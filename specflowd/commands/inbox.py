"""`specflowd inbox [drop ID]`: the requests still waiting for a daemon, and dropping one of them."""

from __future__ import annotations

import json

import click


@click.group("inbox", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the waiting requests as JSON.")
@click.pass_context
def command(ctx: click.Context, as_json: bool) -> None:
    """List the requests no daemon has answered yet (oldest first): a `start` dropped while no
    daemon ran fires whenever one starts, so look here before you start one."""
    if ctx.invoked_subcommand is not None:
        return
    from specflowd.core.text import visible
    from specflowd.views.client import current_project
    from specflowd.views.inbox import pending

    waiting = pending(current_project())
    if as_json:
        click.echo(json.dumps(waiting, indent=2))
        return
    if not waiting:
        click.echo("no request is waiting")
        return
    for r in waiting:
        what = r["problem"] or " ".join(f"{k}={v}" for k, v in r["fields"].items())
        click.echo(visible(f"{r['id']:<40} {r['action'] or '?':<8} {int(r['age_s']):>6}s  {what}"))


@command.command("drop")
@click.argument("request_id")
def drop_command(request_id: str) -> None:
    """Remove the waiting request REQUEST_ID (its id, or its file name), unanswered."""
    from specflowd.core.text import visible
    from specflowd.views.client import current_project
    from specflowd.views.inbox import drop_pending

    path = drop_pending(current_project(), request_id)
    click.echo(visible(f"dropped {path.name}: it will not be answered"))
