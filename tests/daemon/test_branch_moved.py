"""Marks arriving by fetch or update-ref: the daemon's watch on the branch's ref wakes it, and it
carries the design-docs worktree forward at once; no hook is needed."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import git, run_cli, wait_for
from tests.daemon.conftest import make_project


def read(path: Path) -> str:
    """The file's text; "" for the instant git's checkout has unlinked it to write it anew."""
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def test_a_fetched_mark_reaches_the_worktree(repo: Path, tmp_path: Path, start_daemon) -> None:
    project = make_project(repo)
    assert run_cli("hooks", "uninstall", cwd=project).returncode == 0  # the daemon needs none
    start_daemon(project)
    other = tmp_path / "colleague"
    git(tmp_path, "clone", "-q", "--branch", "helix-design-docs", str(project), str(other))
    tasks = other / "specs" / "demo" / "progress.md"
    tasks.write_text(tasks.read_text().replace("- [ ] T002", "- [x] T002"))
    git(other, "commit", "-qam", "T002 done: by a colleague\n\nSpecflow-Task: T002\nSpecflow-Status: done")
    git(project, "fetch", "-q", str(other), "helix-design-docs")
    git(project, "update-ref", "refs/heads/helix-design-docs", "FETCH_HEAD")
    worktree_file = project / ".specflow" / "design-docs" / "specs" / "demo" / "progress.md"
    wait_for(lambda: "- [x] T002" in read(worktree_file), 10, message="the worktree to follow the branch")
    assert git(project / ".specflow" / "design-docs", "status", "--porcelain") == ""
