"""One project the daemon serves, and everything the daemon keeps for it: its settings, its
design-docs branch, its orchestrations' states, its inbox, its hand-edit debouncer and its daemon
lock. Owned by the loop thread, like every piece of the daemon's mutable state."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Protocol

from specflowd.core.config import Config
from specflowd.core.events import MergeBranch
from specflowd.core.overview import index_row
from specflowd.core.protocol import StartRequest
from specflowd.core.state import OrchestrationState
from specflowd.daemon import statefile
from specflowd.daemon.handedits import HandEdits
from specflowd.daemon.inbox import Inbox
from specflowd.repo.designdocs import DesignDocs
from specflowd.repo.project import Project


class Shared(Protocol):
    """A project whose design-docs branch a fleet of daemons shares (SPEC §10; `daemon/fleet.py`)."""

    host: str

    def queue(self, request: StartRequest, rid: str) -> dict[str, Any]:
        """A start request: the orchestration queued for the fleet; its summary."""

    def merge(self, state: OrchestrationState, action: MergeBranch, message: str) -> None:
        """Merge into the remote's base branch; `MergeFinished` follows."""

    def saved(self, state: OrchestrationState) -> None:
        """The orchestration's state was written (an ended one gives its lease back)."""

    def holder(self, orchestration: str) -> str | None:
        """The host that runs an orchestration this host does not, if the fleet knows of it."""


@dataclass
class Site:
    project: Project
    config: Config
    docs: DesignDocs
    inbox: Inbox
    hand: HandEdits
    lock_fd: int
    states: dict[str, OrchestrationState] = field(default_factory=dict)
    ended: dict[str, dict[str, Any]] = field(default_factory=dict)  # the index of ended ones (statefile)
    # The worktree's watch, and its folder's identity (None once the folder was removed).
    docs_watch: tuple[Any, tuple[int, int] | None] | None = None
    fleet: Shared | None = None  # on many machines (`[remote] name`), the fleet's side of the project

    def save(self, state: OrchestrationState) -> None:
        statefile.save(self.project, state)
        self.states[state.id] = state
        row = index_row(state)
        if row != self.ended.get(state.id):
            if row is None:
                del self.ended[state.id]
            else:
                self.ended[state.id] = row
            statefile.save_index(self.project, self.ended)

    def index(self) -> None:
        """Write the index of ended orchestrations when the one on disk is not it (none yet, one
        from an older daemon, state files changed while no daemon ran)."""
        self.ended = statefile.ended_rows(self.states)
        if statefile.read_index(self.project) != self.ended:
            statefile.save_index(self.project, self.ended)

    def active(self) -> list[OrchestrationState]:
        return [s for s in self.states.values() if s.active]

    def close(self) -> None:
        self.docs.close()
        os.close(self.lock_fd)
