"""`specflowd log`: the feed read from git trailers, and followed live."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from tests.conftest import git, run_cli, wait_for
from tests.repo.test_marks import write_tasks


@pytest.fixture
def project(repo: Path) -> Path:
    run_cli("init", cwd=repo)
    for spec in ("alpha", "beta"):
        run_cli("new", spec, cwd=repo)
        write_tasks(repo, spec, "## A\n- [ ] T001 one\n- [ ] T002 two\n")
    return repo


def test_log_json_has_the_trailers(project: Path) -> None:
    sha = git(project, "rev-parse", "HEAD").strip()
    assert run_cli("mark", "T001", "--done", "--now", "--spec", "alpha", "--evidence", sha, cwd=project).returncode == 0
    assert run_cli("mark", "T002", "--blocked", "later", "--now", "--spec", "beta", cwd=project).returncode == 0
    r = run_cli("log", "--json", cwd=project)
    assert r.returncode == 0, r.stderr
    entries = json.loads(r.stdout)
    last, before = entries[-1], entries[-2]
    assert last["spec"] == "beta" and last["tasks"] == [{"task": "T002", "status": "blocked"}]
    assert before["spec"] == "alpha" and before["evidence"] == sha
    assert before["tasks"] == [{"task": "T001", "status": "done"}]
    assert entries[0]["event"] == "init"  # oldest first
    assert {"commit", "time", "author", "subject", "orchestration", "batch", "cost_usd"} <= set(last)


def test_log_filters_by_spec_and_limits(project: Path) -> None:
    for task in ("T001", "T002"):
        run_cli("mark", task, "--done", "--now", "--spec", "alpha", cwd=project)
    run_cli("mark", "T001", "--done", "--now", "--spec", "beta", cwd=project)
    alpha = json.loads(run_cli("log", "alpha", "--json", cwd=project).stdout)
    assert {e["spec"] for e in alpha} == {"alpha"} and len(alpha) == 3  # created + 2 marks
    assert len(json.loads(run_cli("log", "-n", "2", "--json", cwd=project).stdout)) == 2
    text = run_cli("log", "-n", "1", cwd=project).stdout
    assert "beta" in text and "T001 done" in text
    bad = run_cli("log", "../x", cwd=project)
    assert bad.returncode == 1 and "invalid spec id" in bad.stderr
    missing = run_cli("log", "nosuchspec", cwd=project)
    assert missing.returncode == 1 and "no spec 'nosuchspec'" in missing.stderr and missing.stdout == ""


def test_log_follow_prints_new_commits_as_they_land(project: Path) -> None:
    proc = subprocess.Popen(["specflowd", "log", "-f", "--json", "-n", "1"], cwd=project, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines: list[dict] = []

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(json.loads(line))

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        wait_for(lambda: len(lines) == 1, message="the initial entry")
        run_cli("mark", "T001", "--done", "--now", "--spec", "alpha", cwd=project)
        wait_for(lambda: len(lines) == 2, timeout=10, message="the first new mark")
        run_cli("mark", "T002", "--done", "--now", "--spec", "alpha", cwd=project)
        run_cli("mark", "T001", "--done", "--now", "--spec", "beta", cwd=project)
        wait_for(lambda: len(lines) == 4, timeout=10, message="two more marks")
        assert [e["tasks"][0]["task"] for e in lines[1:]] == ["T001", "T002", "T001"]
        assert [e["spec"] for e in lines[1:]] == ["alpha", "alpha", "beta"]
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        t.join(timeout=5)


def test_log_needs_the_branch(repo: Path) -> None:
    r = run_cli("log", cwd=repo)
    assert r.returncode == 1 and "specflowd init" in r.stderr


def test_follow_still_reports_quiet_while_the_git_dir_is_busy(project: Path) -> None:
    """Git and readers touch files in the git dir all the time: the follower must not take that
    for news, nor stop telling its caller every `idle_s` that nothing came (the demo waits so)."""
    from specflowd.repo.follow import follow
    from specflowd.repo.project import locate

    proj = locate(project)
    git(project, "pack-refs", "--all")  # read_ref then reads packed-refs, in the watched folder
    stop = threading.Event()
    quiet: list[list] = []

    def busy() -> None:
        n = 0
        while not stop.is_set():
            (proj.common_dir / "packed-refs").read_bytes()
            (proj.common_dir / "specflowd-test-noise").write_text(str(n))
            n += 1

    def follower_body() -> None:
        tip = git(project, "rev-parse", proj.branch_ref).strip()
        for entries in follow(proj, None, tip, idle_s=0.2):
            quiet.append(entries)
            if len(quiet) == 3 or stop.is_set():
                return

    noise = threading.Thread(target=busy, daemon=True)
    follower = threading.Thread(target=follower_body, daemon=True)
    noise.start()
    follower.start()
    try:
        wait_for(lambda: len(quiet) == 3, timeout=10, message="three quiet reports while the git dir is busy")
        assert quiet == [[], [], []]
    finally:
        stop.set()
        follower.join(timeout=5)
        noise.join(timeout=5)
