"""`specflowd new SPEC-ID`: add a spec folder from the shipped templates, as one commit."""

from __future__ import annotations

import click

from specflowd.repo import project as projects
from specflowd.views.client import checked_spec


@click.command("new")
@click.argument("spec_id")
@click.option("--title", default=None, help="A human title (default: made from the id).")
@click.option("--prompt", default=None, help="What to build; the design phase expands it into the documents.")
def command(spec_id: str, title: str | None, prompt: str | None) -> None:
    """Add specs/SPEC-ID/ (requirements.md, design.md, progress.md) on the design-docs branch."""
    from specflowd.ops.specs import create_spec

    checked_spec(spec_id)
    project = projects.locate().require_initialized()
    commit = create_spec(project, spec_id, title=title, prompt=prompt)
    click.echo(f"Created specs/{spec_id}/ on {project.branch} ({commit[:10]}).")
    click.echo(f"Edit it in {project.design_docs / 'specs' / spec_id}, then `specflowd plan {spec_id}`.")
