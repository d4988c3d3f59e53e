"""Faults around the daemon: a full disk, the design-docs worktree or branch gone, leftover locks,
an agent that ignores SIGTERM or tramples the task list, and a clock that jumps."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from specflowd.core import machine
from specflowd.core.plan import make_plan
from specflowd.core.state import OrchestrationState
from specflowd.core.tasklist import parse
from specflowd.core.vocab import Status
from tests.conftest import git, run_cli, wait_for
from tests.daemon.conftest import make_project
from tests.e2e.orchestration.conftest import FAKE_CLAUDE, configure, start, state, wait_status


def mark_request(d, rid: str, task: str) -> None:
    d.drop({"id": rid, "action": "mark", "spec": "demo", "task": task, "status": "done"}, f"{rid}.json")


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs for the project needs root")
def test_a_full_disk_keeps_requests_queued_and_recovers_by_itself(tmp_path: Path, start_daemon) -> None:
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    try:
        repo = mount / "project"
        repo.mkdir()
        git(repo, "init", "-q", "-b", "main")
        git(repo, "commit", "-q", "--allow-empty", "-m", "initial")
        project = make_project(repo)
        d = start_daemon(project)
        # Written while there is room, renamed in once there is none (a rename needs no space).
        tmp = project / ".specflow" / "requests" / "tmp" / "full.json"
        tmp.write_text(json.dumps({"id": "full", "action": "mark", "spec": "demo", "task": "T001",
                                   "status": "done"}))
        with open(mount / "filler", "wb", buffering=0) as f:
            for size in (65536, 4096, 1):
                try:
                    while True:
                        f.write(b"\0" * size)
                except OSError:
                    pass
        os.rename(tmp, project / ".specflow" / "requests" / "full.json")
        wait_for(lambda: "no space left" in d.log(), 15, message="the daemon to report it")
        assert d.proc.poll() is None
        assert not (project / ".specflow" / "responses" / "full.json").exists()
        assert (project / ".specflow" / "requests" / "full.json").exists()  # still queued, not lost
        (mount / "filler").unlink()
        assert d.answer("full", timeout=30)["ok"] is True  # the periodic rescan picks it up again
        docs = project / ".specflow" / "design-docs"
        assert "- [x] T001" in git(project, "show", "helix-design-docs:specs/demo/progress.md")
        assert git(docs, "status", "--porcelain") == ""
        assert subprocess.run(["git", "fsck", "--no-dangling"], cwd=project, capture_output=True).returncode == 0
        d.stop()
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_the_worktree_deleted_under_the_daemon(repo: Path, start_daemon) -> None:
    project = make_project(repo)
    d = start_daemon(project)
    shutil.rmtree(project / ".specflow" / "design-docs")
    mark_request(d, "gone", "T001")
    answer = d.answer("gone")
    assert answer["ok"] is False and "specflowd init" in answer["error"]["message"]
    assert d.proc.poll() is None
    doctor = run_cli("doctor", cwd=project)
    assert doctor.returncode == 1 and "fail  worktree" in doctor.stdout
    assert run_cli("init", cwd=project).returncode == 0  # and init brings it back
    mark_request(d, "back", "T001")
    assert d.answer("back")["ok"] is True
    # The new worktree is watched too: a hand edit there is committed (after the next rescan).
    tasks = project / ".specflow" / "design-docs" / "specs" / "demo" / "progress.md"
    tasks.write_text(tasks.read_text().replace("- [ ] T002", "- [x] T002"))
    wait_for(lambda: "- [x] T002" in git(project, "show", "helix-design-docs:specs/demo/progress.md"), 30,
             message="the hand edit in the new worktree committed")
    assert "watching the design-docs worktree" in d.log()


def test_the_branch_removed_under_the_daemon(repo: Path, start_daemon) -> None:
    project = make_project(repo)
    d = start_daemon(project)
    git(project, "update-ref", "-d", "refs/heads/helix-design-docs")
    mark_request(d, "nobranch", "T001")
    answer = d.answer("nobranch")
    assert answer["ok"] is False and "helix-design-docs" in answer["error"]["message"]
    assert d.proc.poll() is None
    assert run_cli("doctor", cwd=project).returncode == 1


def test_a_held_lock_is_named_in_the_answer_and_a_dead_ones_is_cleared(repo: Path, start_daemon) -> None:
    project = make_project(repo)
    d = start_daemon(project)
    gitdir = Path(git(project / ".specflow" / "design-docs", "rev-parse", "--absolute-git-dir").strip())
    with open(gitdir / "index.lock", "w"):  # a git at work holds its lock open
        mark_request(d, "locked", "T001")
        answer = d.answer("locked")
    assert answer["ok"] is False and answer["error"]["code"] == "conflict"
    assert str(gitdir / "index.lock") in answer["error"]["message"]
    old = time.time() - 60
    os.utime(gitdir / "index.lock", (old, old))  # left behind by a killed git, held by nobody: cleared
    mark_request(d, "unlocked", "T001")
    assert d.answer("unlocked")["ok"] is True
    assert not (gitdir / "index.lock").exists()


def test_an_agent_that_ignores_sigterm_is_killed_on_cancel(repo: Path, start_daemon, fake_claude) -> None:
    project = make_project(repo)
    configure(project, agent=FAKE_CLAUDE, orchestration={"skip_analyze": True})
    fake_claude(steps=[{"hang": True, "ignore_term": True}], outcome="success")
    start_daemon(project)
    oid = start(project)
    run = wait_for(lambda: next((r for r in state(project, oid)["runs"] if r["pid"]), None), 30,
                   message="the agent running")
    assert run_cli("cancel", oid, "--wait", "10", cwd=project).returncode == 0
    wait_status(project, oid, {"cancelled"})
    wait_for(lambda: not Path(f"/proc/{run['pid']}").exists() or
             Path(f"/proc/{run['pid']}/stat").read_text().split(")")[1].split()[0] == "Z", 20,
             message="the agent to be killed")


def test_an_agent_that_tramples_the_task_list(repo: Path, start_daemon) -> None:
    """It deletes progress.md in the design-docs worktree and commits there itself: the branch keeps
    the task list, and the orchestration stops for attention instead of counting the work done."""
    project = make_project(repo)
    script = project.parent / "trample.sh"
    script.write_text('#!/bin/sh\ncat >/dev/null\ndocs="$SPECFLOW_PROJECT/.specflow/design-docs"\n'
                      'rm -f "$docs/specs/$SPECFLOW_SPEC/progress.md"\n'
                      'echo junk > "$docs/junk.txt"\n'
                      'git -C "$docs" add -A >/dev/null 2>&1\n'
                      'git -C "$docs" commit -qm "agent was here" >/dev/null 2>&1\n'
                      'echo \'{"ok": true, "cost_usd": 0.01}\'\n')
    script.chmod(0o755)
    configure(project, agent={"kind": "command", "command": str(script)}, orchestration={"skip_analyze": True})
    start_daemon(project)
    oid = start(project)
    s = wait_status(project, oid, {"needs_attention", "completed", "failed"})
    assert s["status"] == "needs_attention"
    assert "batch-completed" not in [d["decision"] for d in s["decisions"]]


def test_a_clock_that_jumps_back_and_forth() -> None:
    now = datetime.now(UTC)
    plan = make_plan(parse(b"## A\n- [ ] T001 one\n"), spec="demo", file="specs/demo/progress.md")
    s = OrchestrationState(id="0123abcd", spec="demo", project="/p", created_at=now, updated_at=now)
    s.config.orchestration.skip_analyze = True
    t = machine.step(s, machine.Start(now=now, plan=plan))
    run_n = next(a.n for a in t.actions if a.type == "run_agent")
    limited = machine.RunResult(ok=False, error_type="rate_limited", resets_at=now + timedelta(minutes=10))
    t = machine.step(t.state, machine.AgentFinished(now=now - timedelta(hours=3), run_n=run_n, result=limited))
    assert t.refused is None and t.state.status is Status.PAUSED and t.state.waiting_until is not None
    early = machine.step(t.state, machine.RateLimitReset(now=now - timedelta(days=1)))
    assert early.refused is not None  # a clock that went back does not end the wait early
    late = machine.step(t.state, machine.RateLimitReset(now=now + timedelta(days=365)))
    assert late.refused is None and late.state.status is Status.RUNNING
