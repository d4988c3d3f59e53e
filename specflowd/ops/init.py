"""Setting up a project for specflowd: the orphan design-docs branch, its worktree, the `.specflow/`
folders, the exclude line, the config file and the git hooks; every step idempotent, nothing left
half-made."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from pathlib import Path

from specflowd import fsio
from specflowd.core.config import Config, render_config
from specflowd.core.trailers import event_message
from specflowd.core.vocab import FeedEvent
from specflowd.errors import UserError
from specflowd.ops import hooks
from specflowd.repo import git
from specflowd.repo.git import GitError, ObjectStore
from specflowd.repo.project import Project
from specflowd.repo.settings import load_config

FOLDERS = ("requests", "requests/tmp", "requests/done", "requests/failed", "responses", "workflows",
           "worktrees", "logs")
EXCLUDE_LINE = "/.specflow/"
BRANCH_README = """# Design docs

This branch holds the specs that specflowd works from: `specs/<spec-id>/requirements.md`,
`design.md` and the task list `progress.md`. Every task mark and orchestration event is a commit
here, so `git log` of this branch is the progress feed. Never merge it into code branches.
"""


def initialize(project: Project) -> list[str]:
    """Set the project up; returns what was done (empty when everything was already there). All or
    nothing: a failure undoes every step this run took, and the repository is as it was."""
    _check_has_commits(project)
    config = load_config(project) if project.config_path.exists() else new_config(project)
    branch = config.design_docs.branch
    worktree = (project.root / config.design_docs.worktree).resolve()
    _check_branch_not_elsewhere(project, branch, worktree)
    done: list[str] = []
    undo: list[Callable[[], object]] = []  # what puts back each step taken, last first
    try:
        _make_folders(project, done, undo)
        exclude = project.common_dir / "info" / "exclude"
        before = fsio.read_regular(exclude)
        if _add_exclude(project):
            undo.append(lambda: fsio.atomic_write(exclude, before, mode=0o644) if before is not None
                        else exclude.unlink(missing_ok=True))
            done.append(f"excluded .specflow/ in {exclude}")
        if not project.config_path.exists():
            fsio.atomic_write(project.config_path, render_config(config).encode())
            undo.append(lambda: project.config_path.unlink(missing_ok=True))
            done.append(f"wrote {project.config_path}")
        ref = f"refs/heads/{branch}"
        if git.read_ref(project.common_dir, ref) is None and not git.remote_branches(project.root, branch):
            first, written = _create_orphan_branch(project, ref)
            undo.append(lambda: _delete_branch(project, ref, first, written))
            done.append(f"created branch {branch}")
        if not (worktree / ".git").exists():
            had_branch = git.read_ref(project.common_dir, ref) is not None
            git.add_worktree(project.root, worktree, branch)
            undo.append(lambda: _remove_worktree(project, worktree, None if had_branch else ref))
            done.append(f"checked out {branch} at {worktree}")
        report = hooks.install(project.root, branch)
        if report.disabled:
            done.append(f"no git hooks: {report.disabled}")
        elif report.installed:
            kept = f" (keeping your {', '.join(report.chained)})" if report.chained else ""
            done.append(f"installed git hooks: {', '.join(report.installed)}{kept}")
    except (GitError, OSError, UserError) as e:
        for step in reversed(undo):
            with contextlib.suppress(GitError, OSError):
                step()
        message = e.message if isinstance(e, UserError) else str(e)
        raise UserError(f"init failed, and left the repository as it found it: {message}") from None
    return done


def new_config(project: Project) -> Config:
    """The settings a new project starts with: the defaults, on the branch the repository works on."""
    config = Config()
    base = git.default_branch(project.root)
    if base is not None and base != config.design_docs.branch:
        config.orchestration.base_branch = base
    return config


def _make_folders(project: Project, done: list[str], undo: list[Callable[[], object]]) -> None:
    top = project.specflow_dir
    if not top.exists():
        undo.append(lambda: shutil.rmtree(top, ignore_errors=True))
        done.append(f"created {top}/")
    fsio.make_private_dirs(top, *(top / name for name in FOLDERS))


def _remove_worktree(project: Project, worktree: Path, created_ref: str | None) -> None:
    """Undo `git worktree add`: the worktree, and the branch it made from a remote's (if it did)."""
    git.remove_worktree(project.root, worktree, force=True)
    if created_ref is not None:
        tip = git.read_ref(project.common_dir, created_ref)
        if tip is not None:
            git.delete_ref(project.root, created_ref, tip)


def _check_has_commits(project: Project) -> None:
    if not git.has_commits(project.root):
        raise UserError(
            f"{project.root} has no commits yet: make a first commit "
            "(`git commit --allow-empty -m 'initial commit'`), then run `specflowd init`"
        )


def _check_branch_not_elsewhere(project: Project, branch: str, worktree: Path) -> None:
    current = git.checked_out_at(project.root, branch)
    if current is not None and current.resolve() != worktree:
        raise UserError(
            f"branch {branch} is checked out at {current}: remove that worktree "
            f"(`git worktree remove {current}`) or switch it to another branch, "
            f"or set [design_docs] worktree in {project.config_path} to that path"
        )


def _create_orphan_branch(project: Project, ref: str) -> tuple[str, list[Path]]:
    """The branch's first commit, made with plumbing (git 2.39 has no `worktree add --orphan`), and
    the object files this wrote (for an undo that leaves no dangling object behind)."""
    store = ObjectStore(project.common_dir)
    blob = BRANCH_README.encode()
    tree = git.format_tree([git.TreeEntry("100644", b"README.md", git.object_id("blob", blob))])
    message = event_message("Start the design-docs branch", FeedEvent.INIT, {})
    ident = git.committer_ident(project.root)
    written: list[Path] = []
    sha = ""
    for kind, data in (("blob", blob), ("tree", tree),
                       ("commit", git.format_commit(git.object_id("tree", tree), [], ident, message))):
        new = not store.exists(git.object_id(kind, data))
        sha = store.write(kind, data)
        if new:
            written.append(store.loose_path(sha))
    git.update_ref(project.root, ref, sha, None, "specflowd: init")
    return sha, written


def _delete_branch(project: Project, ref: str, tip: str, objects: list[Path]) -> None:
    git.delete_ref(project.root, ref, tip)
    for path in objects:
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            path.parent.rmdir()  # only when empty: git made the folder for us


def _add_exclude(project: Project) -> bool:
    path = project.common_dir / "info" / "exclude"
    try:
        current = path.read_text()
    except FileNotFoundError:
        current = ""
    if any(line.strip() in (EXCLUDE_LINE, ".specflow/", ".specflow", "/.specflow") for line in current.splitlines()):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    sep = "" if not current or current.endswith("\n") else "\n"
    fsio.atomic_write(path, (current + sep + "# specflowd's working folder\n" + EXCLUDE_LINE + "\n").encode(),
                      mode=0o644)
    return True
