"""`specflowd schema`: the JSON Schemas of requests, responses and the state file."""

from __future__ import annotations

import json

import click


@click.command("schema")
@click.argument("which", required=False, type=click.Choice(["request", "response", "state"]))
@click.option("--json", "as_json", is_flag=True, help="JSON output (the only format; accepted for symmetry).")
def command(which: str | None, as_json: bool) -> None:
    """Print the JSON Schemas (all three, or WHICH one)."""
    from specflowd.core.protocol import schemas

    found = schemas()
    click.echo(json.dumps(found[which] if which else found, indent=2))
