"""Fixtures for the daemon tests: a project with a task list, and real `specflowd run` processes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git, run_cli, wait_for

TASKS = "# Tasks\n\n## Setup\n\n- [ ] T001 Create the thing\n- [ ] T002 Test the thing\n- [ ] T003 Ship it\n"


def make_project(repo: Path, tasks: str = TASKS, spec: str = "demo") -> Path:
    """`repo` set up with `specflowd init`, one spec whose task list is `tasks`, committed."""
    for args in (("init",), ("new", spec)):
        r = run_cli(*args, cwd=repo)
        assert r.returncode == 0, r.stderr
    docs = repo / ".specflow" / "design-docs"
    (docs / "specs" / spec / "progress.md").write_text(tasks)
    git(docs, "commit", "-qam", "task list")
    return repo


@pytest.fixture
def project(repo: Path) -> Path:
    return make_project(repo)


class DaemonProcess:
    """A `specflowd run` subprocess, its log, and the inbox it serves."""

    def __init__(self, root: Path, log: Path, args: tuple[str, ...] = (), env: dict[str, str] | None = None,
                 program: str = "specflowd") -> None:
        self.root = root
        self.log_path = log
        self.specflow = root / ".specflow"
        self._log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        # A session of its own, as under systemd: `kill_group` then kills the daemon with its git
        # children, as `systemctl kill` or the OOM killer would (agents lead sessions of their own).
        self.proc = subprocess.Popen([program, "run", *args], cwd=root, stdout=self._log, stderr=self._log,
                                     env={**os.environ, **(env or {})}, start_new_session=True)

    def wait_ready(self, timeout: float = 20) -> DaemonProcess:
        wait_for(lambda: "serving" in self.log() or self.proc.poll() is not None, timeout, message="daemon start")
        assert self.proc.poll() is None, self.log()
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def drop(self, payload: dict[str, Any] | bytes | str, name: str) -> Path:
        """Write a request into requests/tmp/ and rename it into the inbox, as clients do."""
        data = payload if isinstance(payload, bytes) else (
            payload.encode() if isinstance(payload, str) else json.dumps(payload).encode())
        tmp = self.specflow / "requests" / "tmp" / name
        tmp.write_bytes(data)
        target = self.specflow / "requests" / name
        os.rename(tmp, target)
        return target

    def answer(self, rid: str, timeout: float = 15) -> dict[str, Any]:
        path = self.specflow / "responses" / f"{rid}.json"
        wait_for(path.exists, timeout, message=f"answer {rid}")
        return json.loads(path.read_text())

    def filed(self, name: str, timeout: float = 15) -> Path:
        """Where the request went: requests/done/NAME or requests/failed/NAME."""
        def found() -> Path | None:
            for folder in ("done", "failed"):
                p = self.specflow / "requests" / folder / name
                if p.exists():
                    return p
            return None
        return wait_for(found, timeout, message=f"{name} filed away")  # type: ignore[return-value]

    def kill_group(self) -> int:
        """SIGKILL the daemon and every process of its group (its git children), at once."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        return self.stop(signal.SIGKILL)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._log.close()


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator[Any]:
    """Start `specflowd run` processes; every one is stopped (then killed) at the end."""
    started: list[DaemonProcess] = []

    def start(root: Path, *args: str, env: dict[str, str] | None = None, ready: bool = True,
              program: str = "specflowd") -> DaemonProcess:
        d = DaemonProcess(root, tmp_path / f"daemon-{len(started)}.log", args, env, program)
        started.append(d)
        return d.wait_ready() if ready else d

    yield start
    for d in started:
        d.stop(signal.SIGKILL)
