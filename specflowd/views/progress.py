"""Following one orchestration until it ends, as `specflowd wait`, `start --follow` and the demo do:
its feed entries printed as they land (inotify on the branch's ref, never polling), and an exit code
that says how it ended."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from specflowd.core.text import visible
from specflowd.core.vocab import Status
from specflowd.daemon.statefile import read_one
from specflowd.repo import feed, git
from specflowd.repo.follow import follow
from specflowd.repo.project import Project

# How `wait` exits (README, SPEC §7): the orchestration's end, or a person's turn, or the time.
EXIT_CODES = {Status.COMPLETED: 0, Status.FAILED: 1, Status.CANCELLED: 1, Status.NEEDS_ATTENTION: 4,
              Status.WAITING_MERGE: 4}
EXIT_TIMEOUT = 3


def feed_line(entry: dict[str, Any]) -> str:
    """A feed entry as the demo and `wait` print it: the time and what happened."""
    return visible(f"  {entry['time'][11:19]}  {entry['subject']}")


def follow_orchestration(project: Project, oid: str, say: Callable[[str], None], timeout_s: float | None,
                         since: str | None = None) -> tuple[int, int]:
    """Print the orchestration's feed entries (those after commit `since`, else all of them) until it
    ends or waits for a person; (exit code, entries shown). The entries that landed with its last
    state are printed before it returns: its final event is never missed."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    tip = git.read_ref(project.common_dir, project.branch_ref)
    shown = 0

    def show(entries: list[dict[str, Any]]) -> None:
        nonlocal shown
        for entry in entries:
            if entry.get("orchestration") == oid:
                say(feed_line(entry))
                shown += 1

    show(feed.read(project, limit=None, since=since, until=tip) if tip and since != tip else [])
    seen = tip
    for entries in follow(project, None, tip, idle_s=0.5):
        show(entries)
        seen = entries[-1]["commit"] if entries else seen
        state = read_one(project, oid)
        status = state.status if state is not None else Status.RUNNING
        if status in EXIT_CODES:
            # Its state is written after its commits: what landed meanwhile is read before the end.
            last = git.read_ref(project.common_dir, project.branch_ref)
            if last and last != seen:
                show(feed.read(project, limit=None, since=seen, until=last))
            return EXIT_CODES[status], shown
        if deadline is not None and time.monotonic() > deadline:
            return EXIT_TIMEOUT, shown
    return EXIT_TIMEOUT, shown
