"""Setting up a project for specflowd: the orphan design-docs branch, its worktree, the `.specflow/`
folders, the exclude line, the config file and the git hooks; every step idempotent, nothing left
half-made."""

from __future__ import annotations

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
    """Set the project up; returns what was done (empty when everything was already there)."""
    _check_has_commits(project)
    config = load_config(project) if project.config_path.exists() else Config()
    branch = config.design_docs.branch
    worktree = (project.root / config.design_docs.worktree).resolve()
    _check_branch_not_elsewhere(project, branch, worktree)
    done: list[str] = []
    created_ref: str | None = None  # the branch's first commit, when this run made it
    try:
        for name in FOLDERS:
            path = project.specflow_dir / name
            if not path.is_dir():
                path.mkdir(parents=True, exist_ok=True)
                if name == "requests":
                    done.append(f"created {project.specflow_dir}/")
        if _add_exclude(project):
            done.append(f"excluded .specflow/ in {project.common_dir / 'info' / 'exclude'}")
        if not project.config_path.exists():
            fsio.atomic_write(project.config_path, render_config(config).encode())
            done.append(f"wrote {project.config_path}")
        ref = f"refs/heads/{branch}"
        if git.read_ref(project.common_dir, ref) is None and not git.remote_branches(project.root, branch):
            created_ref = _create_orphan_branch(project, ref)
            done.append(f"created branch {branch}")
        if not (worktree / ".git").exists():
            git.add_worktree(project.root, worktree, branch)
            done.append(f"checked out {branch} at {worktree}")
        report = hooks.install(project.root, branch)
        if report.installed:
            kept = f" (keeping your {', '.join(report.chained)})" if report.chained else ""
            done.append(f"installed git hooks: {', '.join(report.installed)}{kept}")
    except (GitError, OSError) as e:
        if created_ref is not None and not (worktree / ".git").exists():
            git.delete_ref(project.root, f"refs/heads/{branch}", created_ref)
        raise UserError(f"init failed, nothing kept from this run: {e}") from None
    return done


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


def _create_orphan_branch(project: Project, ref: str) -> str:
    """The branch's first commit, made with plumbing (git 2.39 has no `worktree add --orphan`)."""
    store = ObjectStore(project.common_dir)
    readme = store.write("blob", BRANCH_README.encode())
    tree = store.replace_paths(None, {"README.md": readme})
    message = event_message("Start the design-docs branch", FeedEvent.INIT, {})
    commit = store.write("commit", git.format_commit(tree, [], git.committer_ident(project.root), message))
    git.update_ref(project.root, ref, commit, None, "specflowd: init")
    return commit


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
