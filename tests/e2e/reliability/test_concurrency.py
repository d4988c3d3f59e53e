"""Marks through the daemon while another process commits to the design-docs branch and a person
edits the task list in the worktree: every change survives. (`--runslow`: the full 1,000 marks.)"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from specflowd.core.tasklist import parse
from specflowd.core.vocab import TaskStatus
from tests.conftest import git, run_cli, wait_for
from tests.daemon.conftest import make_project
from tests.repo.test_marks import WRITER


def run_marks(repo: Path, start_daemon, n_marks: int, n_external: int) -> None:
    tasks = "## All\n" + "".join(f"- [ ] T{i:04d} task {i}\n" for i in range(1, n_marks + 1))
    project = make_project(repo, tasks=tasks)
    # The daemon hears of the other process moving the branch by its watch on the ref.
    assert run_cli("hooks", "install", cwd=project).returncode == 0
    d = start_daemon(project)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(project), str(n_external)])
    person_done = threading.Event()

    def person() -> None:
        # A person adds a task at the end while the marks pour in; the daemon commits the edit.
        wait_for(lambda: (project / ".specflow/responses").exists() and
                 len(list((project / ".specflow/responses").glob("m-*.json"))) >= n_marks // 3, 120,
                 message="a third of the marks")
        path = project / ".specflow/design-docs/specs/demo/progress.md"
        # `echo … >> progress.md`: an edit that does not rewrite the lines the marks change. (An
        # editor that saves a buffer read before a mark landed saves that box too: README says so.)
        with open(path, "a") as f:
            f.write("- [ ] T9999 added by a person\n")
        person_done.set()

    helper = threading.Thread(target=person)
    helper.start()
    for i in range(1, n_marks + 1):
        d.drop({"id": f"m-{i}", "action": "mark", "spec": "demo", "task": f"T{i:04d}", "status": "done"},
               f"m-{i}.json")
    helper.join(timeout=180)
    assert person_done.is_set()
    assert writer.wait(timeout=300) == 0
    for i in range(1, n_marks + 1):
        assert d.answer(f"m-{i}", timeout=120)["ok"] is True

    def settled() -> bool:
        text = git(project, "show", "helix-design-docs:specs/demo/progress.md")
        return "T9999" in text
    wait_for(settled, 30, message="the person's edit committed")
    final = parse(git(project, "show", "helix-design-docs:specs/demo/progress.md").encode())
    statuses = {t.id: t.status for t in final.tasks}
    assert all(statuses[f"T{i:04d}"] is TaskStatus.DONE for i in range(1, n_marks + 1)), "a mark was lost"
    assert statuses["T9999"] is TaskStatus.PENDING
    tree = git(project, "ls-tree", "-r", "--name-only", "helix-design-docs")
    assert sum(1 for line in tree.splitlines() if line.startswith("notes/ext-")) == n_external
    wait_for(lambda: git(project / ".specflow/design-docs", "status", "--porcelain") == "", 30,
             message="a clean design-docs worktree")
    assert subprocess.run(["git", "fsck", "--no-dangling"], cwd=project, capture_output=True).returncode == 0
    answers = [json.loads(p.read_text()) for p in (project / ".specflow/responses").glob("m-*.json")]
    assert len(answers) == n_marks


def test_marks_external_commits_and_a_person_at_once(repo: Path, start_daemon) -> None:
    run_marks(repo, start_daemon, n_marks=200, n_external=60)


@pytest.mark.slow
def test_a_thousand_marks_two_hundred_commits_and_a_person(repo: Path, start_daemon) -> None:
    run_marks(repo, start_daemon, n_marks=1000, n_external=200)
