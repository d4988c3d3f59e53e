"""Setting up a project for specflowd: the orphan design-docs branch, its worktree, the `.specflow/`
folders, the exclude line, the config file and the git hooks; every step idempotent, nothing left
half-made."""

from __future__ import annotations

import os
from pathlib import Path

from specflowd.errors import UserError
from specflowd.ops import hooks as hookfiles
from specflowd.repo.git import (
    GitError,
    ObjectStore,
    committer_ident,
    format_commit,
    git,
    read_ref,
    update_ref,
)
from specflowd.repo.project import Project

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
    from specflowd.core.config import Config, render_config

    _check_has_commits(project)
    config = project.config if project.config_path.exists() else Config()
    branch = config.design_docs.branch
    worktree = (project.root / config.design_docs.worktree).resolve()
    _check_branch_not_elsewhere(project, branch, worktree)
    done: list[str] = []
    created_ref = False
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
            _atomic_write(project.config_path, render_config(config).encode())
            done.append(f"wrote {project.config_path}")
        ref = f"refs/heads/{branch}"
        if read_ref(project.common_dir, ref) is None and not _has_remote_branch(project, branch):
            _create_orphan_branch(project, ref)
            created_ref = True
            done.append(f"created branch {branch}")
        if not (worktree / ".git").exists():
            git(project.root, "worktree", "prune")
            git(project.root, "worktree", "add", "-q", str(worktree), branch)
            done.append(f"checked out {branch} at {worktree}")
        hooks = hookfiles.install(project.root, branch)
        if hooks.installed:
            kept = f" (keeping your {', '.join(hooks.chained)})" if hooks.chained else ""
            done.append(f"installed git hooks: {', '.join(hooks.installed)}{kept}")
    except (GitError, OSError) as e:
        if created_ref and not (worktree / ".git").exists():
            git(project.root, "update-ref", "-d", f"refs/heads/{branch}", check=False)
        raise UserError(f"init failed, nothing kept from this run: {e}") from None
    return done


def _check_has_commits(project: Project) -> None:
    try:
        git(project.root, "rev-parse", "--verify", "-q", "HEAD^{commit}")
    except GitError:
        raise UserError(
            f"{project.root} has no commits yet: make a first commit "
            "(`git commit --allow-empty -m 'initial commit'`), then run `specflowd init`"
        ) from None


def _check_branch_not_elsewhere(project: Project, branch: str, worktree: Path) -> None:
    listing = git(project.root, "worktree", "list", "--porcelain")
    current = None
    for line in listing.splitlines():
        if line.startswith("worktree "):
            current = Path(line.removeprefix("worktree ")).resolve()
        elif line == f"branch refs/heads/{branch}" and current is not None and current != worktree:
            raise UserError(
                f"branch {branch} is checked out at {current}: remove that worktree "
                f"(`git worktree remove {current}`) or switch it to another branch, "
                f"or set [design_docs] worktree in {project.config_path} to that path"
            )


def _has_remote_branch(project: Project, branch: str) -> bool:
    """A clone that has the branch on a remote gets a local one from `git worktree add` itself."""
    out = git(project.root, "for-each-ref", "--format=%(refname)", f"refs/remotes/*/{branch}")
    return bool(out.strip())


def _create_orphan_branch(project: Project, ref: str) -> None:
    # git 2.39 has no `worktree add --orphan`: the first commit is built with plumbing.
    store = ObjectStore(project.common_dir, project.root)
    readme = store.write("blob", BRANCH_README.encode())
    tree = store.replace_paths(None, {"README.md": readme})
    message = "Start the design-docs branch\n\nSpecflow-Event: init\n"
    commit = store.write("commit", format_commit(tree, [], committer_ident(project.root), message))
    update_ref(project.root, ref, commit, None, "specflowd: init")


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
    _atomic_write(path, (current + sep + "# specflowd's working folder\n" + EXCLUDE_LINE + "\n").encode())
    return True


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
