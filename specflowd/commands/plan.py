"""`specflowd plan`: the batches an orchestration would run, without running anything."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from specflowd.errors import UserError

if TYPE_CHECKING:
    from specflowd.core.plan import Plan


@click.command("plan")
@click.argument("target")
@click.option("--batch-size", type=click.IntRange(1, 1000), default=None,
              help="Tasks per batch when the list has no `## ` sections (default: config, else 15).")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def command(target: str, batch_size: int | None, as_json: bool) -> None:
    """Show the batches for SPEC-ID (read from the design-docs branch) or for a task-list FILE."""
    from specflowd.core import records
    from specflowd.core.plan import make_plan
    from specflowd.core.tasklist import parse

    path = Path(target)
    try:
        is_file = path.is_file()
    except OSError as e:  # a name longer than the filesystem allows, ...
        raise UserError(f"cannot read {target[:80]}…: {e.strerror}", exit_code=2) from None
    if is_file or "/" in target or target.endswith(".md"):
        try:
            data = path.read_bytes()
        except OSError as e:
            raise UserError(f"cannot read {target}: {e.strerror}") from None
        spec, file, size = path.parent.name, str(path), batch_size or 15
    else:
        from specflowd.repo import project as projects
        from specflowd.repo.designdocs import DesignDocs
        from specflowd.repo.settings import load_config

        project = projects.locate().require_initialized()
        docs = DesignDocs(project)
        snap = docs.snapshot()
        file = snap.task_file(target)
        data = snap.read(file) or b""
        spec, size = target, batch_size or load_config(project).orchestration.batch_size
        edited = docs.worktree_bytes(file)
        if edited is not None and edited != data:
            click.echo(f"note: {file} has uncommitted edits in {docs.worktree}; the plan shows the "
                       "committed version (the daemon commits hand edits once they settle)", err=True)
    plan = make_plan(parse(data), spec=spec, file=file, batch_size=size)
    if as_json:
        click.echo(records.to_json(plan))
        return
    click.echo(render(plan))


def render(plan: Plan) -> str:
    from specflowd.core.text import visible

    lines = [f"{visible(plan.spec)}: {plan.tasks_done}/{plan.tasks_total} tasks done ({visible(plan.file)})"]
    if plan.used_fallback and plan.batches:
        lines.append("no `## ` sections: fixed-size batches")
    if plan.batches:
        names = [visible(b.name) for b in plan.batches]
        width = max(map(len, names))
        lines.append("")
        lines.append(f"  #  {'batch':<{width}}  todo/all  tasks")
        for b, name in zip(plan.batches, names, strict=True):
            shown = ", ".join(b.incomplete[:8]) + (f", … (+{len(b.incomplete) - 8})" if len(b.incomplete) > 8 else "")
            lines.append(f"{b.index:>3}  {name:<{width}}  {len(b.incomplete):>4}/{len(b.task_ids):<3}  {visible(shown)}")
    for w in plan.warnings:
        lines.append(f"note: {visible(w)}")
    return "\n".join(lines)


