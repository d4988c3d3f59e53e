"""Commit messages of the design-docs branch: the subject and `Specflow-*` trailers of marks and
events (SPEC §4), and reading them back. Pure text in, text out."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from specflowd.core.text import one_line
from specflowd.core.vocab import FeedEvent, MarkSource

if TYPE_CHECKING:  # only a type here: `specflowd log` should not pay for importing the parser
    from specflowd.core.tasklist import Change

def _trailer_block(pairs: Iterable[tuple[str, str | None]]) -> str:
    return "\n".join(f"Specflow-{k}: {one_line(v, 500)}" for k, v in pairs if v not in (None, ""))


def mark_message(spec: str, changes: list[Change], *, orchestration: str | None = None,
                 batch: str | None = None, evidence: str | None = None, source: MarkSource | None = None,
                 host: str | None = None) -> str:
    """`T012 done: Title` + trailers. Several tasks share one commit (a parent follows its child,
    or a request names several): one Specflow-Task per task and a Status for each, in order."""
    first = changes[0]
    statuses = {c.new for c in changes}
    if len(changes) == 1:
        subject = f"{first.id} {first.new.value}: {first.title}"
        if first.reason:
            subject += f" ({first.reason})"
    elif len(statuses) == 1:
        subject = f"{', '.join(c.id for c in changes[:6])}{' …' if len(changes) > 6 else ''} {first.new.value}"
    else:
        subject = f"{len(changes)} tasks changed: " + ", ".join(f"{c.id} {c.new.value}" for c in changes[:6])
    pairs: list[tuple[str, str | None]] = [("Spec", spec)]
    for c in changes:
        pairs.append(("Task", c.id))
        pairs.append(("Status", c.new.value))
        if c.reason:
            pairs.append(("Reason", c.reason))
    pairs += [("Orchestration", orchestration), ("Batch", batch), ("Evidence", evidence), ("Source", source),
              ("Host", host)]
    return f"{one_line(subject)}\n\n{_trailer_block(pairs)}\n"


def edit_message(spec: str, file: str) -> str:
    """A person's edit of a task list that changed no task's status."""
    pairs: list[tuple[str, str | None]] = [("Spec", spec), ("Source", MarkSource.HAND_EDIT)]
    return f"{spec}: edit {one_line(file)}\n\n{_trailer_block(pairs)}\n"


def event_message(subject: str, event: FeedEvent, trailers: dict[str, str]) -> str:
    pairs = [("Event", event), *trailers.items()]
    return f"{one_line(subject)}\n\n{_trailer_block(pairs)}\n"


def parse_trailers(message: str) -> list[tuple[str, str]]:
    """The `Specflow-*` trailers of a message's last paragraph, in order, without the prefix."""
    paragraphs = message.strip().split("\n\n")
    if len(paragraphs) < 2:
        return []
    out = []
    for line in paragraphs[-1].splitlines():
        key, sep, value = line.partition(": ")
        if sep and key.startswith("Specflow-"):
            out.append((key[len("Specflow-"):], value.strip()))
    return out


def task_statuses(trailers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(task, status) pairs: each Task trailer with the Status that follows it, or the single
    Status of the commit when there is only one."""
    tasks = [v for k, v in trailers if k == "Task"]
    statuses = [v for k, v in trailers if k == "Status"]
    if len(statuses) == len(tasks):
        return list(zip(tasks, statuses, strict=True))
    single = statuses[0] if len(statuses) == 1 else ""
    return [(t, single) for t in tasks]


def commit_tasks(message: str) -> tuple[str | None, list[str]]:
    """(spec, task ids) a code commit reports: every `Specflow-Task:` trailer, one id or a comma
    list each, and the `Specflow-Spec:` trailer when there is one."""
    trailers = parse_trailers(message)
    tasks: list[str] = []
    for key, value in trailers:
        if key == "Task":
            tasks += [t.strip() for t in value.replace(";", ",").split(",") if t.strip()]
    spec = next((v for k, v in trailers if k == "Spec"), None)
    return spec, list(dict.fromkeys(tasks))
