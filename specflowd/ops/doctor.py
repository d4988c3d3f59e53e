"""`specflowd doctor`'s checks: each looks at one thing, and says what is wrong and how to fix it."""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from specflowd import fsio
from specflowd.core.lease import clock_skew_s, iso, max_skew_s
from specflowd.core.permissions import cannot_commit
from specflowd.core.text import visible
from specflowd.daemon import pidlock
from specflowd.errors import UserError
from specflowd.ops import hooks, systemd
from specflowd.program import own_program
from specflowd.repo import git
from specflowd.repo.git import GitError
from specflowd.repo.project import Project, locate
from specflowd.repo.remote import Remote, host_name
from specflowd.repo.settings import load_config, load_user_config

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass
class Check:
    name: str
    level: str
    detail: str
    fix: str = ""


def run_checks(start: Path) -> list[Check]:
    checks = [check_git()]
    try:
        project = locate(start)
    except UserError as e:
        return [*checks, Check("project", FAIL, e.message, "cd into your project's repository")]
    for fn in (check_initialized, check_base_branch, check_branch, check_worktree, check_repairs, check_excluded,
               check_hooks, check_agent, check_program, check_permissions, check_inotify, check_systemd, check_daemon):
        try:
            checks.append(fn(project))
        except (UserError, GitError, OSError) as e:
            checks.append(Check(fn.__name__.removeprefix("check_"), FAIL, str(getattr(e, "message", e))))
        if checks[-1].name == "initialized" and checks[-1].level == FAIL:
            return checks
    if project.remote_name:
        checks += remote_checks(project)
    return checks


def check_git() -> Check:
    version = git.version()
    if version >= git.MIN_VERSION:
        return Check("git", OK, f"git {version[0]}.{version[1]}")
    return Check("git", FAIL, f"git {version[0]}.{version[1]} is older than 2.38 (merge-tree --write-tree)",
                 "install git 2.38 or newer")


def check_initialized(project: Project) -> Check:
    if project.config_path.exists():
        load_config(project)  # validates: a broken file raises a UserError naming it
        return Check("initialized", OK, f"{project.config_path}")
    return Check("initialized", FAIL, f"{project.root} is not set up for specflowd", "run `specflowd init`")


def check_base_branch(project: Project) -> Check:
    base = load_config(project).orchestration.base_branch
    if git.read_ref(project.common_dir, f"refs/heads/{base}") is not None:
        return Check("base", OK, f"work merges into {base}")
    have = ", ".join(b for b in git.branches(project.root) if b != project.branch and not b.startswith("specflow/"))
    return Check("base", FAIL, f"base branch {base!r} does not exist (branches: {have or 'none'})",
                 f"set [orchestration] base_branch in {project.config_path} to the branch work merges into")


def check_branch(project: Project) -> Check:
    tip = git.read_ref(project.common_dir, project.branch_ref)
    if tip is None:
        return Check("branch", FAIL, f"branch {project.branch} is missing",
                     "run `specflowd init` (or `git fetch` it if it lives on a remote)")
    return Check("branch", OK, f"{project.branch} at {tip[:10]}")


def check_worktree(project: Project) -> Check:
    wt = project.design_docs
    if not (wt / ".git").exists():
        return Check("worktree", FAIL, f"the design-docs worktree {wt} is missing",
                     "run `git worktree prune`, then `specflowd init`")
    head = git.current_branch(wt)
    if head != project.branch:
        return Check("worktree", FAIL, f"{wt} has {head or 'a detached HEAD'} checked out, not {project.branch}",
                     f"run `git -C {wt} switch {project.branch}`")
    dirty = git.changed_files(wt)
    if dirty:
        return Check("worktree", WARN, f"{wt} has uncommitted changes ({len(dirty)} files)",
                     "the daemon commits task-list edits once they settle; commit other files yourself")
    return Check("worktree", OK, f"{wt} on {project.branch}, clean")


def check_repairs(project: Project) -> Check:
    """What specflowd found broken in the design-docs worktree after a crash, and put right."""
    try:
        lines = (fsio.read_regular(project.repairs_log) or b"").decode("utf-8", "replace").splitlines()
    except fsio.NotRegularFile as e:
        return Check("repairs", FAIL, str(e), f"remove {project.repairs_log}")
    if not lines:
        return Check("repairs", OK, "nothing needed repairing after a crash")
    recent = "; ".join(visible(line) for line in lines[-3:])
    return Check("repairs", WARN, f"{len(lines)} repair(s) after crashes, the last: {recent}",
                 f"nothing to do, specflowd put them right; if they come often, find what kills it "
                 f"(the journal, dmesg); {project.repairs_log} keeps them all")


def check_excluded(project: Project) -> Check:
    if git.is_ignored(project.root, ".specflow/config.toml"):
        return Check("excluded", OK, ".specflow/ is ignored by git")
    return Check("excluded", FAIL, ".specflow/ is not ignored: its files show up in `git status`",
                 "run `specflowd init` (it adds /.specflow/ to .git/info/exclude)")


def check_hooks(project: Project) -> Check:
    state = hooks.installed(project.root)
    missing = [name for name, ok in state.items() if not ok]
    target = hooks.hooks_dir(project.root)
    if missing:
        return Check("hooks", WARN, f"not installed in {target}: {', '.join(missing)}",
                     "run `specflowd hooks install` (commits with Specflow-Task trailers become marks)")
    chained = [n for n in state if (target / f"{n}{hooks.CHAINED}").exists()]
    note = f" (chaining your {', '.join(chained)})" if chained else ""
    program = hooks.program_of(target / "post-commit")
    if not program or not os.access(program, os.X_OK):
        gone = f"run {program}, which is not there" if program else "know no specflowd path (older install)"
        return Check("hooks", WARN, f"installed in {target}, but they {gone}: they fall back to PATH, which "
                     "agents and GUIs may not have", "run `specflowd hooks install` with the specflowd you use")
    return Check("hooks", OK, f"installed in {target}{note}, running {program}")


def check_agent(project: Project) -> Check:
    agent = load_config(project).agent
    program = agent.command.split()[0] if agent.command.strip() else ""
    found = shutil.which(program) if program else None
    if found:
        return Check("agent", OK, f"{agent.kind}: {found}")
    return Check("agent", FAIL, f"{agent.kind}: `{program or '(empty)'}` is not on PATH",
                 f"install it, or set [agent] command in {project.config_path}")


def check_program(project: Project) -> Check:
    program = own_program()
    if program is None:
        return Check("program", WARN, "no `specflowd` executable found (started as `python -m specflowd`?): agents "
                     "cannot run `specflowd mark` (their commits' trailers still count)",
                     "install specflowd with pip, or put its folder on PATH")
    return Check("program", OK, f"agents get {program} first on PATH and as $SPECFLOW_BIN")


def check_permissions(project: Project) -> Check:
    agent = load_config(project).agent
    why = cannot_commit(agent.kind, agent.permission_mode, agent.disallowed_tools, _codex_sandbox_mode())
    if why:
        return Check("permissions", WARN, f"{agent.kind}: agents cannot complete a batch: {why}",
                     f"change [agent] in {project.config_path} (README, 'Agents')")
    mode = agent.permission_mode or "specflowd's setting"
    return Check("permissions", OK, f"{agent.kind} ({mode}): agents may edit, commit and mark")


def _codex_sandbox_mode() -> str | None:
    """Codex's own `sandbox_mode`, when its config sets one: it makes Codex ignore specflowd's profile."""
    home = Path(os.environ.get("CODEX_HOME") or Path.home() / ".codex")
    try:
        mode = tomllib.loads((home / "config.toml").read_text()).get("sandbox_mode")
    except (OSError, ValueError):
        return None
    return mode if isinstance(mode, str) else None


def _read_int(path: str) -> int | None:
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None


def check_inotify(project: Project) -> Check:
    watches = _read_int("/proc/sys/fs/inotify/max_user_watches")
    instances = _read_int("/proc/sys/fs/inotify/max_user_instances")
    if watches is None or instances is None:
        return Check("inotify", FAIL, "no inotify on this system", "specflowd needs Linux inotify")
    projects = max(1, len(load_user_config().projects))
    # Each watched folder costs a watch; the design-docs worktree is watched recursively.
    folders = 16 + (sum(1 for p in project.design_docs.rglob("*") if p.is_dir()) if project.design_docs.exists() else 0)
    need_watches = folders * projects
    # watchdog opens one inotify instance per watched folder: the inbox and the design-docs
    # worktree of each project, and one for the agent supervisor.
    need_instances = 2 * projects + 2
    if watches < need_watches or instances < need_instances:
        return Check("inotify", FAIL,
                     f"limits {watches} watches / {instances} instances; {projects} project(s) need about "
                     f"{need_watches} / {need_instances}",
                     "raise them: sudo sysctl fs.inotify.max_user_watches=524288 fs.inotify.max_user_instances=512")
    return Check("inotify", OK, f"{watches} watches, {instances} instances (about {need_watches} / "
                                f"{need_instances} needed)")


def check_systemd(project: Project) -> Check:
    if not shutil.which("systemctl"):
        return Check("systemd", WARN, "systemctl not found: run `specflowd run` yourself or under another supervisor")
    reachable = systemd.user_manager_reachable()
    unit = systemd.user_unit_dir() / "specflowd.service"
    if not unit.exists():
        return Check("systemd", WARN, "the specflowd user units are not installed",
                     "run `specflowd systemd install`")
    if not reachable:
        return Check("systemd", WARN, "no systemd user manager reachable from here (no login session?)",
                     'run `loginctl enable-linger "$USER"` so the user manager runs without a login')
    user = os.environ.get("USER") or ""
    linger = subprocess.run(["loginctl", "show-user", user, "-p", "Linger", "--value"], capture_output=True,
                            text=True).stdout.strip()
    if linger != "yes":
        return Check("systemd", WARN, "lingering is off: the daemon stops when you log out",
                     'run `loginctl enable-linger "$USER"`')
    return Check("systemd", OK, f"user manager reachable, units in {unit.parent}, lingering on")


def remote_checks(project: Project) -> list[Check]:
    """Many machines (SPEC §10): the remote reached, the design-docs branch shared with it, and the
    clocks close enough for leases (a skew over lease_s / 4 and the daemon refuses to run)."""
    config = load_config(project).remote
    r = Remote(project, config.name)
    if git.remote_url(project.root, config.name) is None:
        return [Check("remote", FAIL, f"[remote] name = {config.name!r}, but there is no such git remote",
                      "`git remote add NAME URL`, or set [remote] name to one `git remote -v` lists")]
    try:
        r.fetch(timeout=min(30.0, max(10.0, config.lease_s / 4)))
    except git.Unreachable as e:
        last = (e.stderr.strip().splitlines() or ["no answer"])[-1]
        return [Check("remote", FAIL, f"{config.name} ({git.remote_url(project.root, config.name)}) is unreachable: "
                      f"{last}", "check the URL, the network and your credentials; the daemon works on and pushes "
                      "when it can")]
    checks = [Check("remote", OK, f"{config.name} reached, this host is {host_name(config)!r} in the fleet")]
    checks.append(_tracked(project, r))
    checks.append(_clock(r, config.lease_s))
    return checks


def _tracked(project: Project, r: Remote) -> Check:
    theirs, ours = r.tip(), git.read_ref(project.common_dir, project.branch_ref)
    name = f"{r.name}/{project.branch}"
    if theirs is None:
        return Check("tracked", FAIL, f"{r.name} has no {project.branch}",
                     f"run `specflowd init --remote {r.name}` in the clone whose specs the fleet shares")
    if ours is None or ours == theirs:
        return Check("tracked", OK, f"{project.branch} is {name}")
    if git.merge_base(project.root, ours, theirs) is None:
        return Check("tracked", FAIL, f"{project.branch} and {name} have no history in common",
                     f"keep one: `git branch -m {project.branch} {project.branch}-local`, then "
                     f"`specflowd init --remote {r.name}`")
    ahead = len(git.commits_between(project.root, theirs, ours))
    behind = len(git.commits_between(project.root, ours, theirs))
    return Check("tracked", OK if not behind or not ahead else WARN,
                 f"{project.branch}: {ahead} commit(s) to push, {behind} to take from {name}",
                 "the daemon pushes and fetches them (a refused push is rebuilt on the remote's tip and pushed again)")


def _clock(r: Remote, lease_s: float) -> Check:
    leases = list(r.leases().values())
    if not leases:
        return Check("clock", OK, "no leases on the remote to compare clocks with")
    skew = clock_skew_s(leases, datetime.now(UTC))
    newest = max(leases, key=lambda lease: lease.written)
    detail = (f"the newest lease commit ({newest.host}'s, {iso(newest.written)}) is {skew:.1f} s ahead of this "
              f"host's clock; leases allow {max_skew_s(lease_s):g} s (lease_s / 4)")
    if skew > max_skew_s(lease_s):
        return Check("clock", FAIL, detail + ": the daemon refuses to run",
                     "synchronise the clocks of every host (NTP: `timedatectl set-ntp true`)")
    return Check("clock", OK, detail)


def check_daemon(project: Project) -> Check:
    pid = pidlock.holder(project)
    if pid is None:
        return Check("daemon", WARN, "no daemon is running for this project",
                     "run `specflowd run`, or enable the systemd unit (`specflowd systemd install`)")
    return Check("daemon", OK, f"running (pid {pid})" if pid > 0 else "running")

