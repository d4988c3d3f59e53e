"""A person's edits of task lists in the design-docs worktree: wait until they settle, then commit
them with a trailer per changed status (`marks.commit_hand_edits`), so the feed stays complete.
A debouncer per spec, owned by the loop thread."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from specflowd.errors import UserError
from specflowd.repo.designdocs import DesignDocs
from specflowd.repo.marks import commit_hand_edits

log = logging.getLogger("specflowd.handedits")
SETTLE_S = 0.5


@dataclass(frozen=True)
class Settled:
    """Timer: a spec's task list may have stopped changing."""

    root: Path
    spec: str


class HandEdits:
    """Debounce per spec. `later(delay, event)` schedules a loop timer."""

    def __init__(self, root: Path, docs: DesignDocs, later: Callable[[float, object], None]) -> None:
        self.root = root
        self.docs = docs
        self.later = later
        self._quiet_at: dict[str, float] = {}  # spec -> when it counts as settled

    def touched(self, spec: str) -> None:
        first = spec not in self._quiet_at
        self._quiet_at[spec] = time.monotonic() + SETTLE_S
        if first:
            self.later(SETTLE_S, Settled(self.root, spec))

    def postpone(self, spec: str) -> None:
        """Look again once another quiet time has passed (someone else is writing there now)."""
        self._quiet_at[spec] = time.monotonic() + SETTLE_S
        self.later(SETTLE_S, Settled(self.root, spec))

    def settled(self, spec: str) -> str | None:
        """Commit the spec's edit if it has settled; the commit made, if any."""
        quiet_at = self._quiet_at.get(spec)
        if quiet_at is None:
            return None
        left = quiet_at - time.monotonic()
        if left > 0:  # written to again since: wait for the rest of the quiet time
            self.later(left, Settled(self.root, spec))
            return None
        del self._quiet_at[spec]
        try:
            commit = commit_hand_edits(self.docs, spec)
        except UserError as e:
            log.warning("%s: hand edit not committed: %s", spec, e.message)
            return None
        if commit:
            log.info("%s: committed hand edit as %s", spec, commit[:10])
        return commit
