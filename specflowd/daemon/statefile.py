"""Files that must never be seen half-written: the atomic write, and the orchestration state files
`.specflow/workflows/orchestration-<id>.json` (SPEC §6)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from specflowd.core.state import OrchestrationState

log = logging.getLogger("specflowd.state")
PREFIX = "orchestration-"


def atomic_write(path: Path, data: bytes) -> None:
    """Write `path` so that readers (and a crash) see the old file or the new one, never a part:
    temp file in the same folder, fsync, rename, fsync the folder."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def state_path(workflows: Path, orchestration_id: str) -> Path:
    return workflows / f"{PREFIX}{orchestration_id}.json"


def save(workflows: Path, state: OrchestrationState) -> None:
    workflows.mkdir(parents=True, exist_ok=True)
    atomic_write(state_path(workflows, state.id), state.model_dump_json(indent=2).encode() + b"\n")


def read_all(workflows: Path) -> tuple[dict[str, OrchestrationState], dict[Path, str]]:
    """Every orchestration's state, read only; files that do not parse (truncated, corrupt, another
    schema, named for another id) come back apart, with what is wrong with them."""
    states: dict[str, OrchestrationState] = {}
    broken: dict[Path, str] = {}
    for path in sorted(workflows.glob(f"{PREFIX}*.json")):
        try:
            state = OrchestrationState.model_validate_json(path.read_bytes())
            if path.name != state_path(workflows, state.id).name:
                raise ValueError(f"it holds orchestration {state.id}")
        except (OSError, ValueError) as e:  # pydantic's ValidationError is a ValueError
            broken[path] = str(e).splitlines()[0]
            continue
        states[state.id] = state
    return states, broken


def load_all(workflows: Path) -> dict[str, OrchestrationState]:
    """The daemon's read: broken state files are moved aside as `<name>.corrupt`, with a warning
    naming them, and the rest load."""
    states, broken = read_all(workflows)
    for path, why in broken.items():
        aside = path.with_name(path.name + ".corrupt")
        os.replace(path, aside)
        log.warning("state file %s is unreadable (%s); moved aside to %s", path, why, aside.name)
    return states
