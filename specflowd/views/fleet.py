"""The fleet: every agent run across the projects a user's daemon serves, read from state files."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from specflowd.core.overview import cut, duration, window
from specflowd.core.state import OrchestrationState
from specflowd.core.text import visible
from specflowd.core.vocab import FINISHED
from specflowd.daemon.statefile import read_current
from specflowd.errors import UserError
from specflowd.repo.project import Project, locate
from specflowd.repo.settings import listed_projects
from specflowd.views.status import titles


def runs(state: OrchestrationState, project: Path, now: datetime,
         titles: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The orchestration's unfinished agent runs: running ones, and those waiting for a pool slot;
    each with the task it is on and the two before and after it, described."""
    out = []
    for run in state.runs:
        if run.ended_at is not None:
            continue
        batch = next((b for b in state.batches if b.index == run.batch), None)
        tasks = batch.task_ids if batch else []
        current = next((t for t in tasks if state.task_status.get(t) not in FINISHED), None)
        at = tasks.index(current) if current in tasks else 0
        out.append({
            "project": str(project),
            "spec": state.spec,
            "orchestration": state.id,
            "phase": run.phase.value,
            "batch": f"{batch.index}/{len(state.batches)} {batch.name}" if batch else None,
            "run": run.n,
            "purpose": run.purpose,
            "state": "running" if run.pid else "waiting for a slot",
            "task": current,
            "before": tasks[max(0, at - 2):at] if current else [],
            "after": tasks[at + 1:at + 3] if current else [],
            "around": window(tasks, current, titles or {}, state.task_status),
            "pid": run.pid,
            "run_time_s": (now - run.started_at).total_seconds() if run.started_at else 0.0,
            "cost_usd": round(run.cost_usd, 4),
            "orchestration_cost_usd": round(state.total_cost_usd, 4),
        })
    return out


def served_projects(here: Path | None = None) -> tuple[list[Project], list[str]]:
    """The projects a user's daemon serves, as `fleet` finds them: the one around `here` (default:
    the current folder), if any, then those of the user config; and why a listed one cannot be read.
    UserError when there is none at all."""
    try:
        around = [locate(here).root]
    except UserError:
        if here is not None:
            raise
        around = []
    projects, missing = [], []
    for root in listed_projects(*around):
        try:
            projects.append(locate(root))
        except UserError as e:
            missing.append(e.message)
    if not projects and not missing:
        raise UserError("no projects: run it inside a project, or list projects in the user config")
    return projects, missing


def gather(projects: list[Project], now: datetime) -> tuple[list[dict[str, Any]], list[str]]:
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    for project in projects:
        states, _, broken = read_current(project)  # ended orchestrations run no agents
        problems += [f"{path}: unreadable: {why}" for path, why in broken.items()]
        ordered = sorted(states.values(), key=lambda s: s.created_at)
        names = titles(project, {s.spec for s in ordered if any(r.ended_at is None for r in s.runs)})
        for state in ordered:
            rows += runs(state, project.root, now, names.get(state.spec))
    return rows, problems


HEADER = (f"{'project':<16} {'spec':<20} {'orchestr.':<10} {'phase':<9} {'batch':<22} {'state':<18} "
          f"{'task':<40} {'time':>7} cost")


def line(row: dict[str, Any]) -> str:
    """One run for a terminal, under HEADER: the task it is on, with its title."""
    current = next((t for t in row["around"] if t["current"]), None)
    task = f"{current['task']} {current['title']}" if current else "-"
    batch = cut(row["batch"] or "-", 22)
    return visible(f"{Path(row['project']).name:<16} {row['spec']:<20} {row['orchestration']:<10} {row['phase']:<9} "
                   f"{batch:<22} {row['state']:<18} {cut(task, 40):<40} {duration(row['run_time_s']):>7} "
                   f"${row['cost_usd']:.2f}")
