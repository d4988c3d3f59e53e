"""Every state a crash in the middle of a mark can leave in the design-docs worktree, made by hand,
and put right by the next writer without losing a person's real edit: the branch ahead of the
index with the file already written (the state that wedged every later mark), a temp file of a
killed writer, a lock whose git was killed. `doctor` reports what was repaired."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from tests.conftest import git, run_cli
from tests.daemon.conftest import make_project


def docs(project: Path) -> Path:
    return project / ".specflow" / "design-docs"


def killed_between_commit_and_index(project: Path) -> str:
    """A mark committed and its file written, the index refresh killed: `git status` shows MM."""
    old = git(project, "rev-parse", "helix-design-docs").strip()
    assert run_cli("mark", "T001", "--done", "--now", cwd=project).returncode == 0
    git(docs(project), "read-tree", old)  # the index as it was before the mark
    assert git(docs(project), "status", "--porcelain").startswith("MM ")
    return git(project, "rev-parse", "helix-design-docs").strip()


def test_the_next_mark_restages_what_a_crash_left_behind_the_index(repo: Path) -> None:
    project = make_project(repo)
    tip = killed_between_commit_and_index(project)
    r = run_cli("mark", "T002", "--done", "--now", cwd=project)
    assert r.returncode == 0, r.stderr
    assert git(project, "rev-parse", "helix-design-docs^").strip() == tip
    assert git(docs(project), "status", "--porcelain") == ""
    assert "restaged specs/demo/progress.md" in (project / ".specflow" / "repairs.log").read_text()
    doctor = json.loads(run_cli("doctor", "--json", cwd=project).stdout)
    repairs = next(c for c in doctor if c["name"] == "repairs")
    assert "restaged specs/demo/progress.md" in repairs["detail"]


def test_a_persons_edit_is_never_taken_for_a_crash(repo: Path) -> None:
    project = make_project(repo)
    killed_between_commit_and_index(project)
    tasks = docs(project) / "specs" / "demo" / "progress.md"
    edited = tasks.read_text().replace("Ship it", "Ship it, carefully")
    tasks.write_text(edited)
    r = run_cli("mark", "T002", "--done", "--now", cwd=project)
    assert r.returncode == 1 and "uncommitted edits" in r.stderr and "Traceback" not in r.stderr
    assert tasks.read_text() == edited  # kept for the person to commit or discard


def test_the_daemon_repairs_the_worktree_when_it_starts(repo: Path, start_daemon) -> None:
    project = make_project(repo)
    killed_between_commit_and_index(project)
    folder = docs(project) / "specs" / "demo"
    dead = 2 ** 22 + 17  # above pid_max's default: no process has this pid
    stray = folder / f".progress.md.{dead}.0123abcd.tmp"
    stray.write_text("half a task list")
    lock = Path(git(docs(project), "rev-parse", "--absolute-git-dir").strip()) / "index.lock"
    lock.write_text("")
    os.utime(lock, (time.time() - 60, time.time() - 60))
    d = start_daemon(project)
    assert not stray.exists() and not lock.exists()
    assert git(docs(project), "status", "--porcelain") == ""
    log = (project / ".specflow" / "repairs.log").read_text()
    assert "temp file" in log and "index.lock" in log and "restaged" in log
    d.drop({"id": "after", "action": "mark", "spec": "demo", "task": "T002", "status": "done"}, "after.json")
    assert d.answer("after")["ok"] is True


def test_the_daemon_clears_its_own_temp_files_a_kill_left(repo: Path, start_daemon) -> None:
    """An answer, a digest or a state file half written when the daemon was killed: the next one
    removes the temp file; a temp file whose writer still runs is left alone."""
    project = make_project(repo)
    dead = 2 ** 22 + 17
    specflow = project / ".specflow"
    (specflow / "workflows").mkdir(exist_ok=True)
    strays = [specflow / "responses" / ".tmp" / f".k1.json.{dead}.0123abcd.tmp",
              specflow / "responses" / ".digests" / f".k1.{dead}.0123abcd.tmp",
              specflow / "workflows" / f".orchestration-0123abcd.json.{dead}.0123abcd.tmp"]
    live = specflow / "workflows" / f".orchestration-0123abcd.json.{os.getpid()}.0123abcd.tmp"
    for path in [*strays, live]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{half")
    start_daemon(project)
    assert [p for p in strays if p.exists()] == [] and live.exists()
