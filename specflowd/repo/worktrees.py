"""Code worktrees: the branch `specflow/<spec>` checked out at `.specflow/worktrees/<spec>`, where an
orchestration's agents work; created on start, locked while an agent runs, removed only when clean."""

from __future__ import annotations

from pathlib import Path

from specflowd import fsio
from specflowd.core.vocab import ErrorCode
from specflowd.errors import UserError
from specflowd.repo import git
from specflowd.repo.git import GitError
from specflowd.repo.project import Project


def work_branch(spec: str) -> str:
    return f"specflow/{spec}"


def ensure(project: Project, spec: str, base_branch: str) -> Path:
    """The spec's code worktree, created (with its branch, from `base_branch`) when missing.
    An existing branch is reused as it is: work already done on it is never thrown away."""
    path = project.code_worktree(spec)
    if (path / ".git").exists():
        return path
    branch = work_branch(spec)
    if git.read_ref(project.common_dir, f"refs/heads/{branch}") is None:
        if git.read_ref(project.common_dir, f"refs/heads/{base_branch}") is None:
            raise UserError(f"base branch {base_branch!r} does not exist in {project.root}: set "
                            f"[orchestration] base_branch", code=ErrorCode.INVALID_FIELD, field="config")
        git.create_branch(project.root, branch, base_branch)
    fsio.make_private_dirs(path.parent)
    try:
        git.add_worktree(project.root, path, branch)
    except GitError as e:
        raise UserError(f"cannot check out {branch} at {path}: {e.stderr.strip()}", code=ErrorCode.CONFLICT) from None
    return path


def lock(project: Project, spec: str, reason: str) -> None:
    """While an agent works there, `git worktree prune` must leave it alone."""
    git.lock_worktree(project.root, project.code_worktree(spec), reason)


def unlock(project: Project, spec: str) -> None:
    git.unlock_worktree(project.root, project.code_worktree(spec))


def remove_if_clean(project: Project, spec: str) -> bool:
    """Remove the worktree (not the branch) when nothing uncommitted is in it; True when removed."""
    path = project.code_worktree(spec)
    if not (path / ".git").exists() or git.changed_files(path):
        return False
    unlock(project, spec)
    git.remove_worktree(project.root, path)
    return True
