"""What the live page shows, kept up to date: every served project's orchestrations, agents at work
and recent feed, and, each time something was written, the changes as events (one per new commit,
one per state file written or removed). `views/web.py` serves it; `repo/follow.py`'s Waker wakes it.

Read only: state files are read as `status` reads them, the feed as `log` does, task titles from
the design-docs branch (parsed once per task list version)."""

from __future__ import annotations

import fnmatch
import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from specflowd.core import page
from specflowd.core.state import OrchestrationState
from specflowd.daemon import statefile
from specflowd.errors import UserError
from specflowd.repo import feed, git
from specflowd.repo.designdocs import DesignDocs
from specflowd.repo.git import GitError
from specflowd.repo.project import Project
from specflowd.views.fleet import runs

FEED_KEPT = 100  # the recent feed entries the page holds per project (its timeline and list)

Event = tuple[str, dict[str, Any]]  # (name, data): one change, as the page's event stream sends it


@dataclass
class _Project:
    """What the board last saw of one project."""

    project: Project
    docs: DesignDocs
    feed_read: bool = False  # whether the feed was read yet
    tip: str | None = None
    feed: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=FEED_KEPT))
    files: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # state file -> (inode, mtime, size)
    ids: dict[str, str] = field(default_factory=dict)  # state file -> the orchestration it holds
    orchestrations: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> the page's document
    agents: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # orchestration id -> its cards
    problems: dict[str, str] = field(default_factory=dict)  # unreadable state file -> why


class Board:
    """The page's documents for `projects`, brought up to date by `scan`. Used by one thread."""

    def __init__(self, projects: list[Project], host: str, missing: list[str] | None = None) -> None:
        self.host = host
        self.missing = list(missing or [])  # listed projects that cannot be read (said once, at start)
        self._projects = [_Project(p, DesignDocs(p)) for p in projects]
        self._titles: dict[str, dict[str, str]] = {}  # task list blob -> task id -> title

    @property
    def projects(self) -> list[Project]:
        return [p.project for p in self._projects]

    def folders(self) -> list[Path]:
        """Where a write means the page may have changed: the design-docs ref's folder and
        packed-refs (the feed), and the state files' folder."""
        out: list[Path] = []
        for p in self.projects:
            out += [(p.common_dir / p.branch_ref).parent, p.common_dir, p.workflows]
        return [folder for folder in dict.fromkeys(out) if folder.is_dir()]

    def scan(self) -> list[Event]:
        """Read what changed since the last scan, and say it as events, oldest first."""
        events: list[Event] = []
        now = datetime.now(UTC)
        for seen in self._projects:
            events += self._scan_feed(seen)
            events += self._scan_states(seen, now)
        return events

    def snapshot(self) -> dict[str, Any]:
        """The whole page: what a page that just opened is sent first."""
        projects = []
        agents: list[dict[str, Any]] = []
        for seen in self._projects:
            docs = sorted(seen.orchestrations.values(), key=lambda d: d["created_at"])
            projects.append(self._header(seen) | {
                "orchestrations": docs,
                "feed": list(seen.feed),
                "problems": sorted(f"{name}: unreadable: {why}" for name, why in seen.problems.items()),
            })
            for doc in docs:
                agents += seen.agents.get(doc["orchestration"], [])
        return {"host": self.host, "projects": projects, "agents": agents, "missing": self.missing}

    def find(self, root: str | None) -> Project | None:
        """A served project by its root as the page names it; the only one when `root` is None."""
        if root is None:
            return self.projects[0] if len(self._projects) == 1 else None
        return next((p for p in self.projects if str(p.root) == root), None)

    def titles(self, project: Project, spec: str) -> dict[str, str]:
        """Each task's title in the spec's task list at the branch's tip."""
        seen = next(s for s in self._projects if s.project == project)
        try:
            snap = seen.docs.snapshot()
            path = snap.task_file(spec)
        except (UserError, GitError):
            return {}
        blob = snap.blob_id(path)
        if blob is None:
            return {}
        if blob not in self._titles:
            if len(self._titles) > 64:
                self._titles.clear()
            self._titles[blob] = {t.id: t.title for t in seen.docs.document(snap, path).tasks}
        return self._titles[blob]

    # -- the feed ---------------------------------------------------------------------------

    def _scan_feed(self, seen: _Project) -> list[Event]:
        project = seen.project
        tip = git.read_ref(project.common_dir, project.branch_ref)
        if seen.feed_read and tip == seen.tip:
            return []
        first, seen.feed_read = not seen.feed_read, True
        last, seen.tip = seen.tip, tip
        new: list[dict[str, Any]] | None = None
        if last is not None and tip is not None:
            try:
                new = feed.read_new(seen.docs.store, last, tip, FEED_KEPT)
                if new is None:  # not a short line of commits: git log, for one more than the page keeps
                    new = feed.read(project, limit=FEED_KEPT + 1, since=last, until=tip)
            except GitError:
                new = None  # the old tip is gone (a rewritten branch)
        if new and len(new) <= FEED_KEPT:  # none new, yet the tip moved: the branch went back
            seen.feed.extend(new)
            return [("commit", {"project": str(project.root), "entry": e}) for e in new]
        seen.feed.clear()
        if tip is not None:
            seen.feed.extend(feed.read(project, limit=FEED_KEPT, until=tip))
        return [] if first else [("feed", {"project": str(project.root), "entries": list(seen.feed)})]

    # -- the state files --------------------------------------------------------------------

    def _scan_states(self, seen: _Project, now: datetime) -> list[Event]:
        project = seen.project
        root = str(project.root)
        events: list[Event] = []
        files = dict(_state_files(project.workflows))
        for name in sorted(set(seen.files) - set(files)):
            del seen.files[name]
            seen.problems.pop(name, None)
            oid = seen.ids.pop(name, None)
            if oid is not None and seen.orchestrations.pop(oid, None) is not None:
                seen.agents.pop(oid, None)
                events.append(("removed", {"project": root, "orchestration": oid}))
        problems = dict(seen.problems)
        for name, stamp in sorted(files.items()):
            if seen.files.get(name) == stamp:
                continue
            seen.files[name] = stamp
            try:
                state = statefile.read(project, project.workflows / name)
            except (OSError, ValueError) as e:  # pydantic's ValidationError is a ValueError
                seen.problems[name] = str(e).splitlines()[0] if str(e) else type(e).__name__
                continue
            seen.problems.pop(name, None)
            seen.ids[name] = state.id
            events.append(self._orchestration(seen, state, now))
        if seen.problems != problems:
            events.append(("problems", {"project": root, "problems": sorted(
                f"{name}: unreadable: {why}" for name, why in seen.problems.items())}))
        return events

    def _orchestration(self, seen: _Project, state: OrchestrationState, now: datetime) -> Event:
        titles = self.titles(seen.project, state.spec)
        doc = page.orchestration(state, titles, now)
        cards = [page.card(row, self.host, state) for row in runs(state, seen.project.root, now, titles)]
        seen.orchestrations[state.id] = doc
        seen.agents[state.id] = cards
        return "orchestration", {"project": str(seen.project.root), "orchestration": doc, "agents": cards}

    def _header(self, seen: _Project) -> dict[str, Any]:
        p = seen.project
        return {"root": str(p.root), "name": p.root.name, "branch": p.branch}


def _state_files(folder: Path) -> Iterator[tuple[str, tuple[int, int, int]]]:
    """Each state file's name and what tells a new version apart (written by rename: a new inode)."""
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        name = entry.name
        if not fnmatch.fnmatchcase(name, statefile.PATTERN):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        yield name, (st.st_ino, st.st_mtime_ns, st.st_size)
