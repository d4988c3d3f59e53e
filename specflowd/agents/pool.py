"""The daemon-wide agent slots (`pool.max_agents`), granted first come, first served."""

from __future__ import annotations

import threading
from collections import deque

from pydantic import BaseModel


class Slot(BaseModel):
    run_id: str
    orchestration: str


class PoolState(BaseModel):
    """Who runs and who waits, in order, for the state file and `specflowd fleet`."""

    max_agents: int
    running: list[Slot]
    waiting: list[Slot]


class Pool:
    """Slots shared by every orchestration of every project the daemon serves."""

    def __init__(self, max_agents: int) -> None:
        if max_agents < 1:
            raise ValueError("pool.max_agents must be at least 1")
        self._max = max_agents
        self._cond = threading.Condition()
        self._running: dict[str, Slot] = {}
        self._waiting: deque[Slot] = deque()

    def acquire(self, run_id: str, orchestration: str, cancelled: threading.Event) -> bool:
        """Block until this run's turn; False when `cancelled` was set (and `wake()` called) first."""
        slot = Slot(run_id=run_id, orchestration=orchestration)
        with self._cond:
            self._waiting.append(slot)
            while not (self._waiting[0] is slot and len(self._running) < self._max):
                if cancelled.is_set():
                    self._waiting.remove(slot)
                    self._cond.notify_all()  # the next in line may now be first
                    return False
                self._cond.wait()
            self._waiting.popleft()
            self._running[run_id] = slot
            self._cond.notify_all()
            return True

    def occupy(self, run_id: str, orchestration: str) -> None:
        """Count a run that is already running (adopted after a restart), even beyond the limit."""
        with self._cond:
            self._running[run_id] = Slot(run_id=run_id, orchestration=orchestration)

    def release(self, run_id: str) -> None:
        with self._cond:
            self._running.pop(run_id, None)
            self._cond.notify_all()

    def wake(self) -> None:
        """Make waiters re-check their cancel flag."""
        with self._cond:
            self._cond.notify_all()

    def state(self) -> PoolState:
        with self._cond:
            return PoolState(max_agents=self._max, running=list(self._running.values()),
                             waiting=list(self._waiting))
