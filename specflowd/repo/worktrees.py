"""Code worktrees: the branch `specflow/<spec>` checked out at `.specflow/worktrees/<spec>`, where an
orchestration's agents work; created on start, locked while an agent runs, removed only when clean."""

from __future__ import annotations

from pathlib import Path

from specflowd.errors import UserError
from specflowd.repo.git import GitError, git, read_ref
from specflowd.repo.project import Project


def work_branch(spec: str) -> str:
    return f"specflow/{spec}"


def worktree_path(project: Project, spec: str) -> Path:
    return project.worktrees / spec


def ensure(project: Project, spec: str, base_branch: str) -> Path:
    """The spec's code worktree, created (with its branch, from `base_branch`) when missing.
    An existing branch is reused as it is: work already done on it is never thrown away."""
    path = worktree_path(project, spec)
    if (path / ".git").exists():
        return path
    branch = work_branch(spec)
    git(project.root, "worktree", "prune")
    if read_ref(project.common_dir, f"refs/heads/{branch}") is None:
        if read_ref(project.common_dir, f"refs/heads/{base_branch}") is None:
            raise UserError(f"base branch {base_branch!r} does not exist in {project.root}: set "
                            f"[orchestration] base_branch", code="invalid_field", field="config")
        git(project.root, "branch", branch, base_branch)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        git(project.root, "worktree", "add", "-q", str(path), branch)
    except GitError as e:
        raise UserError(f"cannot check out {branch} at {path}: {e.stderr.strip()}", code="conflict") from None
    return path


def lock(project: Project, spec: str, reason: str) -> None:
    """`git worktree lock`: while an agent works there, `git worktree prune` must leave it alone."""
    path = worktree_path(project, spec)
    git(project.root, "worktree", "lock", "--reason", reason, str(path), check=False)


def unlock(project: Project, spec: str) -> None:
    git(project.root, "worktree", "unlock", str(worktree_path(project, spec)), check=False)


def is_clean(path: Path) -> bool:
    return git(path, "status", "--porcelain").strip() == ""


def remove_if_clean(project: Project, spec: str) -> bool:
    """Remove the worktree (not the branch) when nothing uncommitted is in it; True when removed."""
    path = worktree_path(project, spec)
    if not (path / ".git").exists():
        return False
    if not is_clean(path):
        return False
    unlock(project, spec)
    git(project.root, "worktree", "remove", str(path))
    return True
