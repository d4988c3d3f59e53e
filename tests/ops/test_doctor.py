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
    for name in ("git", "initialized", "branch", "worktree", "excluded", "hooks", "agent", "program", "permissions",
                 "inotify"):
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


@pytest.mark.parametrize(("agent", "codex_config", "says"), [
    ('kind = "codex"\ncommand = "claude"\npermission_mode = "workspace-write"', "", "keeps the repository's git"),
    ('kind = "codex"\ncommand = "claude"', 'sandbox_mode = "workspace-write"\n', "your Codex config's sandbox_mode"),
    ('disallowed_tools = ["Bash(git commit:*)"]', "", "disallowed_tools refuses Bash(git commit:*)"),
    ('kind = "gemini"\ncommand = "claude"\npermission_mode = "auto_edit"', "", "cannot answer"),
])
def test_permissions_that_cannot_let_an_agent_commit_are_warned_about(
        project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, agent: str, codex_config: str, says: str) -> None:
    (project / ".specflow" / "config.toml").write_text(f"[agent]\n{agent}\n")
    codex_home = tmp_path / "codex-home"
    codex_home.mkdir()
    (codex_home / "config.toml").write_text(codex_config)
    monkeypatch.setenv("CODEX_HOME", str(codex_home))
    _, by_name = checks(project)
    assert by_name["permissions"]["level"] == "warn" and says in by_name["permissions"]["detail"], by_name
    assert "allowed" not in by_name["permissions"]["detail"] or "README" in by_name["permissions"]["fix"]


def test_hooks_that_run_a_specflowd_that_is_gone_are_warned_about(project: Path) -> None:
    hook = project / ".git" / "hooks" / "post-commit"
    text = hook.read_text()
    line = next(line for line in text.splitlines() if line.startswith("installed="))
    hook.write_text(text.replace(line, "installed='/old/venv/bin/specflowd'"))
    _, by_name = checks(project)
    assert by_name["hooks"]["level"] == "warn" and "/old/venv/bin/specflowd" in by_name["hooks"]["detail"]
    assert by_name["program"]["level"] == "ok"  # while agents get this one
