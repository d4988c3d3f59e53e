"""Orchestrations as `status` and `list` show them: read from the state files, and rebuilt in
memory from the design-docs branch's history when a state file is lost (only the daemon writes
state files; it rebuilds and writes them itself when it starts)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from specflowd.core import records
from specflowd.core.lint import lint, removal
from specflowd.core.overview import summary
from specflowd.core.rebuild import rebuild
from specflowd.core.state import OrchestrationState
from specflowd.core.tasklist import parse
from specflowd.core.vocab import ErrorCode, FeedEvent, TaskStatus
from specflowd.daemon.statefile import read_all
from specflowd.errors import UserError
from specflowd.repo import feed, git
from specflowd.repo.designdocs import DesignDocs
from specflowd.repo.project import Project


def load(project: Project, wanted: str | None, others: Mapping[str, OrchestrationState] | None = None,
         ) -> tuple[dict[str, OrchestrationState], list[str]]:
    """The project's orchestrations, and notes for the reader (unreadable state files, states
    rebuilt from the history). Missing ones (the wanted id, or all when there is no state file)
    are rebuilt from the branch history, in memory. `others`: on many machines, those of other
    hosts (`views/shared.py`), in place of this host's of them whose lease it lost."""
    states, broken = read_all(project)
    for oid, state in (others or {}).items():
        mine = states.get(oid)
        if mine is None or mine.lease_lost_at is not None:  # the fleet knows better; the loss is said
            states[oid] = replace(state, lease_lost_at=mine.lease_lost_at if mine else None)
    notes = [f"warning: {path.name} is unreadable: {why}" for path, why in broken.items()]
    notes += held_back_edits(project)
    if (wanted and wanted not in states) or (not wanted and not states):
        rebuilt = rebuild_states(project, wanted, set(states))
        notes += [f"note: the state of {oid} was missing; rebuilt it from the history of {project.branch}"
                  for oid in rebuilt]
        states.update(rebuilt)
    if wanted and wanted not in states:
        raise UserError(f"no orchestration {wanted} in {project.root} (known: {', '.join(sorted(states)) or 'none'})",
                        code=ErrorCode.UNKNOWN_ORCHESTRATION)
    return states, notes


def held_back_edits(project: Project) -> list[str]:
    """Uncommitted edits of task lists that specflowd will not commit by itself (they remove most
    of the tasks, or break the list), said so that the person commits or undoes them."""
    docs = DesignDocs(project)
    try:
        snap = docs.snapshot()
    except UserError:
        return []
    notes = []
    for spec in snap.specs():
        try:
            path = snap.task_file(spec)
            edited = docs.worktree_bytes(path)
        except UserError as e:
            notes.append(f"warning: {e.message}")
            continue
        committed = snap.read(path)
        if edited is None or committed is None or edited == committed:
            continue
        why = removal(parse(committed), parse(edited)) or next(iter(lint(parse(edited))), None)
        if why:
            notes.append(f"warning: {path} has an uncommitted edit that specflowd does not commit for you ({why}): "
                         f"commit it yourself in {docs.worktree} if you meant it, else restore the file")
    return notes


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


def titles(project: Project, specs: set[str]) -> dict[str, dict[str, str]]:
    """Each spec's tasks' titles (task id -> title), read from the design-docs branch; a spec whose
    task list cannot be read has none."""
    docs = DesignDocs(project)
    out: dict[str, dict[str, str]] = {}
    try:
        snap = docs.snapshot()
    except UserError:
        return {spec: {} for spec in specs}
    for spec in specs:
        try:
            doc = docs.document(snap, snap.task_file(spec))
        except UserError:
            out[spec] = {}
            continue
        out[spec] = {t.id: t.title for t in doc.tasks}
    return out


def ordered(states: dict[str, OrchestrationState]) -> list[OrchestrationState]:
    """Active orchestrations first (oldest first), then the ended ones, newest first."""
    active = sorted((s for s in states.values() if s.active), key=lambda s: s.created_at)
    ended = sorted((s for s in states.values() if not s.active), key=lambda s: s.created_at, reverse=True)
    return active + ended


def task_statuses(project: Project, spec: str) -> dict[str, TaskStatus]:
    """The task list's statuses now: the feed has the marks, the branch has their sum."""
    docs = DesignDocs(project)
    try:
        snap = docs.snapshot()
        doc = docs.document(snap, snap.task_file(spec))
    except UserError:
        return {}
    return dict(zip(doc.ids(), doc.statuses(), strict=True))


def document(state: OrchestrationState, now: datetime, titles: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What `status --json ID` prints (and the page's `/api/orchestrations/<id>` answers): the
    summary, with the whole state."""
    return dict(summary(state, now, titles), state=records.dump(state))
