"""Fixtures for the agent layer: fake CLIs on PATH, scenario files, a supervisor posting to a queue."""

from __future__ import annotations

import json
import os
import queue
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from specflowd.agents.pool import Pool
from specflowd.agents.result import AgentRequest, RunFinished
from specflowd.agents.supervisor import Supervisor
from specflowd.core.events import RunResult

FAKES = Path(__file__).resolve().parent.parent / "fakes"


@pytest.fixture
def fake_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`claude`, `codex` and `gemini` on PATH, played by the fakes."""
    d = tmp_path / "fake-bin"
    d.mkdir()
    for cli in ("claude", "codex", "gemini"):
        shim = d / cli
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKES / f"fake_{cli}.py"}" "$@"\n')
        shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{d}{os.pathsep}{os.environ['PATH']}")
    return d


@pytest.fixture
def scenario(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Write what the fake agents will do; returns the writer."""
    path = tmp_path / "scenario.json"
    monkeypatch.setenv("FAKE_AGENT_SCENARIO", str(path))

    def write(**play: Any) -> Path:
        path.write_text(json.dumps(play))
        return path

    return write


def log_path(root: Path, orchestration: str, n: int, phase: str) -> Path:
    """Where the daemon keeps a run's transcript (`Project.log_file`)."""
    return root / ".specflow" / "logs" / orchestration / f"{n}-{phase}.jsonl"


class Harness:
    """A supervisor whose events land in a queue, as they will in the daemon's event loop."""

    def __init__(self, pool: Pool | None = None, grace_s: float = 0.3) -> None:
        self.events: queue.Queue[object] = queue.Queue()
        self.seen: list[object] = []
        self.supervisor = Supervisor(self.events.put, pool=pool, grace_s=grace_s)

    def next(self, kind: type, run_id: str | None = None, timeout: float = 20.0) -> Any:
        """The next event of `kind` (for `run_id`), keeping every event in `seen`."""
        while True:
            event = self.events.get(timeout=timeout)
            self.seen.append(event)
            if isinstance(event, kind) and (run_id is None or getattr(event, "run_id", None) == run_id):
                return event

    def result(self, run_id: str, timeout: float = 20.0) -> RunResult:
        return self.next(RunFinished, run_id, timeout).result

    def run(self, request: AgentRequest, log: Path, run_id: str = "r1", **kw: Any) -> RunResult:
        self.supervisor.start(run_id, request, log, **kw)
        return self.result(run_id)


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = Harness()
    yield h
    h.supervisor.close()


@pytest.fixture
def recording_specflowd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `specflowd` first on PATH that only records its arguments, one call per line, and succeeds."""
    d = tmp_path / "recording-bin"
    d.mkdir()
    calls = tmp_path / "specflowd-calls"
    shim = d / "specflowd"
    shim.write_text(f'#!/bin/sh\necho "$*" >> "{calls}"\n')
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{d}{os.pathsep}{os.environ['PATH']}")
    return calls
