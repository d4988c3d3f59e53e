"""Git hooks: installing specflowd's scripts where git runs them, chaining the hooks already there,
and putting those back on uninstall; and the work the scripts hand to Python (`specflowd hook`)."""

from __future__ import annotations

import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from specflowd import fsio
from specflowd.core.lint import lint
from specflowd.core.tasklist import parse
from specflowd.core.trailers import commit_tasks
from specflowd.errors import UserError
from specflowd.program import own_program
from specflowd.repo import git
from specflowd.repo.designdocs import TASK_FILES, DesignDocs
from specflowd.repo.project import locate
from specflowd.views.client import drop, spec_hint

HOOK_NAMES = ("post-commit", "pre-commit")
# Hooks earlier versions installed: `install` and `uninstall` take ours away (and put back what they
# chained). reference-transaction ran twice for every ref update of the repository; the daemon now
# watches the design-docs branch's ref itself.
RETIRED = ("reference-transaction",)
MARKER = "specflowd"
CHAINED = ".specflowd-chained"


def shipped_dir() -> Path:
    for candidate in (Path(__file__).resolve().parents[2] / "hooks",
                      Path(sys.prefix) / "share" / "specflowd" / "hooks"):
        if (candidate / "post-commit").is_file():
            return candidate
    raise UserError("the git hook scripts are not installed with this specflowd (reinstall it with pip)")


def hooks_dir(worktree: Path) -> Path:
    """Where git runs hooks for this repository, honouring core.hooksPath (shared by all worktrees)."""
    return git.git_path(worktree, "hooks")


def is_ours(path: Path) -> bool:
    try:
        head = path.read_bytes()[:300]
    except OSError:
        return False
    return head.startswith(b"#!/bin/sh\n# specflowd ")


@dataclass
class HookReport:
    installed: list[str] = field(default_factory=list)
    chained: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    disabled: str | None = None  # why no hook was installed: hooks are turned off for the repository


def install(worktree: Path, branch: str) -> HookReport:
    """Put specflowd's hooks in place. All or nothing: every hook is checked before any is written."""
    target = hooks_dir(worktree)
    if target.exists() and not target.is_dir():
        # `core.hooksPath=/dev/null` (or any file) is how a repository turns git hooks off.
        return HookReport(disabled=f"git hooks are turned off here (core.hooksPath is {target}, not a folder): "
                          "commits with Specflow-Task trailers do not become marks by themselves; mark with "
                          "`specflowd mark`")
    for name in HOOK_NAMES:
        path, chained = target / name, target / f"{name}{CHAINED}"
        if path.exists() and not is_ours(path) and chained.exists():
            raise UserError(f"{path} is not specflowd's, and {chained} already exists: "
                            "move one of them away, then run `specflowd hooks install` again")
    target.mkdir(parents=True, exist_ok=True)
    source = shipped_dir()
    program = own_program()
    report = HookReport()
    for name in HOOK_NAMES:
        # The branch is written into the scripts so that a hook asks git for nothing it can avoid,
        # and this specflowd's path so that it is found where PATH lacks it (as pre-commit does).
        script = (source / name).read_bytes().replace(b"@BRANCH@", branch.encode()).replace(
            b"@SPECFLOWD@", os.fsencode(shlex.quote(str(program) if program else "")))
        path = target / name
        if path.exists() and not is_ours(path):
            os.replace(path, target / f"{name}{CHAINED}")
            report.chained.append(name)
        if path.exists() and path.read_bytes() == script:
            report.unchanged.append(name)
            continue
        fsio.atomic_write(path, script, mode=0o755, fsync=False)
        report.installed.append(name)
    retired = _remove(target, RETIRED)
    report.removed, report.restored = retired.removed, retired.restored
    return report


def uninstall(worktree: Path) -> HookReport:
    return _remove(hooks_dir(worktree), HOOK_NAMES + RETIRED)


def _remove(target: Path, names: tuple[str, ...]) -> HookReport:
    report = HookReport()
    for name in names:
        path = target / name
        chained = target / f"{name}{CHAINED}"
        if is_ours(path):
            path.unlink()
            report.removed.append(name)
        if chained.exists() and not path.exists():
            os.replace(chained, path)
            report.restored.append(name)
    return report


_INSTALLED_AS = re.compile(rb"^installed=(.*)$", re.M)


def program_of(path: Path) -> str | None:
    """The specflowd a hook script of ours was written to run ("" when none was known then)."""
    try:
        m = _INSTALLED_AS.search(path.read_bytes())
    except OSError:
        return None
    if m is None:
        return None
    words = shlex.split(os.fsdecode(m.group(1)))
    return words[0] if words else ""


def installed(worktree: Path) -> dict[str, bool]:
    """Hook name -> whether specflowd's script is in place (for doctor)."""
    target = hooks_dir(worktree)
    return {name: is_ours(target / name) for name in HOOK_NAMES}


def staged_problems(cwd: Path) -> list[str]:
    """What is wrong with the task lists staged for the commit being made in `cwd` (pre-commit)."""
    patterns = [f"specs/*/{name}" for name in TASK_FILES]
    return [f"{path}: {problem}" for path in git.staged_paths(cwd, *patterns)
            for problem in lint(parse(git.staged_blob(cwd, path)))]


def deliver_trailers(cwd: Path) -> None:
    """Drop a mark request for the `Specflow-Task:` trailers of the commit just made in `cwd`
    (post-commit): every task done, with the commit as evidence."""
    project = locate(cwd)
    if git.toplevel(cwd) == project.design_docs or not project.requests.is_dir():
        return  # the design-docs worktree: the daemon watches it itself
    sha = git.resolve_commit(cwd, "HEAD")
    if sha is None:
        return
    spec, tasks = commit_tasks(git.commit_message(cwd, sha))
    if not tasks:
        return
    # In a code worktree the spec is the worktree's; anywhere else (the main checkout, say) the
    # commit names it with a `Specflow-Spec:` trailer, unless the project has one spec only.
    spec = spec or spec_hint(project)
    if not spec:
        specs = DesignDocs(project).snapshot().specs()
        if len(specs) != 1:
            raise UserError(f"commit {sha[:10]}'s Specflow-Task trailers ({', '.join(tasks)}) name no spec, and "
                            f"there are {len(specs) or 'no'} specs ({', '.join(specs) or 'none'}): add a "
                            "`Specflow-Spec: <spec>` trailer, or mark with `specflowd mark TASK --done --spec SPEC`")
        spec = specs[0]
    drop(project, {"id": f"commit-{sha[:16]}", "action": "mark", "tasks": tasks, "status": "done",
                   "evidence": sha, "spec": spec})
