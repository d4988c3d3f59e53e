"""The orchestration state files `.specflow/workflows/orchestration-<id>.json` (SPEC §6): written by
the daemon alone, atomically and fsynced; read by anyone."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from specflowd import fsio
from specflowd.core import records
from specflowd.core.state import OrchestrationState
from specflowd.repo.project import Project

log = logging.getLogger("specflowd.state")
PATTERN = "orchestration-*.json"


def save(project: Project, state: OrchestrationState) -> None:
    fsio.make_private_dirs(project.workflows)
    fsio.atomic_write(project.state_file(state.id), records.to_json(state).encode() + b"\n")


def read_one(project: Project, orchestration: str) -> OrchestrationState | None:
    """One orchestration's state, None when its file is missing or does not parse (yet)."""
    try:
        return records.from_json(OrchestrationState, fsio.read_regular(project.state_file(orchestration)) or b"")
    except (OSError, ValueError):
        return None


def read_all(project: Project) -> tuple[dict[str, OrchestrationState], dict[Path, str]]:
    """Every orchestration's state, read only; files that do not parse (truncated, corrupt, another
    schema, named for another id) come back apart, with what is wrong with them."""
    states: dict[str, OrchestrationState] = {}
    broken: dict[Path, str] = {}
    for path in sorted(project.workflows.glob(PATTERN)):
        try:
            state = read(project, path)
        except (OSError, ValueError) as e:  # a RecordError or JSONDecodeError is a ValueError
            broken[path] = str(e).splitlines()[0]
            continue
        states[state.id] = state
    return states, broken


def read(project: Project, path: Path) -> OrchestrationState:
    """One state file; OSError or ValueError when it cannot be read or does not hold its own
    orchestration."""
    state = records.from_json(OrchestrationState, fsio.read_regular(path) or b"")
    if path.name != project.state_file(state.id).name:
        raise ValueError(f"it holds orchestration {state.id}")
    return state


def load_all(project: Project) -> dict[str, OrchestrationState]:
    """The daemon's read: broken state files are moved aside as `<name>.corrupt`, with a warning
    naming them, and the rest load."""
    states, broken = read_all(project)
    for path, why in broken.items():
        aside = path.with_name(path.name + ".corrupt")
        os.replace(path, aside)
        log.warning("state file %s is unreadable (%s); moved aside to %s", path, why, aside.name)
    return states
