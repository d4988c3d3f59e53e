"""Filesystem watching: watchdog handlers that turn inotify events on the inbox, the design-docs
worktree and the design-docs branch's ref into loop events. They run in watchdog's threads, so they
only post."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.api import BaseObserver
from watchdog.observers.inotify import InotifyObserver
from watchdog.observers.polling import PollingObserver

from specflowd.core.protocol import is_request_name
from specflowd.repo.designdocs import TASK_FILES

Post = Callable[[object], None]


@dataclass(frozen=True)
class InboxTouched:
    """A file appeared in a project's inbox (created, or renamed into it)."""

    root: Path
    name: str


@dataclass(frozen=True)
class TaskListTouched:
    """A task list in a project's design-docs worktree changed on disk."""

    root: Path
    spec: str


@dataclass(frozen=True)
class BranchMoved:
    """The design-docs branch's ref file or packed-refs was rewritten: the branch may have moved by a
    fetch, a pull, `update-ref` or `mark --now` (or by the daemon itself: the loop tells)."""

    root: Path


@dataclass(frozen=True)
class Rescan:
    """Look at every inbox again: events may have been lost."""


_ARRIVALS = frozenset({"created", "moved", "closed"})
_CHANGES = frozenset({"created", "moved", "closed", "deleted"})
# The kernel is asked for these only: our own reads (opens, closes) of the very files we watch
# would otherwise wake watchdog's threads to compete with the loop for the GIL.
INBOX_EVENTS = [FileCreatedEvent, DirCreatedEvent, FileMovedEvent, FileClosedEvent]
REF_EVENTS = [FileCreatedEvent, FileMovedEvent]
TASK_LIST_EVENTS = [FileCreatedEvent, DirCreatedEvent, FileMovedEvent, FileClosedEvent, FileDeletedEvent]


def _target(event: FileSystemEvent) -> str:
    path = event.dest_path if event.event_type == "moved" else event.src_path
    return os.fsdecode(path)


class InboxHandler(FileSystemEventHandler):
    def __init__(self, root: Path, requests: Path, post: Post) -> None:
        self.root = root
        self.requests = str(requests)
        self.post = post

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in _ARRIVALS:  # folders too: they are answered `not_regular_file`
            return
        folder, name = os.path.split(_target(event))
        if folder != self.requests:
            return
        if is_request_name(name):
            self.post(InboxTouched(self.root, name))


class RefHandler(FileSystemEventHandler):
    """Git writes a ref, and packed-refs, whole, by renaming a lock file over it: one event per new
    version of either, whoever wrote it. Watched in their folders (a watch on the file would end
    with the file it watched)."""

    def __init__(self, root: Path, files: list[Path], post: Post) -> None:
        self.root = root
        self.files = frozenset(str(f) for f in files)
        self.post = post

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in _ARRIVALS and _target(event) in self.files:
            self.post(BranchMoved(self.root))


class TaskListHandler(FileSystemEventHandler):
    def __init__(self, root: Path, worktree: Path, post: Post) -> None:
        self.root = root
        self.specs = str(worktree / "specs") + os.sep
        self.post = post

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type not in _CHANGES:
            return
        path = _target(event)
        if not path.startswith(self.specs):
            return
        parts = path[len(self.specs):].split(os.sep)
        if len(parts) == 2 and parts[1] in TASK_FILES:
            self.post(TaskListTouched(self.root, parts[0]))


class _OverflowAlarm(logging.Handler):
    """watchdog reports a kernel queue overflow only in its log: hear it, and rescan at once."""

    def __init__(self, post: Post) -> None:
        super().__init__(logging.WARNING)
        self.post = post

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage():
            self.post(Rescan())


def make_observer(kind: str, post: Post) -> BaseObserver:
    """An inotify observer ("inotify"), or the portable polling one ("polling", for comparison)."""
    if kind == "polling":
        return PollingObserver()
    logging.getLogger("watchdog.observers.inotify_c").addHandler(_OverflowAlarm(post))
    return InotifyObserver()
