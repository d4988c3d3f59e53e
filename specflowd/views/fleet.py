"""The fleet: every agent run across the projects a user's daemon serves, read from state files."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from specflowd.core.overview import duration
from specflowd.core.state import OrchestrationState
from specflowd.core.vocab import FINISHED
from specflowd.daemon.statefile import read_all
from specflowd.errors import UserError
from specflowd.repo.project import Project, locate
from specflowd.repo.settings import listed_projects


def runs(state: OrchestrationState, project: Path, now: datetime) -> list[dict[str, Any]]:
    """The orchestration's unfinished agent runs: running ones, and those waiting for a pool slot."""
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
        states, broken = read_all(project)
        problems += [f"{path}: unreadable: {why}" for path, why in broken.items()]
        for state in sorted(states.values(), key=lambda s: s.created_at):
            rows += runs(state, project.root, now)
    return rows, problems


def line(row: dict[str, Any]) -> str:
    around = " ".join([*row["before"], f"[{row['task']}]" if row["task"] else "", *row["after"]]).strip()
    return (f"{Path(row['project']).name:<16} {row['spec']:<20} {row['orchestration']}  {row['phase']:<9} "
            f"{row['batch'] or '-':<22} {row['state']:<18} {around:<32} {duration(row['run_time_s']):>7} "
            f"${row['cost_usd']:.2f}")
