"""The systemd notify protocol against a real unix datagram socket, and a clean child environment."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import run_cli, wait_for


class Receiver:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.got: list[str] = []

    def until(self, predicate: Callable[[str], bool], timeout: float = 15) -> str:
        """The first datagram (from now on) for which `predicate` holds."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching notification; got {self.got}")
            self.sock.settimeout(left)
            try:
                msg = self.sock.recv(4096).decode()
            except TimeoutError:
                continue
            self.got.append(msg)
            if predicate(msg):
                return msg


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[str, Receiver]]:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    yield str(path), Receiver(sock)
    sock.close()


def test_ready_status_watchdog_reload_and_stopping(project: Path, start_daemon, notify_socket,
                                                   tmp_path: Path) -> None:
    address, rx = notify_socket
    # A git that records its environment: every child of the daemon must be free of systemd's variables.
    fake_bin = tmp_path / "fakebin"
    fake_bin.mkdir()
    envs = tmp_path / "git-envs"
    (fake_bin / "git").write_text(f'#!/bin/sh\nenv >> "{envs}"\necho --- >> "{envs}"\nexec /usr/bin/git "$@"\n')
    (fake_bin / "git").chmod(0o755)
    (project / ".specflow/requests/waiting.json").write_text('{"action": "mark", "task": "T001", "status": "done"}')
    d = start_daemon(project, env={"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "300000",
                                   "PATH": f"{fake_bin}:{os.environ['PATH']}"}, ready=False)
    rx.until(lambda m: m == "READY=1")
    # What waited in the inbox is queued before READY and answered after it.
    wait_for(lambda: (project / ".specflow/responses/waiting.json").exists(), 15, message="the waiting request")
    for _ in range(3):  # pinged again and again, not once
        rx.until(lambda m: m == "WATCHDOG=1")
    assert any(m.startswith("STATUS=") and "1 request(s) answered" in m for m in rx.got), rx.got
    d.proc.send_signal(signal.SIGHUP)
    reloading = rx.until(lambda m: m.startswith("RELOADING=1"))
    assert "MONOTONIC_USEC=" in reloading
    rx.until(lambda m: m == "READY=1")
    assert run_cli("mark", "T002", "--done", "--wait", "10", cwd=project).returncode == 0
    rx.until(lambda m: "2 request(s) answered" in m)
    d.proc.send_signal(signal.SIGTERM)
    rx.until(lambda m: m == "STOPPING=1")
    assert d.stop() == 0
    recorded = envs.read_text()
    assert recorded.count("---") >= 2
    assert "NOTIFY_SOCKET" not in recorded and "WATCHDOG_USEC" not in recorded


def test_abstract_notify_socket(project: Path, start_daemon) -> None:
    name = f"specflowd-test-{os.getpid()}-{time.monotonic_ns()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    try:
        start_daemon(project, env={"NOTIFY_SOCKET": "@" + name}, ready=False)
        Receiver(sock).until(lambda m: m == "READY=1")
    finally:
        sock.close()


def test_a_notify_listener_that_stops_reading_never_blocks_the_daemon(project: Path, start_daemon,
                                                                      notify_socket) -> None:
    address, _ = notify_socket  # bound, never read: its queue fills after a few datagrams
    d = start_daemon(project, env={"NOTIFY_SOCKET": address})
    for i in range(40):
        d.drop({"action": "fly"}, f"n{i}.json")
    for i in range(40):
        assert d.answer(f"n{i}")["error"]["code"] == "unknown_action"
