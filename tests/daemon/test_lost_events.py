"""A missed inotify event delays a request, never loses it: periodic rescans, and one at once on overflow.
The daemon runs in-process here so that event loss can be simulated; everything else is real."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

import pytest

from specflowd.daemon import main as daemon_module
from specflowd.daemon.main import Daemon
from specflowd.daemon.notify import Notifier
from specflowd.daemon.watch import InboxHandler
from specflowd.repo.project import locate
from tests.conftest import wait_for


class Started:
    pass


def run_with_lost_events(project: Path, monkeypatch: pytest.MonkeyPatch, client) -> None:
    monkeypatch.setattr(InboxHandler, "on_any_event", lambda self, event: None)  # inotify "drops" them all
    d = Daemon([locate(project)], Notifier(None, None))
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    errors: list[BaseException] = []

    started = threading.Event()
    d.loop.on(Started, lambda e: started.set())

    def drive() -> None:
        try:
            # Queued events are handled only after the first inbox scan: what is dropped after this
            # is found by no scan but a rescan.
            d.post(Started())
            assert started.wait(20)
            client(d)
        except BaseException as e:  # reported in the main thread
            errors.append(e)
        finally:
            d.loop.stop()

    t = threading.Thread(target=drive)
    t.start()
    try:
        assert d.run() == 0
    finally:
        t.join()
        for s, handler in saved.items():
            signal.signal(s, handler)
    if errors:
        raise errors[0]


def drop(project: Path, name: str) -> Path:
    tmp = project / ".specflow/requests/tmp" / name
    tmp.write_text('{"action": "mark", "task": "T001", "status": "done"}')
    tmp.rename(project / ".specflow/requests" / name)
    return project / ".specflow/responses" / name


def test_an_overflow_rescans_at_once(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def client(d: Daemon) -> None:
        answer = drop(project, "lost.json")
        # What watchdog logs when the kernel's queue overflowed.
        logging.getLogger("watchdog.observers.inotify_c").warning("Inotify queue overflowed; filesystem "
                                                                  "events were lost")
        wait_for(answer.exists, daemon_module.RESCAN_S - 1, message="answer after the overflow")

    run_with_lost_events(project, monkeypatch, client)


def test_the_periodic_rescan_finds_what_no_event_announced(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(daemon_module, "RESCAN_S", 0.3)
    run_with_lost_events(project, monkeypatch, lambda d: wait_for(drop(project, "quiet.json").exists, 5,
                                                                  message="answer after a rescan"))
