"""Code worktrees and merging without touching anyone's checkout."""

from __future__ import annotations

from pathlib import Path

import pytest

from specflowd.repo import merge as merging
from specflowd.repo import worktrees
from specflowd.repo.project import locate
from tests.conftest import git, run_cli


@pytest.fixture
def project(repo: Path) -> Path:
    assert run_cli("init", cwd=repo).returncode == 0
    return repo


def commit_in(path: Path, name: str, text: str, message: str) -> None:
    (path / name).write_text(text)
    git(path, "add", name)
    git(path, "commit", "-q", "-m", message)


def test_worktree_is_created_reused_locked_and_removed_when_clean(project: Path) -> None:
    p = locate(project)
    wt = worktrees.ensure(p, "demo", "main")
    assert wt == project / ".specflow" / "worktrees" / "demo"
    assert git(wt, "symbolic-ref", "--short", "HEAD").strip() == "specflow/demo"
    commit_in(wt, "work.txt", "work\n", "work")
    assert worktrees.ensure(p, "demo", "main") == wt  # reused, work kept
    worktrees.lock(p, "demo", "agent running")
    assert "locked agent running" in git(project, "worktree", "list", "--porcelain")
    (wt / "scratch.txt").write_text("uncommitted\n")
    assert worktrees.remove_if_clean(p, "demo") is False and wt.exists()
    (wt / "scratch.txt").unlink()
    assert worktrees.remove_if_clean(p, "demo") is True and not wt.exists()
    assert git(project, "rev-parse", "--verify", "specflow/demo").strip()  # the branch stays


def test_fast_forward_updates_a_clean_checkout(project: Path) -> None:
    p = locate(project)
    wt = worktrees.ensure(p, "demo", "main")
    commit_in(wt, "feature.txt", "feature\n", "feature")
    out = merging.merge(p, "specflow/demo", "main", "merge demo")
    assert out.outcome == "merged" and out.fast_forward
    assert (project / "feature.txt").read_text() == "feature\n"
    assert git(project, "status", "--porcelain") == ""


def test_merge_commit_without_touching_a_dirty_checkout_refused(project: Path) -> None:
    p = locate(project)
    wt = worktrees.ensure(p, "demo", "main")
    commit_in(wt, "feature.txt", "feature\n", "feature")
    commit_in(project, "other.txt", "other\n", "meanwhile on main")
    (project / "README.md").write_text("my uncommitted work\n")
    before = git(project, "rev-parse", "main")
    out = merging.merge(p, "specflow/demo", "main", "merge demo")
    assert out.outcome == "dirty" and "uncommitted changes" in out.detail
    assert git(project, "rev-parse", "main") == before
    assert (project / "README.md").read_text() == "my uncommitted work\n"
    git(project, "checkout", "--", "README.md")
    out = merging.merge(p, "specflow/demo", "main", "merge demo\n\nSpecflow-Spec: demo\n")
    assert out.outcome == "merged" and not out.fast_forward
    parents = git(project, "rev-list", "--parents", "-n", "1", "main").split()
    assert len(parents) == 3
    assert (project / "feature.txt").exists() and (project / "other.txt").exists()
    assert git(project, "status", "--porcelain") == ""


def test_conflict_lists_files_and_changes_nothing(project: Path) -> None:
    p = locate(project)
    wt = worktrees.ensure(p, "demo", "main")
    commit_in(wt, "README.md", "theirs\n", "agent edit")
    commit_in(project, "README.md", "ours\n", "person edit")
    before = git(project, "rev-parse", "main")
    out = merging.merge(p, "specflow/demo", "main", "merge demo")
    assert out.outcome == "conflict" and out.files == ["README.md"]
    assert git(project, "rev-parse", "main") == before
    assert (project / "README.md").read_text() == "ours\n"


def test_base_not_checked_out_anywhere(project: Path) -> None:
    git(project, "branch", "release")
    git(project, "checkout", "-q", "-b", "elsewhere")
    p = locate(project)
    wt = worktrees.ensure(p, "demo", "release")
    commit_in(wt, "f.txt", "f\n", "f")
    out = merging.merge(p, "specflow/demo", "release", "merge")
    assert out.outcome == "merged"
    assert git(project, "rev-parse", "release") == git(project, "rev-parse", "specflow/demo")
    assert not (project / "f.txt").exists()
