"""The orchestration state files `.specflow/workflows/orchestration-<id>.json` (SPEC §6): written by
the daemon alone, atomically and fsynced; read by anyone.

Beside them the daemon keeps `workflows/index.json`: the summary of every ended orchestration, as
`list` shows it, written when an orchestration ends (or changes after it ended). A reader then reads
the state files of the active orchestrations only, so `status` and `list` cost the same with five
past orchestrations or five hundred. A state file the index does not list (a daemon that crashed
between the two writes, or one older than the index) is simply read.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from specflowd import fsio
from specflowd.core import records
from specflowd.core.overview import index_row
from specflowd.core.state import OrchestrationState
from specflowd.repo.project import Project

log = logging.getLogger("specflowd.state")
PATTERN = "orchestration-*.json"  # the web page's watcher matches names with it
PREFIX, SUFFIX = "orchestration-", ".json"
INDEX = "index.json"
INDEX_VERSION = 1


def save(project: Project, state: OrchestrationState) -> None:
    fsio.make_private_dirs(project.workflows)
    fsio.atomic_write(project.state_file(state.id), records.to_json(state).encode() + b"\n")


def save_index(project: Project, ended: Mapping[str, Mapping[str, Any]]) -> None:
    fsio.make_private_dirs(project.workflows)
    doc = {"schema_version": INDEX_VERSION, "ended": dict(sorted(ended.items()))}
    fsio.atomic_write(project.workflows / INDEX, json.dumps(doc, separators=(",", ":")).encode() + b"\n")


def ended_rows(states: Mapping[str, OrchestrationState]) -> dict[str, dict[str, Any]]:
    """The index of these orchestrations: a row for each that ended."""
    return {oid: row for oid, state in states.items() if (row := index_row(state)) is not None}


def read_index(project: Project) -> dict[str, dict[str, Any]]:
    """The ended orchestrations' index rows by id; empty when there is no index or it is not one
    (the readers then read every state file, as they would without it)."""
    try:
        doc = json.loads(fsio.read_regular(project.workflows / INDEX) or b"{}")
    except (OSError, ValueError):
        return {}
    ended = doc.get("ended") if isinstance(doc, dict) and doc.get("schema_version") == INDEX_VERSION else None
    if not isinstance(ended, dict):
        return {}
    return {k: v for k, v in ended.items() if isinstance(v, dict) and isinstance(v.get("summary"), dict)}


def read_current(project: Project) -> tuple[dict[str, OrchestrationState], dict[str, dict[str, Any]],
                                            dict[Path, str]]:
    """The active orchestrations' states (read from their files), the ended ones' index rows (their
    files are not read), and the state files that do not parse, with what is wrong with them."""
    index = read_index(project)
    ids = state_ids(project)
    states, broken = _read(project, [oid for oid in ids if oid not in index])
    return states, {oid: index[oid] for oid in ids if oid in index}, broken


def state_ids(project: Project) -> list[str]:
    """The ids of the orchestrations that have a state file, sorted; none of the files is read."""
    try:
        names = os.listdir(project.workflows)
    except FileNotFoundError:
        return []
    return sorted(n[len(PREFIX):-len(SUFFIX)] for n in names if n.startswith(PREFIX) and n.endswith(SUFFIX))


def read_one(project: Project, orchestration: str) -> OrchestrationState | None:
    """One orchestration's state, None when its file is missing or does not parse (yet)."""
    try:
        return read(project, project.state_file(orchestration))
    except (OSError, ValueError):
        return None


def read_all(project: Project) -> tuple[dict[str, OrchestrationState], dict[Path, str]]:
    """Every orchestration's state, read only; files that do not parse (truncated, corrupt, another
    schema, named for another id) come back apart, with what is wrong with them."""
    return _read(project, state_ids(project))


def _read(project: Project, ids: list[str]) -> tuple[dict[str, OrchestrationState], dict[Path, str]]:
    states: dict[str, OrchestrationState] = {}
    broken: dict[Path, str] = {}
    for oid in ids:
        path = project.state_file(oid)
        try:
            state = read(project, path)
        except FileNotFoundError:  # removed since the folder was listed
            continue
        except (OSError, ValueError) as e:  # a RecordError or JSONDecodeError is a ValueError
            broken[path] = str(e).splitlines()[0]
            continue
        states[state.id] = state
    return states, broken


def read(project: Project, path: Path) -> OrchestrationState:
    """One state file; OSError or ValueError when it cannot be read or does not hold its own
    orchestration."""
    raw = fsio.read_regular(path)
    if raw is None:
        raise FileNotFoundError(f"{path} does not exist")
    state = records.from_json(OrchestrationState, raw)
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
