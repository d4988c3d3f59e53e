"""Orchestrations as `status` and `list` show them, read from the state files that only the daemon
writes: the active orchestrations' files, and the daemon's index of the ended ones (so the cost is
the same with five past orchestrations or five hundred, and never grows with the history). A state
file that was lost is rebuilt in memory, for `status ID` alone, from that orchestration's own
commits (git finds them by their trailer)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from specflowd.core import records
from specflowd.core.lint import lint, removal
from specflowd.core.overview import summary
from specflowd.core.rebuild import rebuild
from specflowd.core.state import OrchestrationState
from specflowd.core.tasklist import parse
from specflowd.core.vocab import ErrorCode, FeedEvent, TaskStatus
from specflowd.daemon import statefile
from specflowd.errors import UserError
from specflowd.repo import feed, git
from specflowd.repo.designdocs import DesignDocs
from specflowd.repo.project import Project
from specflowd.views.client import checked_spec


def load(project: Project) -> tuple[dict[str, OrchestrationState], dict[str, dict[str, Any]], list[str]]:
    """The active orchestrations' states, the ended ones' index rows, and notes for the reader
    (unreadable state files, held-back edits of task lists)."""
    states, ended, broken = statefile.read_current(project)
    notes = [f"warning: {path.name} is unreadable: {why}" for path, why in broken.items()]
    notes += held_back_edits(project)
    return states, ended, notes


def load_one(project: Project, wanted: str) -> tuple[OrchestrationState, list[str]]:
    """One orchestration's whole state, and notes for the reader; rebuilt from its commits when
    its state file is gone. UserError when there is no such orchestration."""
    notes = held_back_edits(project)
    path = project.state_file(wanted)
    try:
        return statefile.read(project, path), notes
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as e:
        raise UserError(f"{path.name} is unreadable: {str(e).splitlines()[0]}") from None
    state = rebuild_one(project, wanted)
    if state is None:
        known = ", ".join(statefile.state_ids(project)) or "none"
        raise UserError(f"no orchestration {wanted} in {project.root} (known: {known})",
                        code=ErrorCode.UNKNOWN_ORCHESTRATION)
    notes.append(f"note: the state file of {wanted} is missing; rebuilt it from its commits on {project.branch} "
                 "(the daemon keeps the state files: this one is not written back)")
    return state, notes


def held_back_edits(project: Project) -> list[str]:
    """Uncommitted edits of task lists that specflowd will not commit by itself (they remove most
    of the tasks, or break the list), said so that the person commits or undoes them. Git names
    the edited files (its stat cache spares reading the others): five specs or five hundred cost
    the same."""
    docs = DesignDocs(project)
    tip = docs.tip()
    try:
        edited_paths = git.edited_paths(docs.worktree, tip, "specs") if tip else []
    except git.GitError:  # no worktree (yet, or any more): nothing edited in it
        return []
    if not edited_paths:
        return []
    snap = docs.snapshot(tip)
    notes = []
    for spec in sorted({p.split("/")[1] for p in edited_paths if p.count("/") == 2}):
        try:
            path = snap.task_file(spec)
            if path not in edited_paths:
                continue
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


def rebuild_one(project: Project, oid: str) -> OrchestrationState | None:
    """The orchestration as its own commits tell it, None when no commit starts it."""
    if git.read_ref(project.common_dir, project.branch_ref) is None:
        return None
    entries = feed.read(project, limit=None, orchestration=oid)
    if not any(e.get("event") == FeedEvent.STARTED for e in entries):
        return None
    state = rebuild(entries, str(project.root))
    state.task_status = task_statuses(project, state.spec)
    return state


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


def newest_ended(project: Project, states: Mapping[str, OrchestrationState],
                 ended: Mapping[str, Mapping[str, Any]]) -> OrchestrationState | None:
    """The orchestration that ended last, read whole (its state file, or `states`)."""
    done = [(s.created_at.isoformat(), s.id) for s in states.values() if not s.active]
    done += [(str(row["created_at"]), oid) for oid, row in ended.items()]
    if not done:
        return None
    oid = max(done)[1]
    if oid in states:
        return states[oid]
    try:
        return statefile.read(project, project.state_file(oid))
    except (OSError, ValueError):
        return None


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


def existing_spec(project: Project, spec: str) -> str:
    """`spec`, when it is a spec on the design-docs branch; UserError naming the ones there are."""
    DesignDocs(project).snapshot().task_file(checked_spec(spec))
    return spec
