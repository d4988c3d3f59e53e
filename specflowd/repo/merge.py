"""Merging a work branch into the base branch without touching anyone's checkout: fast-forward when
possible, else a merge commit built by `git merge-tree --write-tree`, published with compare-and-swap.
A base branch checked out in the user's worktree is brought along only when that worktree is clean."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from specflowd.repo.git import (
    GitError,
    ObjectStore,
    RefMoved,
    committer_ident,
    format_commit,
    git,
    git_ok,
    read_ref,
    update_ref,
)
from specflowd.repo.project import Project


@dataclass
class MergeOutcome:
    outcome: str  # merged | up_to_date | conflict | dirty | failed
    commit: str | None = None
    fast_forward: bool = False
    files: list[str] = field(default_factory=list)
    detail: str = ""


def checked_out_at(project: Project, branch: str) -> Path | None:
    """The worktree that has `branch` checked out, if any."""
    current = None
    for line in git(project.root, "worktree", "list", "--porcelain").splitlines():
        if line.startswith("worktree "):
            current = Path(line.removeprefix("worktree "))
        elif line == f"branch refs/heads/{branch}":
            return current
    return None


def merge(project: Project, work: str, base: str, message: str, retries: int = 5) -> MergeOutcome:
    base_ref = f"refs/heads/{base}"
    for _ in range(retries):
        base_tip = read_ref(project.common_dir, base_ref)
        work_tip = read_ref(project.common_dir, f"refs/heads/{work}")
        if base_tip is None or work_tip is None:
            missing = base if base_tip is None else work
            return MergeOutcome("failed", detail=f"branch {missing} does not exist")
        checkout = checked_out_at(project, base)
        if checkout is not None and git(checkout, "status", "--porcelain", "--untracked-files=no").strip():
            return MergeOutcome("dirty", detail=(
                f"{base} is checked out at {checkout} with uncommitted changes; commit or stash them, "
                "then send `merge` again"))
        if _is_ancestor(project, work_tip, base_tip):
            return MergeOutcome("up_to_date", commit=base_tip)
        fast_forward = _is_ancestor(project, base_tip, work_tip)
        if fast_forward:
            new = work_tip
        else:
            result = git(project.root, "merge-tree", "--write-tree", "--name-only", "--no-messages",
                         base_tip, work_tip, check=False)
            lines = result.splitlines()
            if not lines:
                return MergeOutcome("failed", detail="git merge-tree gave no result")
            tree, conflicted = lines[0].strip(), [ln for ln in lines[1:] if ln.strip()]
            if conflicted:
                return MergeOutcome("conflict", files=sorted(set(conflicted)), detail=(
                    f"merging {work} into {base} conflicts in {len(set(conflicted))} file(s)"))
            store = ObjectStore(project.common_dir, project.root)
            new = store.write("commit", format_commit(tree, [base_tip, work_tip], committer_ident(project.root),
                                                        message))
        try:
            update_ref(project.root, base_ref, new, base_tip, f"specflowd: merge {work}")
        except RefMoved:
            continue
        if checkout is not None:
            try:
                git(checkout, "read-tree", "-m", "-u", base_tip, new, quiet=True)
            except GitError as e:
                # The ref moved but the checkout could not follow: put the ref back, say why.
                update_ref(project.root, base_ref, base_tip, new, "specflowd: merge rolled back")
                return MergeOutcome("dirty", detail=f"{checkout} could not be updated: {e.stderr.strip()}")
        return MergeOutcome("merged", commit=new, fast_forward=fast_forward)
    return MergeOutcome("failed", detail=f"{base} kept moving while merging; try again")


def _is_ancestor(project: Project, a: str, b: str) -> bool:
    return git_ok(project.root, "merge-base", "--is-ancestor", a, b)
