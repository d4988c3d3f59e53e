"""Small faults found when specflowd was attacked: a 0-byte save, a deleted lock file, a request id
reused for other content, flags that contradict each other, a file name too long for the disk."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import git, run_cli, wait_for
from tests.daemon.conftest import make_project


@pytest.mark.parametrize("edit", ["a 0-byte save", "most tasks removed"])
def test_an_edit_that_removes_most_tasks_is_not_committed_for_the_person(repo: Path, start_daemon,
                                                                         edit: str) -> None:
    project = make_project(repo)
    d = start_daemon(project)
    head = git(project, "rev-parse", "helix-design-docs")
    tasks = project / ".specflow" / "design-docs" / "specs" / "demo" / "progress.md"
    text = tasks.read_text()
    tasks.write_text("" if edit == "a 0-byte save" else text.split("- [ ] T002")[0])
    wait_for(lambda: "hand edit not committed" in d.log(), 15, message="the daemon holding the edit back")
    assert "tasks" in d.log().split("hand edit not committed")[1].splitlines()[0]
    assert git(project, "rev-parse", "helix-design-docs") == head
    status = run_cli("status", cwd=project)
    assert "uncommitted edit that specflowd does not commit for you" in status.stderr
    assert "removes" in status.stderr
    # A mark does not commit it either, and says why.
    r = run_cli("mark", "T001", "--done", "--wait", "10", cwd=project)
    assert r.returncode == 1 and "removes" in r.stderr
    # The person commits it themselves: that is theirs to do.
    git(tasks.parent, "commit", "-qam", "start the list over")
    assert git(project, "rev-parse", "helix-design-docs") != head


def test_a_deleted_lock_file_does_not_let_a_second_daemon_in(repo: Path, start_daemon) -> None:
    project = make_project(repo)
    first = start_daemon(project)
    (project / ".specflow" / "daemon.lock").unlink()
    second = start_daemon(project, ready=False)
    assert second.proc.wait(timeout=30) == 1
    assert "already serves" in second.log()
    first.drop({"id": "still", "action": "mark", "spec": "demo", "task": "T001", "status": "done"}, "still.json")
    assert first.answer("still")["ok"] is True
    assert "FileNotFoundError" not in first.log()


def test_an_id_reused_for_other_content_is_refused_apart(repo: Path, start_daemon) -> None:
    project = make_project(repo)
    d = start_daemon(project)
    mark = {"id": "deploy", "action": "mark", "spec": "demo", "task": "T001", "status": "done"}
    d.drop(mark, "deploy.json")
    first = d.answer("deploy")
    assert first["ok"] is True
    d.filed("deploy.json")
    d.drop(mark, "deploy.json")  # the same request again: its first answer, done once
    d.filed("deploy~2.json")
    assert json.loads((project / ".specflow/responses/deploy.json").read_text()) == first
    other = dict(mark, task="T002")
    d.drop(other, "deploy.json")  # the same id, other content: refused, apart
    answer = d.answer("deploy~2")
    assert answer["ok"] is False and answer["error"]["code"] == "conflict"
    assert "deploy" in answer["error"]["message"] and "other content" in answer["error"]["message"]
    assert json.loads((project / ".specflow/responses/deploy.json").read_text()) == first
    assert "- [ ] T002" in git(project, "show", "helix-design-docs:specs/demo/progress.md")


@pytest.mark.parametrize("args", [
    ("recover", "0123abcd", "--retry", "--skip"),
    ("recover", "0123abcd", "--skip", "--abort"),
    ("mark", "T001", "--done", "--todo", "--now"),
    ("mark", "T001", "--skipped", "--blocked", "why", "--now"),
    ("mark", "T001", "--blocked", "--spec", "demo", "--now"),
])
def test_contradicting_flags_are_a_usage_error_that_changes_nothing(repo: Path, args: tuple[str, ...]) -> None:
    project = make_project(repo)
    head = git(project, "rev-parse", "helix-design-docs")
    r = run_cli(*args, cwd=project)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    assert git(project, "rev-parse", "helix-design-docs") == head
    assert not list((project / ".specflow" / "requests").glob("*.json"))


def test_plan_of_a_name_too_long_for_the_disk(tmp_path: Path) -> None:
    where = tmp_path / "empty"
    where.mkdir()
    r = subprocess.run(["specflowd", "plan", "x" * 300], cwd=where, capture_output=True, text=True)
    assert r.returncode in (1, 2) and "Traceback" not in r.stderr and "too long" in r.stderr.lower(), r.stderr
    r = subprocess.run(["specflowd", "plan", "x" * 300 + ".md"], cwd=where, capture_output=True, text=True)
    assert r.returncode in (1, 2) and "Traceback" not in r.stderr, r.stderr
    assert not os.listdir(where)
