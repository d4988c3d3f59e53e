"""Orchestrations as `status` and `list` show them: read from the state files, and rebuilt in
memory from the design-docs branch's history when a state file is lost (only the daemon writes
state files; it rebuilds and writes them itself when it starts)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from specflowd.core.overview import summary
from specflowd.core.rebuild import rebuild
from specflowd.core.state import OrchestrationState
from specflowd.core.vocab import ErrorCode, FeedEvent, TaskStatus
from specflowd.daemon.statefile import read_all
from specflowd.errors import UserError
from specflowd.repo import feed, git
from specflowd.repo.designdocs import DesignDocs
from specflowd.repo.project import Project


def load(project: Project, wanted: str | None) -> tuple[dict[str, OrchestrationState], list[str]]:
    """The project's orchestrations, and notes for the reader (unreadable state files, states
    rebuilt from the history). Missing ones (the wanted id, or all when there is no state file)
    are rebuilt from the branch history, in memory."""
    states, broken = read_all(project)
    notes = [f"warning: {path.name} is unreadable: {why}" for path, why in broken.items()]
    if (wanted and wanted not in states) or (not wanted and not states):
        rebuilt = rebuild_states(project, wanted, set(states))
        notes += [f"note: the state of {oid} was missing; rebuilt it from the history of {project.branch}"
                  for oid in rebuilt]
        states.update(rebuilt)
    if wanted and wanted not in states:
        raise UserError(f"no orchestration {wanted} in {project.root} (known: {', '.join(sorted(states)) or 'none'})",
                        code=ErrorCode.UNKNOWN_ORCHESTRATION)
    return states, notes


def rebuild_states(project: Project, wanted: str | None, have: set[str]) -> dict[str, OrchestrationState]:
    """The orchestrations the feed tells of that `have` lacks (only `wanted`, when given)."""
    if git.read_ref(project.common_dir, project.branch_ref) is None:
        return {}
    by_id: dict[str, list[dict[str, Any]]] = {}
    for entry in feed.read(project, limit=None):
        oid = entry.get("orchestration")
        if oid and oid not in have and (wanted is None or oid == wanted):
            by_id.setdefault(oid, []).append(entry)
    out = {}
    for oid, entries in by_id.items():
        if not any(e.get("event") == FeedEvent.STARTED for e in entries):
            continue
        state = rebuild(entries, str(project.root))
        state.task_status = task_statuses(project, state.spec)
        out[oid] = state
    return out


def task_statuses(project: Project, spec: str) -> dict[str, TaskStatus]:
    """The task list's statuses now: the feed has the marks, the branch has their sum."""
    docs = DesignDocs(project)
    try:
        snap = docs.snapshot()
        doc = docs.document(snap, snap.task_file(spec))
    except UserError:
        return {}
    return dict(zip(doc.ids(), doc.statuses(), strict=True))


def document(state: OrchestrationState, now: datetime) -> dict[str, Any]:
    """What `status --json ID` prints (and the page's `/api/orchestrations/<id>` answers): the
    summary, with the whole state."""
    return dict(summary(state, now), state=state.model_dump(mode="json"))
