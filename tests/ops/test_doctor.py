"""`specflowd doctor`: every check says what is wrong and how to fix it; exit 1 when something is."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_cli


@pytest.fixture
def project(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    assert run_cli("init", cwd=repo).returncode == 0
    fake_bin = tmp_path / "agent-bin"
    fake_bin.mkdir()
    claude = fake_bin / "claude"
    claude.write_text("#!/bin/sh\nexit 0\n")
    claude.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    return repo


def checks(project: Path) -> tuple[int, dict[str, dict]]:
    r = run_cli("doctor", "--json", cwd=project)
    return r.returncode, {c["name"]: c for c in json.loads(r.stdout)}


def test_a_healthy_project_passes(project: Path) -> None:
    run_cli("hooks", "install", cwd=project)
    code, by_name = checks(project)
    assert code == 0, by_name
    for name in ("git", "initialized", "branch", "worktree", "excluded", "hooks", "agent", "inotify"):
        assert by_name[name]["level"] == "ok", by_name[name]
    assert by_name["daemon"]["level"] == "warn" and "specflowd run" in by_name["daemon"]["fix"]


def test_problems_are_named_with_a_fix(project: Path) -> None:
    assert run_cli("hooks", "uninstall", cwd=project).returncode == 0
    shutil.rmtree(project / ".specflow" / "design-docs")
    (project / ".specflow" / "config.toml").write_text('[agent]\ncommand = "no-such-agent-cli"\n')
    r = run_cli("doctor", cwd=project)
    assert r.returncode == 1
    assert "fail  worktree" in r.stdout and "git worktree prune" in r.stdout
    assert "fail  agent" in r.stdout and "no-such-agent-cli" in r.stdout
    assert "warn  hooks" in r.stdout and "specflowd hooks install" in r.stdout


def test_a_broken_config_is_named(project: Path) -> None:
    (project / ".specflow" / "config.toml").write_text("[pool]\nmax_agents = 'many'\n")
    code, by_name = checks(project)
    assert code == 1 and "pool.max_agents" in by_name["initialized"]["detail"]


def test_outside_a_repository(tmp_path: Path) -> None:
    r = run_cli("doctor", cwd=tmp_path)
    assert r.returncode == 1 and "not inside a git repository" in r.stdout


def test_a_running_daemon_is_seen_through_its_lock(project: Path) -> None:
    # The lock is on the .specflow folder; daemon.lock only tells the pid.
    (project / ".specflow" / "daemon.lock").write_text(str(os.getpid()))
    fd = os.open(project / ".specflow", os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _, by_name = checks(project)
        assert by_name["daemon"]["level"] == "ok" and str(os.getpid()) in by_name["daemon"]["detail"]
    finally:
        os.close(fd)
    _, by_name = checks(project)
    assert by_name["daemon"]["level"] == "warn"


def test_git_version_is_checked() -> None:
    out = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout
    from specflowd.ops.doctor import check_git

    result = check_git()
    assert result.detail.split()[1] in out
