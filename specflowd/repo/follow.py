"""Waiting for files to change, without polling: the feed followed as the branch moves (`log -f`,
the demo's narration), and any watcher that only needs waking (`status --watch`).

Writes only are watched: git, and the watchers' own reads, open and read files in these folders
all the time, and a watcher woken by its own reads would spin."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from watchdog.events import (
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from specflowd.repo import feed, git
from specflowd.repo.project import Project

WRITES = [FileCreatedEvent, FileModifiedEvent, FileMovedEvent, FileDeletedEvent, FileClosedEvent]
# Files replaced whole by a rename inside their folder, or removed: how git writes refs and
# packed-refs, and how the daemon writes state files. One event per new version, where WRITES
# sees four (create, write, close, rename of the lock or temp file).
REPLACED = [FileMovedEvent, FileDeletedEvent]


class Waker(FileSystemEventHandler):
    """Set whenever a file in one of `folders` is written (or, with `events`, changed that way);
    `wait` for it. A context manager: the watch ends with the block."""

    def __init__(self, *folders: Path, events: list[type[FileSystemEvent]] | None = None) -> None:
        self._woken = threading.Event()
        self._observer = Observer()
        for folder in folders:
            self._observer.schedule(self, str(folder), recursive=False, event_filter=events or WRITES)

    def on_any_event(self, event: FileSystemEvent) -> None:
        self._woken.set()

    def wait(self, timeout: float | None) -> bool:
        """Whether something was written (since the last wait) within `timeout` seconds (None:
        however long it takes)."""
        news = self._woken.wait(timeout)
        self._woken.clear()
        return news

    def __enter__(self) -> Waker:
        self._observer.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        # watchdog logs a spurious error when its emitter is stopped mid-read.
        logging.getLogger("watchdog.observers.inotify").setLevel(logging.CRITICAL)
        self._observer.stop()
        self._observer.join(timeout=2)


def follow(project: Project, spec: str | None, start: str | None,
           idle_s: float = 5.0) -> Iterator[list[dict[str, Any]]]:
    """Yield the new entries each time the branch moves. Woken by inotify on the ref's folder and
    packed-refs, not by polling; every `idle_s` without news it yields an empty list, a safety net
    for missed events and a chance for the caller to stop."""
    ref_dir = (project.common_dir / project.branch_ref).parent
    with Waker(ref_dir, project.common_dir) as waker:
        last = start
        quiet_since = time.monotonic()
        while True:
            news = waker.wait(idle_s)
            tip = git.read_ref(project.common_dir, project.branch_ref)
            if tip is None or tip == last:
                # Other files in the git dir change too: however often they do, the caller
                # still hears every `idle_s` that nothing came.
                if not news or time.monotonic() - quiet_since >= idle_s:
                    quiet_since = time.monotonic()
                    yield []
                continue
            quiet_since = time.monotonic()
            new = feed.read(project, spec=spec, limit=None, since=last, until=tip) if last else []
            last = tip
            if new:
                yield new
