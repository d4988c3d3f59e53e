"""Merging a work branch into the base branch without touching anyone's checkout: fast-forward when
possible, else a merge commit built by `git merge-tree --write-tree`, published with compare-and-swap.
A base branch checked out in the user's worktree is brought along only when that worktree is clean."""

from __future__ import annotations

from dataclasses import dataclass, field

from specflowd.core.vocab import MergeOutcome as Outcome
from specflowd.repo import git
from specflowd.repo.git import GitError, ObjectStore, RefMoved
from specflowd.repo.project import Project


@dataclass
class MergeOutcome:
    outcome: Outcome
    commit: str | None = None
    fast_forward: bool = False
    files: list[str] = field(default_factory=list)
    detail: str = ""


def combine(project: Project, work: str, base: str, base_tip: str, work_tip: str, message: str) -> MergeOutcome:
    """The commit that merges `work_tip` into `base_tip` (the work tip itself for a fast-forward),
    written but published nowhere; or why there is none (up to date, a conflict, a failure)."""
    if git.is_ancestor(project.root, work_tip, base_tip):
        return MergeOutcome(Outcome.UP_TO_DATE, commit=base_tip)
    if git.is_ancestor(project.root, base_tip, work_tip):
        return MergeOutcome(Outcome.MERGED, commit=work_tip, fast_forward=True)
    try:
        tree, conflicted = git.merge_tree(project.root, base_tip, work_tip)
    except GitError as e:
        return MergeOutcome(Outcome.FAILED, detail=f"git merge-tree gave no result: {e.stderr.strip()}")
    if conflicted:
        return MergeOutcome(Outcome.CONFLICT, files=conflicted, detail=(
            f"merging {work} into {base} conflicts in {len(conflicted)} file(s)"))
    store = ObjectStore(project.common_dir)
    new = store.write("commit", git.format_commit(tree, [base_tip, work_tip], git.committer_ident(project.root), message))
    return MergeOutcome(Outcome.MERGED, commit=new)


def merge(project: Project, work: str, base: str, message: str, retries: int = 5) -> MergeOutcome:
    base_ref = f"refs/heads/{base}"
    for _ in range(retries):
        base_tip = git.read_ref(project.common_dir, base_ref)
        work_tip = git.read_ref(project.common_dir, f"refs/heads/{work}")
        if base_tip is None or work_tip is None:
            missing = base if base_tip is None else work
            return MergeOutcome(Outcome.FAILED, detail=f"branch {missing} does not exist")
        checkout = git.checked_out_at(project.root, base)
        if checkout is not None and git.changed_files(checkout, untracked=False):
            return MergeOutcome(Outcome.DIRTY, detail=(
                f"{base} is checked out at {checkout} with uncommitted changes; commit or stash them, "
                "then send `merge` again"))
        combined = combine(project, work, base, base_tip, work_tip, message)
        if combined.outcome != Outcome.MERGED or combined.commit is None:
            return combined
        new, fast_forward = combined.commit, combined.fast_forward
        try:
            git.update_ref(project.root, base_ref, new, base_tip, f"specflowd: merge {work}")
        except RefMoved:
            continue
        if checkout is not None:
            try:
                git.carry_forward(checkout, base_tip, new)
            except GitError as e:
                # The ref moved but the checkout could not follow: put the ref back, say why.
                git.update_ref(project.root, base_ref, base_tip, new, "specflowd: merge rolled back")
                return MergeOutcome(Outcome.DIRTY, detail=f"{checkout} could not be updated: {e.stderr.strip()}")
        return MergeOutcome(Outcome.MERGED, commit=new, fast_forward=fast_forward)
    return MergeOutcome(Outcome.FAILED, detail=f"{base} kept moving while merging; try again")
