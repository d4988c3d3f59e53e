"""The daemon's event loop: one thread owns all mutable state; watcher threads, signal handlers and
other components only `post` events to it, and timers are events delivered later."""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import time
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger("specflowd.loop")
E = TypeVar("E")


class Loop:
    def __init__(self) -> None:
        # SimpleQueue.put is reentrant: safe from signal handlers and from any thread.
        self._events: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._handlers: dict[type, Callable[[Any], None]] = {}
        self._timers: list[tuple[float, int, object, float | None]] = []
        self._seq = itertools.count()
        self.stopping = False

    def post(self, event: object) -> None:
        """Deliver `event` to the loop thread; callable from any thread or a signal handler."""
        self._events.put(event)

    def on(self, kind: type[E], handler: Callable[[E], None]) -> None:
        """Call `handler(event)` in the loop thread for every event of type `kind`."""
        self._handlers[kind] = handler

    def later(self, delay: float, event: object, *, every: float | None = None) -> None:
        """Deliver `event` after `delay` seconds (then again every `every` seconds). Loop thread only."""
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._seq), event, every))

    def stop(self) -> None:
        """Stop after the event in hand; events still queued are dropped (their causes are on disk)."""
        self.stopping = True
        self._events.put(None)

    def run(self) -> None:
        while not self.stopping:
            timeout = max(0.0, self._timers[0][0] - time.monotonic()) if self._timers else None
            try:
                event = self._events.get(timeout=timeout)
            except queue.Empty:
                event = None
            if event is not None and not self.stopping:
                self.dispatch(event)
            self._fire_timers()

    def _fire_timers(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now and not self.stopping:
            _, _, event, every = heapq.heappop(self._timers)
            if every is not None:
                heapq.heappush(self._timers, (now + every, next(self._seq), event, every))
            self.dispatch(event)

    def dispatch(self, event: object) -> None:
        handler = self._handlers.get(type(event))
        if handler is None:
            log.debug("no handler for %r", event)
            return
        try:
            handler(event)
        except Exception:  # one bad event must not stop the daemon
            log.exception("handling %r failed", event)
