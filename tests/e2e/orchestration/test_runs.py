"""Whole orchestrations through a real daemon, real agents (the demo agent, the fake Claude Code),
real worktrees and merges: each behaviour of SPEC §6 with a test that fails without it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import git, run_cli, wait_for
from tests.e2e.orchestration.conftest import (
    DEMO_AGENT,
    FAKE_CLAUDE,
    configure,
    events,
    feed,
    start,
    state,
    wait_status,
)


def done_marks(root: Path) -> Counter[str]:
    return Counter(t["task"] for e in feed(root) if not e.get("event")
                   for t in e["tasks"] if t["status"] == "done")


def test_demo_lists_its_examples_and_runs_another(tmp_path: Path) -> None:
    listed = run_cli("demo", "--list", cwd=tmp_path)
    assert listed.returncode == 0 and listed.stdout.split()[0] == "hello" and "kiro" in listed.stdout
    assert run_cli("demo", "nope", cwd=tmp_path).returncode == 1
    r = subprocess.run([sys.executable, "-m", "specflowd", "demo", "kiro", "--dir", str(tmp_path / "kiro")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "merged specflow/kiro-plan into main" in r.stdout and "2.2 done" in r.stdout


def test_demo_command_runs_the_whole_loop(tmp_path: Path) -> None:
    # No time limit here (the demo's time is a benchmark's figure): only a hang is cut short.
    r = subprocess.run([sys.executable, "-m", "specflowd", "demo", "--dir", str(tmp_path / "demo")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    for line in ("batch 1/3 started", "healing batch 2/3", "batch 3/3 completed", "verify passed",
                 "merged specflow/hello-specflow into main", "completed"):
        assert line in r.stdout, line
    feed_lines = r.stdout.split("the feed (git log of helix-design-docs):\n")[1].split("\n\n")[0].splitlines()
    assert feed_lines[-1].endswith(": completed")  # the narration reads to the very end
    assert f"{len(feed_lines)} feed entries; status completed" in r.stdout
    project = tmp_path / "demo" / "project"
    files = git(project, "ls-tree", "--name-only", "main", "specflow-demo/").split()
    assert len(files) == 12
    assert set(done_marks(project).values()) == {1} and len(done_marks(project)) == 12


def test_a_batch_completes_only_when_its_tasks_are_marked(project: Path, start_daemon) -> None:
    """The agent succeeds but neither marks nor commits: a follow-up, then a heal, then needs_attention."""
    agent = project.parent / "idle-agent.sh"
    agent.write_text('#!/bin/sh\ncat >/dev/null\necho \'{"ok": true, "cost_usd": 0.01, "result": "did nothing"}\'\n')
    agent.chmod(0o755)
    configure(project, agent={"command": str(agent)})
    start_daemon(project)
    oid = start(project)
    s = wait_status(project, oid, {"needs_attention", "completed"})
    assert s["status"] == "needs_attention"
    assert s["batches"][0]["status"] != "completed"
    happened = events(project, oid)
    assert "followup-started" in happened and "heal-started" in happened
    assert "batch-completed" not in happened
    assert "T001" in s["error"] and "not marked" in s["error"]


@pytest.mark.parametrize("hooks", ["install", "uninstall"])
def test_commit_trailers_become_marks_with_or_without_the_hooks(project: Path, start_daemon, hooks: str) -> None:
    """An agent that commits with trailers and marks nothing itself. The post-commit hook is the fast
    path, not the guarantee (Gemini CLI runs git with hooks off): after each run the daemon reads the
    trailers of the commits it added and marks what is not marked yet."""
    configure(project, agent={"command": f"{DEMO_AGENT} --no-mark"})
    assert run_cli("hooks", hooks, cwd=project).returncode == 0
    start_daemon(project)
    oid = start(project)
    s = wait_status(project, oid, {"needs_attention", "completed"})
    assert s["status"] == "completed", s["error"]
    assert [r["purpose"] for r in s["runs"]] == ["work", "work"]  # no follow-up was needed
    marks = [e for e in feed(project) if not e.get("event") and e["tasks"]]
    assert {t["task"] for e in marks for t in e["tasks"]} == {"T001", "T002", "T003", "T004"}
    assert {e["source"] for e in marks} == {"request" if hooks == "install" else "trailer"}
    code = set(git(project, "log", "--format=%H", "specflow/demo").split())
    assert all(e["evidence"] in code for e in marks)  # each names the code commit that did it
    assert set(done_marks(project).values()) == {1}


def test_waiting_merge_then_a_merge_request(project: Path, start_daemon) -> None:
    configure(project, orchestration={"auto_merge": False})
    start_daemon(project)
    oid = start(project)
    s = wait_status(project, oid, {"waiting_merge", "needs_attention", "completed"})
    assert s["status"] == "waiting_merge"
    assert git(project, "ls-tree", "main", "specflow-demo/") == ""
    r = run_cli("merge", oid, "--wait", "30", cwd=project)
    assert r.returncode == 0, r.stderr
    wait_status(project, oid, {"completed"})
    assert "T004.md" in git(project, "ls-tree", "-r", "--name-only", "main")
    assert not (project / ".specflow" / "worktrees" / "demo").exists()  # clean, so removed


def test_a_merge_conflict_stops_for_attention(project: Path, start_daemon) -> None:
    (project / "specflow-demo").mkdir()
    (project / "specflow-demo" / "T003.md").write_text("a person wrote this first\n")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "meanwhile")
    git(project, "branch", "-f", "specflow/demo", "HEAD~1")  # the work branch starts before it
    start_daemon(project)
    oid = start(project)
    s = wait_status(project, oid, {"needs_attention", "completed"})
    assert s["status"] == "needs_attention"
    assert "specflow-demo/T003.md" in s["error"]
    assert (project / "specflow-demo" / "T003.md").read_text() == "a person wrote this first\n"


def test_budget_stop_is_clean_and_said(project: Path, start_daemon, fake_claude) -> None:
    configure(project, agent=FAKE_CLAUDE, budget={"per_batch": 1.0})
    fake_claude(steps=[{"events": 2}], outcome="success", cost=2.5)
    start_daemon(project)
    oid = start(project)
    s = wait_status(project, oid, {"needs_attention", "completed"})
    assert s["status"] == "needs_attention"
    assert "budget" in s["error"]
    assert len(s["runs"]) == 1  # nothing else was started after the stop
    assert "budget-stopped" in events(project, oid)
    assert s["total_cost_usd"] <= 1.0 + 2.5


def test_a_usage_limit_waits_for_the_reset_then_resumes(project: Path, start_daemon, fake_claude) -> None:
    configure(project, agent=FAKE_CLAUDE)
    def work(*tasks: str) -> dict:
        steps = [step for t in tasks for step in ({"write": f"{t}.txt", "content": t},
                                                  {"commit": f"work on {t}", "task": t}, {"mark": t})]
        return {"steps": steps, "outcome": "success", "cost": 0.01}

    fake_claude(runs=[{"outcome": "usage_limit", "reset_in_s": 3}, work("T001", "T002"), work("T003", "T004")])
    start_daemon(project)
    oid = start(project)
    paused = wait_status(project, oid, {"paused", "completed", "needs_attention"})
    assert paused["status"] == "paused" and paused["waiting_until"] is not None
    assert "rate-limited" in events(project, oid)
    # Until the reset the CLI said, not the 60 s back-off for a limit that names none.
    noted = next(d["at"] for d in state(project, oid)["decisions"] if d["reason"] == "rate-limited")
    assert (datetime.fromisoformat(paused["waiting_until"]) - datetime.fromisoformat(noted)).total_seconds() <= 3
    s = wait_status(project, oid, {"completed", "needs_attention"}, timeout=60)
    assert s["status"] == "completed", s["error"]
    assert [r["ok"] for r in s["runs"]] == [False, True, True]  # it went on by itself after the wait


def test_pause_resume_and_cancel(project: Path, start_daemon, fake_claude) -> None:
    configure(project, agent=FAKE_CLAUDE)
    gate = project.parent / "gate"
    fake_claude(steps=[{"wait_for_file": str(gate)}, {"mark": "T001"}, {"mark": "T002"}], outcome="success",
                cost=0.01)
    start_daemon(project)
    oid = start(project)
    wait_for(lambda: any(r["pid"] for r in state(project, oid)["runs"]), 30, message="the agent running")
    r = run_cli("pause", oid, "--wait", "10", cwd=project)
    assert r.returncode == 0, r.stderr
    gate.write_text("go\n")
    s = wait_status(project, oid, {"paused"})
    assert len(s["runs"]) == 1  # the run finished, and the next batch did not start
    assert run_cli("resume", oid, "--wait", "10", cwd=project).returncode == 0
    wait_for(lambda: len(state(project, oid)["runs"]) >= 2, 30, message="the next batch starting")
    r = run_cli("cancel", oid, "--wait", "10", cwd=project)
    assert r.returncode == 0, r.stderr
    s = wait_status(project, oid, {"cancelled"})
    assert git(project, "rev-parse", "--verify", "specflow/demo").strip()  # branch kept
    assert (project / ".specflow" / "worktrees" / "demo").exists()  # worktree kept
    assert "cancelled" in events(project, oid)


def test_one_orchestration_per_spec(project: Path, start_daemon, fake_claude) -> None:
    configure(project, agent=FAKE_CLAUDE)
    fake_claude(steps=[{"wait_for_file": str(project.parent / "never")}], outcome="success")
    start_daemon(project)
    oid = start(project)
    r = run_cli("start", "demo", "--wait", "30", cwd=project)
    assert r.returncode == 1 and oid in r.stderr
    run_cli("cancel", oid, "--wait", "10", cwd=project)
    wait_status(project, oid, {"cancelled"})


def test_a_killed_daemon_adopts_its_running_agent(project: Path, start_daemon, fake_claude) -> None:
    configure(project, agent=FAKE_CLAUDE)
    gate = project.parent / "gate"
    steps = [{"wait_for_file": str(gate)}] + [{"mark": t} for t in ("T001", "T002")]
    fake_claude(runs=[{"steps": steps, "outcome": "success", "cost": 0.01},
                      {"steps": [{"mark": t} for t in ("T003", "T004")], "outcome": "success", "cost": 0.01}])
    first = start_daemon(project)
    oid = start(project)
    run = wait_for(lambda: next((r for r in state(project, oid)["runs"] if r["pid"]), None), 30,
                   message="the agent running")
    first.stop(signal.SIGKILL)
    start_daemon(project)
    gate.write_text("go\n")
    s = wait_status(project, oid, {"completed", "needs_attention"})
    assert s["status"] == "completed", s["error"]
    assert s["runs"][0]["pid"] == run["pid"]  # the same process, adopted, not run again
    assert set(done_marks(project).values()) == {1}


def test_status_rebuilds_a_lost_state_file(project: Path, start_daemon) -> None:
    daemon = start_daemon(project)
    oid = start(project)
    wait_status(project, oid, {"completed"})
    daemon.stop()
    (project / ".specflow" / "workflows" / f"orchestration-{oid}.json").unlink()
    r = run_cli("status", oid, "--json", cwd=project)
    assert r.returncode == 0, r.stderr
    assert "rebuilt" in r.stderr
    data = json.loads(r.stdout)
    assert data["status"] == "completed" and data["tasks_done"] == 4
