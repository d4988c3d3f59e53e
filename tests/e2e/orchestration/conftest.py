"""Fixtures for whole orchestrations: a project with agents configured, and a daemon serving it."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import configure, git, run_cli, wait_for  # noqa: F401 - configure re-exported
from tests.daemon.conftest import DaemonProcess, start_daemon  # noqa: F401 - a fixture re-exported

FAKES = Path(__file__).resolve().parents[2] / "fakes"
DEMO_AGENT = f"{sys.executable} -m specflowd.agents.demo"
# The fake Claude Code reads its scenario from the environment, which agents get only by env_pass.
FAKE_CLAUDE = {"kind": "claude", "command": "claude", "env_pass": ["FAKE_AGENT_SCENARIO"]}
TASKS = """# Tasks

## Setup
- [ ] T001 Create the greeting
- [ ] T002 Add the farewell

## Core
- [ ] T003 Wire them together
- [ ] T004 Document it
"""


def demo_project(repo: Path, tasks: str = TASKS) -> Path:
    """`repo` with spec `demo` whose task list is `tasks`, and the demo agent configured."""
    for args in (("init",), ("new", "demo")):
        assert run_cli(*args, cwd=repo).returncode == 0
    docs = repo / ".specflow" / "design-docs"
    (docs / "specs" / "demo" / "progress.md").write_text(tasks)
    git(docs, "commit", "-qam", "task list")
    configure(repo, agent={"kind": "command", "command": DEMO_AGENT},
              orchestration={"skip_analyze": True, "auto_merge": True})
    return repo


@pytest.fixture
def project(repo: Path) -> Path:
    """A project with spec `demo` (4 tasks, 2 sections) and the demo agent configured."""
    return demo_project(repo)


@pytest.fixture
def fake_claude(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """`claude` on PATH played by the fake; returns a writer for its scenario file."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    shim = bin_dir / "claude"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKES / "fake_claude.py"}" "$@"\n')
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    scenario = tmp_path / "scenario.json"
    monkeypatch.setenv("FAKE_AGENT_SCENARIO", str(scenario))

    def write(**play: Any) -> None:
        scenario.write_text(json.dumps(play))

    return write


def start(root: Path, *extra: str) -> str:
    r = run_cli("start", "demo", "--wait", "30", "--json", *extra, cwd=root)
    assert r.returncode == 0, (r.stdout, r.stderr)
    return json.loads(r.stdout)["result"]["orchestration"]


def state(root: Path, oid: str) -> dict[str, Any]:
    return json.loads((root / ".specflow" / "workflows" / f"orchestration-{oid}.json").read_text())


def wait_status(root: Path, oid: str, statuses: set[str], timeout: float = 60) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        try:
            s = state(root, oid)
        except (OSError, ValueError):
            return None
        return s if s["status"] in statuses else None

    return wait_for(reached, timeout, interval=0.02, message=f"{oid} to reach {statuses}")  # type: ignore[return-value]


def feed(root: Path) -> list[dict[str, Any]]:
    r = run_cli("log", "-n", "1000", "--json", cwd=root)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def events(root: Path, oid: str) -> list[str]:
    return [e["event"] for e in feed(root) if e.get("orchestration") == oid and e.get("event")]
