"""The progress feed: the design-docs branch's history read back as entries (time, spec, tasks,
statuses, event, orchestration, evidence), and followed as it grows."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from specflowd.core.trailers import parse_trailers, task_statuses
from specflowd.repo.git import git, read_ref
from specflowd.repo.project import Project

RECORD = "\x1e"
FIELD = "\x1f"
LOG_FORMAT = f"%H{FIELD}%ct{FIELD}%an{FIELD}%B{RECORD}"


def entry_from(sha: str, ctime: int, author: str, message: str) -> dict[str, Any]:
    trailers = parse_trailers(message)
    values: dict[str, str] = {}
    for k, v in trailers:
        values.setdefault(k, v)
    return {
        "commit": sha,
        "time": datetime.fromtimestamp(ctime, UTC).isoformat().replace("+00:00", "Z"),
        "author": author,
        "subject": message.split("\n", 1)[0],
        "spec": values.get("Spec"),
        "event": values.get("Event"),
        "tasks": [{"task": t, "status": s} for t, s in task_statuses(trailers)],
        "orchestration": values.get("Orchestration"),
        "batch": values.get("Batch"),
        "evidence": values.get("Evidence"),
        "cost_usd": float(values["Cost-USD"]) if _is_number(values.get("Cost-USD")) else None,
        "source": values.get("Source"),
    }


def _is_number(v: str | None) -> bool:
    try:
        float(v)  # type: ignore[arg-type]
        return True
    except (TypeError, ValueError):
        return False


def read(project: Project, spec: str | None = None, limit: int | None = 50, since: str | None = None,
         until: str | None = None) -> list[dict[str, Any]]:
    """Entries, oldest first: the last `limit` of the branch (or those after commit `since`)."""
    rev = until or project.branch_ref
    args = ["log", f"--format={LOG_FORMAT}"]
    if limit is not None:
        args.append(f"-n{limit}")
    if spec is not None:
        args += ["-E", f"--grep=^Specflow-Spec: {re.escape(spec)}$"]
    args.append(f"{since}..{rev}" if since else rev)
    out = git(project.root, *args)
    entries = []
    for record in out.split(RECORD):
        record = record.lstrip("\n")
        if not record:
            continue
        sha, ctime, author, message = record.split(FIELD, 3)
        entries.append(entry_from(sha, int(ctime), author, message))
    entries.reverse()
    return entries


def follow(project: Project, spec: str | None, start: str | None,
           idle_s: float = 5.0) -> Iterator[list[dict[str, Any]]]:
    """Yield the new entries each time the branch moves. Woken by inotify on the ref's folder and
    packed-refs, not by polling; every `idle_s` without news it yields an empty list, a safety net
    for missed events and a chance for the caller to stop."""
    import threading
    import time

    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    from specflowd.daemon.watch import WRITES

    woken = threading.Event()

    class Wake(FileSystemEventHandler):
        def on_any_event(self, event: object) -> None:
            woken.set()

    # Writes only: git (and this loop's own read_ref) open and read files in the git dir all the time.
    ref_dir = (project.common_dir / project.branch_ref).parent
    observer = Observer()
    observer.schedule(Wake(), str(ref_dir), recursive=False, event_filter=WRITES)
    observer.schedule(Wake(), str(project.common_dir), recursive=False, event_filter=WRITES)
    observer.start()
    last = start
    quiet_since = time.monotonic()
    try:
        while True:
            news = woken.wait(timeout=idle_s)
            woken.clear()
            tip = read_ref(project.common_dir, project.branch_ref)
            if tip is None or tip == last:
                # Other files in the git dir change too: however often they do, the caller
                # still hears every `idle_s` that nothing came.
                if not news or time.monotonic() - quiet_since >= idle_s:
                    quiet_since = time.monotonic()
                    yield []
                continue
            quiet_since = time.monotonic()
            new = read(project, spec=spec, limit=None, since=last, until=tip) if last else []
            last = tip
            if new:
                yield new
    finally:
        # watchdog logs a spurious error when its emitter is stopped mid-read.
        logging.getLogger("watchdog.observers.inotify").setLevel(logging.CRITICAL)
        observer.stop()
        observer.join(timeout=2)


