"""Many machines (SPEC §10), the decisions: what the shared feed says of every orchestration (queued,
claimed by which host and since when, started, ended), which of them this host claims or takes over,
which of its unpushed commits it may still push and which leases go with them, what a refused push
means, and how an orchestration taken over is resumed. Pure: feed entries, leases and times in.

The shell (`daemon/fleet.py`, `daemon/sync.py`, `repo/remote.py`) fetches, pushes and commits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from specflowd.core.config import BudgetConfig, OrchestrationConfig, RunConfig
from specflowd.core.lease import Lease, lapsed
from specflowd.core.plan import Plan
from specflowd.core.rebuild import rebuild
from specflowd.core.records import given, record
from specflowd.core.state import BatchState, OrchestrationState
from specflowd.core.tasklist import Mark
from specflowd.core.text import one_line
from specflowd.core.trailers import parse_trailers
from specflowd.core.vocab import TERMINAL, BatchStatus, FeedEvent, Phase, PushRefusal, Status, TaskStatus

ENDED = frozenset({FeedEvent.COMPLETED, FeedEvent.FAILED, FeedEvent.CANCELLED})
CLAIMS = frozenset({FeedEvent.CLAIMED, FeedEvent.TAKEN_OVER})
# Commits that may be pushed without holding the orchestration's lease: the request before any
# claim, and the note that a host stopped (it changes nothing of the orchestration's course).
UNFENCED = frozenset({FeedEvent.QUEUED, FeedEvent.LEASE_LOST})
KEEP_ENDED = 100  # ended orchestrations of other hosts the view keeps (the newest)


@record
class Record:
    """One orchestration as the shared feed tells it."""

    id: str
    spec: str
    queued_at: datetime | None = None
    queued_by: str | None = None
    queued_commit: str | None = None  # carries the start request's settings (`Specflow-Config`)
    host: str | None = None  # the host of the last claim or takeover
    since: datetime | None = None  # when that host claimed it
    started: bool = False
    ended: bool = False
    last_at: datetime | None = None
    entries: list[dict[str, Any]] = field(default_factory=list)  # its feed entries, oldest first


def fold(records: dict[str, Record], entries: list[dict[str, Any]]) -> set[str]:
    """Fold feed entries (`feed.entry_from`, oldest first) into the records; the ids they touched."""
    touched = set()
    for e in entries:
        oid, spec = e.get("orchestration"), e.get("spec")
        if not oid or not spec:
            continue
        rec = records.get(oid)
        if rec is None:
            rec = records[oid] = Record(id=oid, spec=spec)
        at = datetime.fromisoformat(e["time"])
        event = e.get("event")
        if event == FeedEvent.QUEUED:
            rec.queued_at, rec.queued_by, rec.queued_commit = at, e.get("host"), e["commit"]
        elif event in CLAIMS:
            rec.host, rec.since = e.get("host"), at
        elif event == FeedEvent.STARTED:
            rec.started = True
        elif event in ENDED:
            rec.ended = True
        rec.last_at = at
        if any(_same(e, seen) for seen in rec.entries[-20:]):
            continue  # this host's own commit, folded before it was pushed (and perhaps rebuilt)
        rec.entries.append(e)
        touched.add(oid)
    ended = sorted((r for r in records.values() if r.ended), key=lambda r: r.last_at or datetime.min)
    for old in ended[:-KEEP_ENDED]:
        del records[old.id]
    return touched


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return (a["subject"], a["time"], a.get("event")) == (b["subject"], b["time"], b.get("event"))


def active_for_spec(records: dict[str, Record], spec: str) -> Record | None:
    """The orchestration of `spec` the fleet has not finished, if any (queued or running anywhere)."""
    return next((r for r in records.values() if r.spec == spec and not r.ended), None)


# ---- claims and takeovers ----

@dataclass(frozen=True)
class Claim:
    orchestration: str
    spec: str
    expected: str  # the lease commit the remote must still hold; "" = no lease
    previous_host: str  # "" for a first claim
    started: bool  # it ran before: resumed (taken over), not started


def claims(records: dict[str, Record], leases: dict[str, Lease], *, free: int, now: datetime,
           busy: set[str]) -> list[Claim]:
    """What this host claims now, at most `free`: lapsed leases first (their orchestrations were
    running), then queued orchestrations, oldest first. One orchestration per spec at a time: a
    later start of a spec waits in the queue until the earlier one ends. `busy`: the ones this
    host holds or is claiming already."""
    if free <= 0:
        return []
    taken, queued = [], []
    for rec in records.values():
        if rec.ended or rec.id in busy:
            continue
        lease = leases.get(rec.id)
        if lease is not None:
            if lapsed(lease, now):
                taken.append(Claim(rec.id, rec.spec, lease.sha, lease.host, rec.started))
        elif rec.host is not None:  # claimed once, and its lease is gone without an end: orphaned
            taken.append(Claim(rec.id, rec.spec, "", rec.host, rec.started))
        elif rec.queued_at is not None and _first_of_its_spec(records, leases, rec):
            queued.append(Claim(rec.id, rec.spec, "", "", False))
    order = {oid: rec.queued_at or rec.last_at or now for oid, rec in records.items()}
    taken.sort(key=lambda c: order[c.orchestration])
    queued.sort(key=lambda c: order[c.orchestration])
    chosen: list[Claim] = []
    specs: set[str] = set()
    for c in taken + queued:
        if c.spec not in specs:
            chosen.append(c)
            specs.add(c.spec)
    return chosen[:free]


def _first_of_its_spec(records: dict[str, Record], leases: dict[str, Lease], rec: Record) -> bool:
    for other in records.values():
        if other.id == rec.id or other.spec != rec.spec or other.ended:
            continue
        if other.host is not None or other.id in leases:
            return False  # one of the spec's runs somewhere
        if other.queued_at is not None and rec.queued_at is not None and other.queued_at < rec.queued_at:
            return False
    return True


# ---- the messages of the fleet's own commits ----

def queued_message(orchestration: str, spec: str, host: str, request_id: str, overrides: dict[str, Any]) -> str:
    """The `queued` event: the start request's settings travel in it to whichever host claims it."""
    settings = json.dumps(overrides, separators=(",", ":"), sort_keys=True)  # one line, ASCII
    return (f"orchestration {orchestration}: queued by {one_line(host)} (request {one_line(request_id)})\n\n"
            f"Specflow-Event: {FeedEvent.QUEUED}\nSpecflow-Spec: {spec}\nSpecflow-Orchestration: {orchestration}\n"
            f"Specflow-Host: {one_line(host)}\nSpecflow-Request: {one_line(request_id, 200)}\n"
            f"Specflow-Config: {settings}\n")


@dataclass(frozen=True)
class QueuedRequest:
    request_id: str
    orchestration: dict[str, Any]  # the [orchestration] keys the request set, and only those
    budget: dict[str, Any]  # the [budget] keys it set


def parse_queued(message: str) -> QueuedRequest:
    """The start request a `queued` commit carries (the keys it set, and only those)."""
    values = dict(parse_trailers(message))
    try:
        settings = json.loads(values.get("Config") or "{}")
        orchestration = given(OrchestrationConfig, settings.get("orchestration") or {}, "orchestration")
        budget = given(BudgetConfig, settings.get("budget") or {}, "budget")
    except (ValueError, AttributeError):  # not what a host writes: the project's settings, unchanged
        orchestration, budget = {}, {}
    return QueuedRequest(request_id=values.get("Request", ""), orchestration=orchestration, budget=budget)


def claim_message(c: Claim, host: str) -> tuple[str, FeedEvent, dict[str, str]]:
    """Subject, event and trailers of the commit a claim pushes with its lease."""
    trailers = {"Spec": c.spec, "Orchestration": c.orchestration, "Host": host}
    if c.previous_host:
        trailers["Previous-Host"] = c.previous_host
        return f"orchestration {c.orchestration}: taken over from {c.previous_host} by {host}", FeedEvent.TAKEN_OVER, trailers
    return f"orchestration {c.orchestration}: claimed by {host}", FeedEvent.CLAIMED, trailers


# ---- pushing: what may go, with which leases ----

@dataclass(frozen=True)
class Unpushed:
    """A local commit of the design-docs branch the remote does not have yet."""

    sha: str
    orchestration: str | None
    event: str | None
    host: str | None


@dataclass(frozen=True)
class PushPlan:
    keep: list[str]  # in order
    drop: list[str]  # fenced: this host no longer holds their orchestration's lease
    renew: set[str]  # orchestrations whose lease goes with this push


def plan_push(commits: list[Unpushed], *, held: set[str], claiming: set[str]) -> PushPlan:
    """Sort the unpushed commits (oldest first): a commit of an orchestration goes only with its
    lease, renewed in the same atomic push; one whose lease this host lost is dropped, never pushed
    (fencing). A claim goes only while it is being pushed (a lost claim is dropped)."""
    keep: list[str] = []
    drop: list[str] = []
    renew: set[str] = set()
    for c in commits:
        oid = c.orchestration
        if oid is None or c.event in UNFENCED:
            keep.append(c.sha)
        elif c.event in CLAIMS:
            (keep if oid in claiming else drop).append(c.sha)
        elif oid in held or oid in claiming:
            keep.append(c.sha)
            renew.add(oid)
        else:
            drop.append(c.sha)
    return PushPlan(keep, drop, renew)


def parse_push(output: str) -> dict[str, tuple[str, str]]:
    """`git push --porcelain`'s verdict per ref: destination -> (flag, summary)."""
    out = {}
    for line in output.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and len(parts[0]) == 1 and ":" in parts[1]:
            out[parts[1].rsplit(":", 1)[1]] = (parts[0], parts[2])
    return out


def refusal(verdicts: dict[str, tuple[str, str]]) -> PushRefusal | None:
    """Why an atomic push was refused (None: it landed). A lease or work branch that is not what
    we expected outranks a moved branch: both mean fetch, but only the first may mean fenced."""
    rejected = [summary for flag, summary in verdicts.values() if flag == "!"]
    if not rejected:
        return None
    if any("stale info" in s for s in rejected):
        return PushRefusal.STALE
    if any("non-fast-forward" in s or "fetch first" in s for s in rejected):
        return PushRefusal.MOVED
    return PushRefusal.OTHER


def marks_in(message: str) -> list[Mark]:
    """The marks a mark commit made (`Specflow-Task`, its `Status`, a blocked one's `Reason`), to
    make them again on another version of the task list."""
    out: list[Mark] = []
    task: str | None = None
    for key, value in parse_trailers(message):
        if key == "Task":
            task = value
        elif key == "Status" and task is not None and value in TaskStatus.__members__.values():
            out.append(Mark(task, TaskStatus(value)))
        elif key == "Reason" and out and out[-1].status == TaskStatus.BLOCKED:
            out[-1] = Mark(out[-1].task, TaskStatus.BLOCKED, value)
    return out


# ---- resuming an orchestration another host ran ----

def resume_state(rec: Record, *, project: str, config: RunConfig, plan: Plan | None,
                 task_status: dict[str, TaskStatus], host: str) -> OrchestrationState:
    """The state to take an orchestration over with: rebuilt from its feed entries (SPEC §4), its
    batches from the plan it entered the implement phase with (`plan`, None before that), its
    tasks' statuses as the task list has them now, and this host's settings with its request's."""
    s = rebuild(rec.entries, project)
    s.config, s.host, s.task_status = config, host, dict(task_status)
    if plan is not None:
        s.task_file = plan.file
        seen = {b.index: b for b in s.batches}
        s.batches = [BatchState(index=b.index, name=b.name, task_ids=list(b.task_ids),
                                status=seen[b.index].status if b.index in seen else BatchStatus.PENDING,
                                cost_usd=seen[b.index].cost_usd if b.index in seen else 0.0)
                     for b in plan.batches]
        # A batch the feed saw start but not end was cut short: it starts again.
        for b in s.batches:
            if b.status in (BatchStatus.RUNNING, BatchStatus.HEALING):
                b.status = BatchStatus.PENDING
        left = [b for b in s.batches if b.status not in (BatchStatus.COMPLETED, BatchStatus.SKIPPED)]
        s.current_batch = left[0].index if left and s.phase == Phase.IMPLEMENT else None
    return s


def view_state(rec: Record, lease: Lease | None, project: str,
               task_status: dict[str, TaskStatus]) -> OrchestrationState:
    """An orchestration of another host (or of none yet) as `status` and `list` show it."""
    s = rebuild(rec.entries, project)
    s.task_status = dict(task_status)
    s.host = lease.host if lease is not None else rec.host or ""
    if not rec.started and s.status not in TERMINAL:
        s.status = Status.QUEUED
    return s


def hosts(records: dict[str, Record], leases: dict[str, Lease]) -> dict[str, dict[str, Any]]:
    """Every host the feed or the leases name, and when it was last heard of (its newest commit or
    lease); what each holds is read from the leases when shown (`views/shared.py`)."""
    seen: dict[str, datetime | None] = {}

    def heard(name: str | None, at: datetime | None) -> None:
        if name:
            before = seen.get(name)
            seen[name] = at if before is None or (at is not None and at > before) else before

    for rec in records.values():
        heard(rec.queued_by, rec.queued_at)
        for e in rec.entries[-1:]:
            heard(e.get("host"), datetime.fromisoformat(e["time"]))
    for lease in leases.values():
        heard(lease.host, lease.written)
    return {name: {"host": name, "last_seen": at.isoformat() if at else None} for name, at in sorted(seen.items())}
