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

from specflowd.core.state import BatchState, BatchStatus, Decision, OrchestrationState, Phase, Status

BATCH_RE = re.compile(r"^(\d+)/(\d+) ?(.*)$")
SUBJECT_RE = re.compile(r"^orchestration [0-9a-f]+: (.*)$")
WAITING_RE = re.compile(r"waiting until (\S+)$")

STATUS_AFTER: dict[str, Status] = {
    **dict.fromkeys(("started", "resumed", "recovered", "merge-requested", "batch-started", "heal-started",
                     "followup-started"), Status.RUNNING),
    "paused": Status.PAUSED,
    "rate-limited": Status.PAUSED,
    "waiting-merge": Status.WAITING_MERGE,
    "needs-attention": Status.NEEDS_ATTENTION,
    "budget-stopped": Status.NEEDS_ATTENTION,
    "completed": Status.COMPLETED,
    "failed": Status.FAILED,
    "cancelled": Status.CANCELLED,
}
PHASE_OF: dict[str, Phase] = {
    **dict.fromkeys(("batch-started", "batch-completed", "batch-failed", "batch-skipped", "followup-started"),
                    Phase.IMPLEMENT),
    **dict.fromkeys(("verify-passed", "verify-failed"), Phase.VERIFY),
    **dict.fromkeys(("waiting-merge", "merge-requested", "merged"), Phase.MERGE),
}
BATCH_STATUS_AFTER: dict[str, BatchStatus] = {
    "batch-started": BatchStatus.RUNNING,
    "followup-started": BatchStatus.RUNNING,
    "heal-started": BatchStatus.HEALING,
    "batch-completed": BatchStatus.COMPLETED,
    "batch-failed": BatchStatus.FAILED,
    "batch-skipped": BatchStatus.SKIPPED,
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
    if e.get("cost_usd") is not None:
        s.total_cost_usd = max(s.total_cost_usd, float(e["cost_usd"]))
    b = _batch(s, e.get("batch"))
    for t in e.get("tasks") or ():
        s.task_status[t["task"]] = t["status"]
        if b is not None and t["task"] not in b.task_ids:
            b.task_ids.append(t["task"])
    if not event:
        return
    m = SUBJECT_RE.match(e.get("subject") or "")
    what = m.group(1) if m else (e.get("subject") or event)
    s.decisions.append(Decision(at=_time(e), decision=what, reason=event))
    if event == "phase" and what.startswith("phase "):
        s.phase = Phase(what.removeprefix("phase "))
    elif event in PHASE_OF:
        s.phase = PHASE_OF[event]
    if event in STATUS_AFTER:
        s.status = STATUS_AFTER[event]
        s.error = what.removeprefix("needs attention: ") if s.status == Status.NEEDS_ATTENTION else None
        waiting = WAITING_RE.search(what) if event == "rate-limited" else None
        s.waiting_until = datetime.fromisoformat(waiting.group(1)) if waiting else None
    if b is not None and event in BATCH_STATUS_AFTER:
        b.status = BATCH_STATUS_AFTER[event]
        b.heal_attempts += event == "heal-started"
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
