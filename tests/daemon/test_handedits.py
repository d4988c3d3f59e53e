"""Hand edits of task lists in the design-docs worktree are noticed and committed once they settle."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import git, wait_for
from tests.daemon.test_inbox import branch_log


def progress(project: Path) -> Path:
    return project / ".specflow/design-docs/specs/demo/progress.md"


def test_a_sed_edit_is_committed_with_trailers(project: Path, start_daemon) -> None:
    start_daemon(project)
    subprocess.run(["sed", "-i", "s/- \\[ \\] T002/- [x] T002/", str(progress(project))], check=True)
    wait_for(lambda: "Specflow-Source: hand-edit" in branch_log(project), 15, message="hand-edit commit")
    message = branch_log(project).split("\0")[0]
    assert "Specflow-Task: T002" in message and "Specflow-Status: done" in message
    # The ref moves before the index is refreshed: wait for the worktree, do not assume it.
    wait_for(lambda: git(progress(project).parent, "status", "--porcelain") == "", 15, message="a clean worktree")


def test_a_broken_edit_is_not_committed_and_is_logged(project: Path, start_daemon) -> None:
    d = start_daemon(project)
    before = branch_log(project)
    progress(project).write_text(progress(project).read_text() + "-[ ] T004 no space after the dash\n")
    wait_for(lambda: "hand edit not committed" in d.log(), 15, message="warning")
    assert "line 8" in d.log()
    assert branch_log(project) == before


def test_a_mark_never_overwrites_pending_hand_edits(project: Path, start_daemon) -> None:
    d = start_daemon(project)
    path = progress(project)
    path.write_text(path.read_text().replace("- [ ] T003", "- [-] T003"))
    d.drop({"action": "mark", "task": "T001", "status": "done"}, "m.json")
    assert d.answer("m")["ok"]
    text = path.read_text()
    assert "- [-] T003" in text and "- [x] T001" in text
    committed = git(project, "show", "helix-design-docs:specs/demo/progress.md")
    assert "- [-] T003" in committed and "- [x] T001" in committed


def test_edits_made_while_no_daemon_ran_are_committed_on_start(project: Path, start_daemon) -> None:
    path = progress(project)
    path.write_text(path.read_text().replace("- [ ] T001", "- [~] T001"))
    start_daemon(project)
    wait_for(lambda: "Specflow-Source: hand-edit" in branch_log(project), 15, message="hand-edit commit")
    assert "Specflow-Status: in_progress" in branch_log(project).split("\0")[0]
