"""A long-lived project, built fast: a design-docs branch with the marks and events of many past
orchestrations (written by `git fast-import`, with the messages specflowd itself writes), their
state files as the daemon leaves them, and a spec of thousands of tasks.

Each past orchestration has its own spec of 20 tasks in 4 batches: its spec commit, `started`,
`phase`, each batch's start, marks and end, verify, merge and `completed`; the rest of its share of
the commits are marks back and forth (pending, done), as healing and re-runs leave them.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.bench.common import ENV, make_project, task_file

TASKS = 20
BATCHES = 4
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _tasks(done: set[int]) -> bytes:
    lines = [b"# Tasks\n"]
    for b in range(BATCHES):
        lines.append(b"\n## Batch %d\n\n" % (b + 1))
        for i in range(b * TASKS // BATCHES, (b + 1) * TASKS // BATCHES):
            lines.append(b"- [%s] T%03d Past task %d of the feature\n" % (b"x" if i in done else b" ", i + 1, i + 1))
    return b"".join(lines)


def _orchestration(n: int, commits: int) -> tuple[str, str, list[tuple[str, bytes | None]]]:
    """(id, spec, [(message, task list after it or None)]) of past orchestration `n`."""
    from specflowd.core.tasklist import Change
    from specflowd.core.trailers import event_message, mark_message
    from specflowd.core.vocab import FeedEvent, MarkSource, TaskStatus

    oid, spec = f"{0x10000000 + n:08x}", f"past-{n:05d}"
    done: set[int] = set()
    out: list[tuple[str, bytes | None]] = [(f"spec {spec}: {TASKS} tasks\n", _tasks(done))]
    cost = 0.0

    def event(subject: str, kind: FeedEvent, phase: str, batch: str | None = None) -> None:
        trailers = {"Spec": spec, "Orchestration": oid, "Phase": phase, **({"Batch": batch} if batch else {}),
                    "Cost-USD": f"{cost:.4f}"}
        out.append((event_message(f"orchestration {oid}: {subject}", kind, trailers), None))

    def mark(i: int, status: TaskStatus, batch: str) -> None:
        old = TaskStatus.DONE if i in done else TaskStatus.PENDING
        (done.add if status == TaskStatus.DONE else done.discard)(i)
        change = Change(id=f"T{i + 1:03d}", title=f"Past task {i + 1} of the feature", old=old, new=status)
        out.append((mark_message(spec, [change], orchestration=oid, batch=batch, source=MarkSource.REQUEST),
                    _tasks(done)))

    event(f"started ({TASKS} tasks, {BATCHES} batches to run)", FeedEvent.STARTED, "implement")
    event("phase implement", FeedEvent.PHASE, "implement")
    fixed = len(out) + BATCHES * 2 + TASKS + 5
    extra = max(0, commits - fixed) // (2 * BATCHES)
    for b in range(BATCHES):
        label = f"{b + 1}/{BATCHES} Batch {b + 1}"
        event(f"batch {label[:3]} started", FeedEvent.BATCH_STARTED, "implement", label)
        first = b * TASKS // BATCHES
        for i in range(first, (b + 1) * TASKS // BATCHES):
            mark(i, TaskStatus.DONE, label)
        for k in range(extra):  # re-runs: a task reopened and done again
            mark(first + k % (TASKS // BATCHES), TaskStatus.PENDING, label)
            mark(first + k % (TASKS // BATCHES), TaskStatus.DONE, label)
        cost += 0.25
        event(f"batch {label[:3]} completed", FeedEvent.BATCH_COMPLETED, "implement", label)
    event("verify passed", FeedEvent.VERIFY_PASSED, "verify")
    event("phase merge", FeedEvent.PHASE, "merge")
    event(f"merged specflow/{spec} into main", FeedEvent.MERGED, "merge")
    event("completed", FeedEvent.COMPLETED, "merge")
    while len(out) < commits:  # what the rounding left: marks after the end, by hand
        mark(TASKS - 1, TaskStatus.PENDING if len(out) % 2 else TaskStatus.DONE, f"{BATCHES}/{BATCHES} Batch {BATCHES}")
    return oid, spec, out


def _state(project: Path, n: int, oid: str, spec: str) -> None:
    from specflowd.core.state import BatchState, OrchestrationState
    from specflowd.core.vocab import BatchStatus, Phase, Status, TaskStatus
    from specflowd.daemon.statefile import save
    from specflowd.repo.project import locate

    at = T0 + timedelta(hours=n)
    per = TASKS // BATCHES
    state = OrchestrationState(
        id=oid, spec=spec, project=str(project), status=Status.COMPLETED, phase=Phase.MERGE,
        created_at=at, updated_at=at + timedelta(minutes=30), started_at=at, total_cost_usd=0.25 * BATCHES,
        task_file=f"specs/{spec}/progress.md", current_batch=BATCHES,
        batches=[BatchState(index=b + 1, name=f"Batch {b + 1}", task_ids=[f"T{i + 1:03d}" for i in range(b * per, (b + 1) * per)],
                            status=BatchStatus.COMPLETED, cost_usd=0.25) for b in range(BATCHES)],
        task_status={f"T{i + 1:03d}": TaskStatus.DONE for i in range(TASKS)})
    save(locate(project), state)


def long_project(base: Path, name: str, commits: int, orchestrations: int, big: int = 5000) -> Path:
    """A project whose design-docs branch holds `commits` commits: a spec `big` of `big` tasks, then
    `orchestrations` past orchestrations (with their state files); the worktree at the tip."""
    project = make_project(base, name, {})
    docs = project / ".specflow" / "design-docs"
    ref = "refs/heads/helix-design-docs"
    tip = subprocess.run(["git", "rev-parse", ref], cwd=project, capture_output=True, text=True, check=True,
                         env=ENV).stdout.strip()
    share = max(1, (commits - 1) // orchestrations)
    stream = []
    clock = 1735689600

    def commit(message: str, files: dict[str, bytes], first: bool = False) -> None:
        nonlocal clock
        clock += 7
        data = message.encode()
        head = f"commit {ref}\ncommitter Specflowd <specflowd@localhost> {clock} +0000\n".encode()
        head += b"data %d\n" % len(data) + data + b"\n"
        if first:
            head += f"from {tip}\n".encode()
        for path, blob in files.items():
            head += f"M 100644 inline {path}\n".encode() + b"data %d\n" % len(blob) + blob + b"\n"
        stream.append(head)

    commit(f"spec big: {big} tasks\n", {"specs/big/progress.md": task_file(big)}, first=True)
    for n in range(orchestrations):
        want = share if n < orchestrations - 1 else commits - 1 - share * (orchestrations - 1)
        oid, spec, entries = _orchestration(n, want)
        for message, tasks in entries:
            commit(message, {f"specs/{spec}/progress.md": tasks} if tasks is not None else {})
        _state(project, n, oid, spec)
    subprocess.run(["git", "fast-import", "--quiet", "--force"], cwd=project, input=b"".join(stream), check=True, env=ENV)
    subprocess.run(["git", "reset", "-q", "--hard", "helix-design-docs"], cwd=docs, check=True, env=ENV)
    return project
