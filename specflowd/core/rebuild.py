"""An orchestration's state rebuilt from its progress-feed entries (SPEC §4), for when the state
file is lost: status, phase, batches, cost and decision log, good enough for `specflowd status`.

Entries are `feed.entry_from` dicts of one orchestration, oldest first: its event commits and
the marks made under it. The config, agent runs and sessions are not in the feed; they come back
as defaults, so a rebuilt orchestration that was running is resumed through `Restarted`, which
finds no live run and stops it in `needs_attention` for `recover` to decide.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from specflowd.core.state import BatchState, Decision, OrchestrationState
from specflowd.core.vocab import BatchStatus, FeedEvent, Phase, Status, TaskStatus

BATCH_RE = re.compile(r"^(\d+)/(\d+) ?(.*)$")
SUBJECT_RE = re.compile(r"^orchestration [0-9a-f]+: (.*)$")
WAITING_RE = re.compile(r"waiting until (\S+)$")

STATUS_AFTER: dict[FeedEvent, Status] = {
    **dict.fromkeys((FeedEvent.STARTED, FeedEvent.RESUMED, FeedEvent.RECOVERED, FeedEvent.MERGE_REQUESTED, FeedEvent.BATCH_STARTED, FeedEvent.HEAL_STARTED,
                     FeedEvent.FOLLOWUP_STARTED), Status.RUNNING),
    FeedEvent.PAUSED: Status.PAUSED,
    FeedEvent.RATE_LIMITED: Status.PAUSED,
    FeedEvent.WAITING_MERGE: Status.WAITING_MERGE,
    FeedEvent.NEEDS_ATTENTION: Status.NEEDS_ATTENTION,
    FeedEvent.BUDGET_STOPPED: Status.NEEDS_ATTENTION,
    FeedEvent.COMPLETED: Status.COMPLETED,
    FeedEvent.FAILED: Status.FAILED,
    FeedEvent.CANCELLED: Status.CANCELLED,
}
PHASE_OF: dict[FeedEvent, Phase] = {
    **dict.fromkeys((FeedEvent.BATCH_STARTED, FeedEvent.BATCH_COMPLETED, FeedEvent.BATCH_FAILED, FeedEvent.BATCH_SKIPPED, FeedEvent.FOLLOWUP_STARTED),
                    Phase.IMPLEMENT),
    **dict.fromkeys((FeedEvent.VERIFY_PASSED, FeedEvent.VERIFY_FAILED), Phase.VERIFY),
    **dict.fromkeys((FeedEvent.WAITING_MERGE, FeedEvent.MERGE_REQUESTED, FeedEvent.MERGED), Phase.MERGE),
}
BATCH_STATUS_AFTER: dict[FeedEvent, BatchStatus] = {
    FeedEvent.BATCH_STARTED: BatchStatus.RUNNING,
    FeedEvent.FOLLOWUP_STARTED: BatchStatus.RUNNING,
    FeedEvent.HEAL_STARTED: BatchStatus.HEALING,
    FeedEvent.BATCH_COMPLETED: BatchStatus.COMPLETED,
    FeedEvent.BATCH_FAILED: BatchStatus.FAILED,
    FeedEvent.BATCH_SKIPPED: BatchStatus.SKIPPED,
}


def rebuild(entries: list[dict[str, Any]], project: str = "") -> OrchestrationState:
    """The state the entries tell of; ValueError when none of them is an orchestration event."""
    events = [e for e in entries if e.get("event")]
    if not events:
        raise ValueError("no orchestration events to rebuild from")
    first = events[0]
    at = _time(first)
    s = OrchestrationState(id=first["orchestration"], spec=first["spec"], project=project, created_at=at,
                           updated_at=at, started_at=at)
    for e in entries:
        _apply(s, e)
    return s


def _time(e: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(e["time"])


def _apply(s: OrchestrationState, e: dict[str, Any]) -> None:
    event = e.get("event")
    s.updated_at = _time(e)
    b = _batch(s, e.get("batch"))
    if e.get("cost_usd") is not None and float(e["cost_usd"]) > s.total_cost_usd:
        # Cost-USD is the running total: what it grew by since the last event was spent on the
        # batch this event names (the runs that ended in between were that batch's).
        spent = float(e["cost_usd"]) - s.total_cost_usd
        s.total_cost_usd = float(e["cost_usd"])
        if b is not None:
            b.cost_usd += spent
    for t in e.get("tasks") or ():
        if t["status"] not in TaskStatus.__members__.values():
            continue  # a trailer written by hand, or by a later version: not a status we know
        s.task_status[t["task"]] = TaskStatus(t["status"])
        if b is not None and t["task"] not in b.task_ids:
            b.task_ids.append(t["task"])
    if not event:
        return
    m = SUBJECT_RE.match(e.get("subject") or "")
    what = m.group(1) if m else (e.get("subject") or event)
    s.decisions.append(Decision(at=_time(e), decision=what, reason=event))
    if event == FeedEvent.PHASE and what.startswith("phase "):
        s.phase = Phase(what.removeprefix("phase "))
    elif event in PHASE_OF:
        s.phase = PHASE_OF[event]
    if event in STATUS_AFTER:
        s.status = STATUS_AFTER[event]
        s.error = what.removeprefix("needs attention: ") if s.status == Status.NEEDS_ATTENTION else None
        waiting = WAITING_RE.search(what) if event == FeedEvent.RATE_LIMITED else None
        s.waiting_until = datetime.fromisoformat(waiting.group(1)) if waiting else None
    if b is not None and event in BATCH_STATUS_AFTER:
        b.status = BATCH_STATUS_AFTER[event]
        b.heal_attempts += event == FeedEvent.HEAL_STARTED
        s.current_batch = b.index


def _batch(s: OrchestrationState, label: str | None) -> BatchState | None:
    """The batch a `Batch` trailer (`2/6 Core Services`) names, made (with its siblings) if new."""
    m = BATCH_RE.match(label or "")
    if m is None:
        return None
    index, total, name = int(m.group(1)), int(m.group(2)), m.group(3)
    while len(s.batches) < max(total, index):
        s.batches.append(BatchState(index=len(s.batches) + 1, name=f"batch {len(s.batches) + 1}", task_ids=[]))
    b = s.batches[index - 1]
    if name:
        b.name = name
    return b
