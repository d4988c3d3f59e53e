"""Setting up a project for specflowd: the orphan design-docs branch, its worktree, the `.specflow/`
folders, the exclude line, the config file and the git hooks; every step idempotent, nothing left
half-made."""

from __future__ import annotations

import contextlib
import json
import re
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


def initialize(project: Project, remote: str | None = None) -> list[str]:
    """Set the project up; returns what was done (empty when everything was already there). All or
    nothing: a failure undoes every step this run took, and the repository is as it was. With
    `remote` (SPEC §10), the design-docs branch is the one that remote shares, when it has one."""
    _check_has_commits(project)
    config = load_config(project) if project.config_path.exists() else new_config(project)
    branch = config.design_docs.branch
    worktree = (project.root / config.design_docs.worktree).resolve()
    _check_branch_not_elsewhere(project, branch, worktree)
    done: list[str] = []
    undo: list[Callable[[], object]] = []  # what puts back each step taken, last first
    shared = _shared_branch(project, remote, branch) if remote else None
    try:
        if remote and shared is not None:
            _take_shared_branch(project, remote, branch, shared, worktree, done, undo)
        _make_folders(project, done, undo)
        exclude = project.common_dir / "info" / "exclude"
        before = fsio.read_regular(exclude)
        if _add_exclude(project):
            undo.append(lambda: fsio.atomic_write(exclude, before, mode=0o644) if before is not None
                        else exclude.unlink(missing_ok=True))
            done.append(f"excluded .specflow/ in {exclude}")
        if not project.config_path.exists():
            if remote:
                config.remote.name = remote
            fsio.atomic_write(project.config_path, render_config(config).encode())
            undo.append(lambda: project.config_path.unlink(missing_ok=True))
            done.append(f"wrote {project.config_path}")
        elif remote and config.remote.name != remote:
            before_config = project.config_path.read_bytes()
            fsio.atomic_write(project.config_path, with_remote(before_config.decode(), remote).encode())
            undo.append(lambda: fsio.atomic_write(project.config_path, before_config))
            done.append(f"set [remote] name = {remote!r} in {project.config_path}")
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
        if remote and shared is None:
            _publish_branch(project, remote, branch)
            done.append(f"pushed {branch} to {remote}: the other clones run `specflowd init --remote {remote}`")
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


def _shared_branch(project: Project, remote: str, branch: str) -> str | None:
    """The remote's design-docs branch tip, None when it has none yet; UserError when unreachable."""
    if git.remote_url(project.root, remote) is None:
        raise UserError(f"{project.root} has no git remote {remote!r} (`git remote -v` lists them; "
                        "`git remote add NAME URL` adds one)")
    try:
        found = git.ls_remote(project.root, remote, [f"refs/heads/{branch}"])
    except git.Unreachable as e:
        raise UserError(f"cannot reach the remote {remote}: {e.stderr.strip().splitlines()[-1:] or e}") from None
    return found.get(f"refs/heads/{branch}")


def _take_shared_branch(project: Project, remote: str, branch: str, tip: str, worktree: Path, done: list[str],
                        undo: list[Callable[[], object]]) -> None:
    """Fetch the remote's design-docs branch, and make the local one from it (never a new orphan)."""
    tracking = f"refs/remotes/{remote}/{branch}"
    git.fetch(project.root, remote, [f"+refs/heads/{branch}:{tracking}"])
    ref = f"refs/heads/{branch}"
    ours = git.read_ref(project.common_dir, ref)
    if ours is None:
        git.update_ref(project.root, ref, tip, None, f"specflowd: init from {remote}")
        undo.append(lambda: git.delete_ref(project.root, ref, tip))
        done.append(f"made {branch} from {remote}/{branch}")
    elif ours != tip and git.merge_base(project.root, ours, tip) is None:
        raise UserError(f"{branch} here and on {remote} have no history in common (two `specflowd init`s): keep "
                        f"one, e.g. `git branch -m {branch} {branch}-local`, then `specflowd init --remote {remote}` "
                        "again; the daemon then pushes nothing of the other")
    elif ours != tip and git.is_ancestor(project.root, ours, tip) and not (worktree / ".git").exists():
        git.update_ref(project.root, ref, tip, ours, f"specflowd: init from {remote}")
        undo.append(lambda: git.update_ref(project.root, ref, ours, tip, "specflowd: init undone"))
        done.append(f"brought {branch} up to {remote}/{branch}")


def _publish_branch(project: Project, remote: str, branch: str) -> None:
    """The first clone of a fleet: its design-docs branch pushed (never forced) for the others."""
    ref = f"refs/heads/{branch}"
    out = git.push(project.root, remote, [f"{ref}:{ref}"], {})
    if "\t" in out and any(line.startswith("!") for line in out.splitlines()):
        raise UserError(f"{remote} refused {branch} (another clone pushed one meanwhile?): run "
                        f"`specflowd init --remote {remote}` again to take the one it has")


def with_remote(text: str, name: str) -> str:
    """The config file's text with `[remote] name` set, every other line as it was."""
    line = f"name = {json.dumps(name)}"
    out, section, done = [], "", False
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            if section == "remote" and not done:
                out.append(line)
                done = True
            section = stripped.strip("[]").strip()
        elif section == "remote" and not done and re.match(r"^#?\s*name\s*=", stripped):
            out.append(line)
            done = True
            continue
        out.append(raw)
    if not done:
        out += ([line] if section == "remote" else ["", "[remote]", line])
    return "\n".join(out) + "\n"


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
