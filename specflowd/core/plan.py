"""The planner: which batches an orchestration would run for a task list, and in what order."""

from __future__ import annotations

import heapq
from itertools import compress

from specflowd.core.records import record
from specflowd.core.tasklist import Document, counts
from specflowd.core.vocab import FINISHED, TaskStatus

PREAMBLE = "(before the first section)"


@record
class Batch:
    index: int  # 1-based
    name: str
    task_ids: list[str]  # every task of the batch, in run order
    incomplete: list[str]  # the ones still to do, in run order: what the agent is asked for


@record
class Plan:
    spec: str
    file: str
    tasks_total: int
    tasks_done: int
    used_fallback: bool
    batches: list[Batch]
    warnings: list[str]

    @property
    def nothing_left(self) -> bool:
        return not self.batches


def make_plan(doc: Document, *, spec: str, file: str, batch_size: int = 15) -> Plan:
    """Batches: one per `## ` section with unfinished tasks (tasks above the first section are a
    batch of their own); with no sections, unfinished tasks cut into `batch_size` groups."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    ids = doc.ids()
    n = len(ids)
    todo = doc.unfinished()
    unfinished = list(compress(range(n), todo))
    warnings = list(doc.warnings)
    groups: list[tuple[str, range | list[int]]] = []
    used_fallback = not doc.sections
    if used_fallback:
        for start in range(0, len(unfinished), batch_size):
            chunk = unfinished[start:start + batch_size]
            groups.append((f"Tasks {ids[chunk[0]]}–{ids[chunk[-1]]}", chunk))
    else:
        for section_index, start, end in doc.section_spans():
            if True in todo[start:end]:
                name = doc.sections[section_index - 1].name if section_index else PREAMBLE
                groups.append((name, range(start, end)))
    if n == 0:
        warnings.append("the task list has no tasks yet (the design phase writes them)")
    elif not unfinished:
        warnings.append(f"nothing left to do: all {n} tasks are finished")
    depends = doc.dependencies()
    # Which batch each task is in; section batches are runs of indexes, filled a slice at a time.
    batch_at = [-1] * n
    for b, (_, members) in enumerate(groups):
        if isinstance(members, range):
            batch_at[members.start:members.stop] = [b] * len(members)
        else:
            for i in members:
                batch_at[i] = b
    edges_in: dict[int, list[tuple[int, str]]] = {}  # batch -> (task, dependency) pairs in it
    for i, deps in depends.items():
        if batch_at[i] >= 0:
            edges_in.setdefault(batch_at[i], []).extend((i, dep) for dep in deps)
    batches = []
    for b, (name, members) in enumerate(groups):
        order = _dependency_order(doc, ids, members, edges_in.get(b, []), b, batch_at, name, warnings)
        for i, dep in edges_in.get(b, []):
            _check_later(doc, ids[i], dep, b, batch_at, warnings)
        if order is members and isinstance(members, range):  # file order: slices, not a loop
            task_ids = ids[members.start:members.stop]
            incomplete = list(compress(task_ids, todo[members.start:members.stop]))
        else:
            task_ids = [ids[i] for i in order]
            incomplete = [ids[i] for i in order if todo[i]]
        batches.append(Batch(index=b + 1, name=name, task_ids=task_ids, incomplete=incomplete))
    done = counts(doc)[TaskStatus.DONE]
    return Plan(spec=spec, file=file, tasks_total=n, tasks_done=done, used_fallback=used_fallback,
                batches=batches, warnings=warnings)


def _dependency_order(doc: Document, ids: list[str], members: range | list[int], edges: list[tuple[int, str]], batch: int,
                      batch_at: list[int], name: str, warnings: list[str]) -> range | list[int]:
    """File order, except where a dependency inside the batch says otherwise (stable Kahn)."""
    inside: list[tuple[int, int]] = []  # (task, the task it waits for), both in this batch
    for i, dep in edges:
        j = _index_of(doc, dep)
        if j is not None and j != i and batch_at[j] == batch:
            inside.append((i, j))
    # The common case: every dependency points back to an earlier task, and file order holds.
    if all(j < i for i, j in inside):
        return members
    followers: dict[int, list[int]] = {}
    indegree = dict.fromkeys(members, 0)
    for i, j in inside:
        followers.setdefault(j, []).append(i)
        indegree[i] += 1
    ready = [i for i in members if indegree[i] == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for k in followers.get(i, ()):
            indegree[k] -= 1
            if indegree[k] == 0:
                heapq.heappush(ready, k)
    if len(order) < len(members):
        cycle = ", ".join(ids[i] for i in members if indegree[i] > 0)
        warnings.append(f"dependency cycle in batch {name!r} among {cycle}: file order kept")
        return members
    return order


def _index_of(doc: Document, task_id: str) -> int | None:
    try:
        return doc.index_of(task_id)
    except ValueError:
        return None


def _check_later(doc: Document, task_id: str, dep: str, batch: int, batch_at: list[int],
                 warnings: list[str]) -> None:
    j = _index_of(doc, dep)
    if j is None:
        warnings.append(f"{task_id} depends on {dep}, which is not in the task list")
    elif doc.status(j) not in FINISHED and batch_at[j] > batch:
        warnings.append(f"{task_id} (batch {batch + 1}) depends on {dep}, which runs later in batch {batch_at[j] + 1}")
