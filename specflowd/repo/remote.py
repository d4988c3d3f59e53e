"""The shared remote (SPEC §10), the git side: fetching the design-docs branch, the work branches
and the lease refs; reading the leases and this host's unpushed commits; rebuilding those commits on
the remote's tip (each mark or event re-applied, never a merge commit); lease commits; work branches
made from the remote's; the fleet's view of the feed, for commands run while no daemon syncs.
What to do with all of it is decided in core/fleet.py and core/lease.py; the daemon's shell is
daemon/sync.py (a thread that fetches and pushes) and daemon/fleet.py."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from specflowd.core import fleet
from specflowd.core.config import RemoteConfig
from specflowd.core.lease import Lease, lease_message, parse_lease, tracking_branch, tracking_leases
from specflowd.core.records import dump
from specflowd.core.tasklist import TaskListError, apply_marks, parse
from specflowd.core.textmerge import reapply
from specflowd.core.trailers import parse_trailers
from specflowd.core.vocab import ErrorCode, TaskStatus
from specflowd.errors import UserError
from specflowd.repo import feed, git, worktrees
from specflowd.repo.designdocs import TASK_FILES
from specflowd.repo.git import GitError, ObjectStore, TreeEntry
from specflowd.repo.project import Project

log = logging.getLogger("specflowd.remote")


def host_name(config: RemoteConfig) -> str:
    """This daemon's name in the fleet: the configured one, else the machine's hostname."""
    return config.host or socket.gethostname().split(".")[0] or "localhost"


@dataclass(frozen=True)
class Remote:
    project: Project
    name: str

    @property
    def tracking(self) -> str:
        """The remote's design-docs branch, as this clone last fetched it."""
        return tracking_branch(self.name, self.project.branch)

    def refspecs(self) -> list[str]:
        """What a fetch brings: every branch (the design-docs branch, work branches, the base
        branch) as `git fetch` would, and the lease refs beside them."""
        return [f"+refs/heads/*:refs/remotes/{self.name}/*", f"+refs/specflow/leases/*:{tracking_leases(self.name)}*"]

    def fetch(self, timeout: float) -> None:
        git.fetch(self.project.root, self.name, self.refspecs(), timeout=timeout)

    def tip(self) -> str | None:
        return git.read_ref(self.project.common_dir, self.tracking)

    def branch_tip(self, branch: str) -> str | None:
        return git.read_ref(self.project.common_dir, tracking_branch(self.name, branch))

    def leases(self) -> dict[str, Lease]:
        """The remote's leases as last fetched: orchestration -> lease."""
        prefix = tracking_leases(self.name)
        out = {}
        for ref, sha, ctime, message in git.ref_commits(self.project.root, prefix):
            lease = parse_lease(sha, datetime.fromtimestamp(ctime, UTC), message)
            if lease is not None and ref == prefix + lease.orchestration:
                out[lease.orchestration] = lease
        return out


def unpushed(remote: Remote, store: ObjectStore, local: str) -> list[fleet.Unpushed]:
    """This host's commits of the design-docs branch that the remote does not have, oldest first."""
    out = []
    for sha in git.commits_between(remote.project.root, remote.tip(), local):
        values = dict(parse_trailers(_message(store.read(sha, "commit"))))
        out.append(fleet.Unpushed(sha, values.get("Orchestration"), values.get("Event"), values.get("Host")))
    return out


def write_lease(store: ObjectStore, cwd: Path, orchestration: str, host: str, expires: datetime) -> str:
    """A lease commit (an empty tree, no parent): what the lease ref will point at."""
    tree = store.write("tree", b"")
    return store.write("commit", git.format_commit(tree, [], git.committer_ident(cwd),
                                                   lease_message(orchestration, host, expires)))


# ---- rebuilding unpushed commits on the remote's tip ----

class RebuildConflict(UserError):
    """A commit of this host cannot be re-applied on what the remote has: a person must decide."""

    def __init__(self, sha: str, path: str) -> None:
        super().__init__(f"commit {sha[:10]} of this host changes {path} in a way that cannot be re-applied on the "
                         "remote's newer version: it stays unpushed; re-make that change on the remote's version "
                         "(the daemon pushes everything else)", code=ErrorCode.CONFLICT)
        self.sha = sha
        self.path = path


def rebuild(store: ObjectStore, onto: str, commits: list[str], drop: set[str]) -> str:
    """`commits` (oldest first) made again on top of `onto`, but those in `drop`; the new tip. Each
    keeps its message, author and times; only its parent and tree change. A file it changed is
    changed again on the newer version: taken as it is when nobody else touched it, else its changed
    lines carried over, else (a task list) its marks made again; a mark that the remote has already
    (two hosts marked one task) leaves no commit. RebuildConflict when none of that works."""
    tip = onto
    for sha in commits:
        if sha in drop:
            continue
        raw = store.read(sha, "commit")
        headers = _headers(raw)
        parents = [v for k, v in headers if k == "parent"]
        if len(parents) != 1:
            raise RebuildConflict(sha, "(a merge commit: the design-docs branch stays linear)")
        if parents[0] == tip:
            tip = sha  # already on top of what we build on: kept as it is
            continue
        tip_tree = store.commit_tree(tip)
        changed = _changed(store, store.commit_tree(parents[0]), _tree_of(headers), "")
        blobs = {path: _rebased(store, sha, raw, path, old, new, _blob(store, tip_tree, path))
                 for path, (old, new) in changed.items()}
        tree = store.replace_paths(tip_tree, blobs) if blobs else tip_tree
        if changed and tree == tip_tree:
            continue  # the remote made the same change already
        tip = store.write("commit", fleet_commit(raw, tree, tip))
    return tip


def fleet_commit(raw: bytes, tree: str, parent: str) -> bytes:
    """A commit's bytes with another tree and parent; its author, committer and message as they were."""
    head, sep, body = raw.partition(b"\n\n")
    lines = [line for line in head.split(b"\n") if not line.startswith((b"tree ", b"parent "))]
    return b"\n".join([b"tree " + tree.encode(), b"parent " + parent.encode(), *lines]) + sep + body


def _headers(raw: bytes) -> list[tuple[str, str]]:
    head = raw.partition(b"\n\n")[0].decode("utf-8", "surrogateescape")
    return [(k, v) for k, _, v in (line.partition(" ") for line in head.split("\n") if not line.startswith(" "))]


def _tree_of(headers: list[tuple[str, str]]) -> str:
    return next(v for k, v in headers if k == "tree")


def _message(raw: bytes) -> str:
    return raw.partition(b"\n\n")[2].decode("utf-8", "surrogateescape")


def _blob(store: ObjectStore, tree: str, path: str) -> str | None:
    entry = store.entry(tree, path)
    return entry.sha if entry is not None and entry.mode != git.DIRECTORY else None


def _changed(store: ObjectStore, a: str | None, b: str | None, prefix: str) -> dict[str, tuple[str | None, str | None]]:
    """Files that differ between two trees: path -> (blob before, blob after)."""
    if a == b:
        return {}
    old: dict[bytes, TreeEntry] = {e.name: e for e in store.tree(a)} if a else {}
    new: dict[bytes, TreeEntry] = {e.name: e for e in store.tree(b)} if b else {}
    out: dict[str, tuple[str | None, str | None]] = {}
    for name in sorted(old.keys() | new.keys()):
        o, n = old.get(name), new.get(name)
        if o is not None and n is not None and o.sha == n.sha and o.mode == n.mode:
            continue
        path = prefix + name.decode("utf-8", "surrogateescape")
        o_dir = o is not None and o.mode == git.DIRECTORY
        n_dir = n is not None and n.mode == git.DIRECTORY
        if o_dir or n_dir:
            out.update(_changed(store, o.sha if o_dir and o else None, n.sha if n_dir and n else None, path + "/"))
        if not o_dir or not n_dir:
            out[path] = (o.sha if o is not None and not o_dir else None, n.sha if n is not None and not n_dir else None)
    return out


def _rebased(store: ObjectStore, sha: str, raw: bytes, path: str, old: str | None, new: str | None,
             theirs: str | None) -> str | None:
    """The blob `path` holds once this commit's change of it is made on the remote's version."""
    if theirs in (old, new):
        return new
    if old is not None and new is not None and theirs is not None:
        ours_old, ours_new, now = store.read(old, "blob"), store.read(new, "blob"), store.read(theirs, "blob")
        merged = reapply(ours_old, ours_new, now)
        if merged is None and path.rsplit("/", 1)[-1] in TASK_FILES:
            marks = fleet.marks_in(_message(raw))
            try:
                merged = apply_marks(parse(now), marks)[0].to_bytes() if marks else None
            except TaskListError:
                merged = None
        if merged is not None:
            return store.write("blob", merged)
    raise RebuildConflict(sha, path)


# ---- moving the local branch ----

def move_branch(project: Project, old: str | None, new: str, worktree: Path) -> None:
    """Move the local design-docs branch from `old` to `new` (compare-and-swap; RefMoved when someone
    committed meanwhile) and carry its worktree along, as SPEC §4 carries fetched commits. Held
    under the design-docs lock by the caller. A worktree that cannot follow (a person's conflicting
    edit) is left as it is: the next commit says why."""
    git.update_ref(project.root, project.branch_ref, new, old, "specflowd: sync with the shared remote")
    if old is None or not (worktree / ".git").exists():
        return
    try:
        git.carry_forward(worktree, old, new)
    except GitError as e:
        log.warning("the design-docs worktree could not follow the shared branch: %s", e.stderr.strip())


# ---- work branches ----

def prepare_work_branch(remote: Remote, spec: str, base: str, *, resume: bool) -> None:
    """Before this host runs `spec`: its work branch as the remote has it (resumed from another host,
    or from an earlier run), else a new one from the remote's base branch. When resuming, work of
    this host the remote never got is not the orchestration's (its lease was lost): the branch and
    its worktree go back to the remote's."""
    project = remote.project
    branch = worktrees.work_branch(spec)
    ref = f"refs/heads/{branch}"
    theirs, ours = remote.branch_tip(branch), git.read_ref(project.common_dir, ref)
    if theirs is None:
        start = remote.branch_tip(base)
        if ours is None and start is not None:
            git.create_branch(project.root, branch, start)
        return
    if ours == theirs or (ours is not None and not resume and git.is_ancestor(project.root, theirs, ours)):
        return
    path = project.code_worktree(spec)
    checked_out = (path / ".git").exists()
    git.update_ref(project.root, ref, theirs, ours, "specflowd: the work branch as the shared remote has it")
    if checked_out and ours is not None:
        try:
            git.carry_forward(path, ours, theirs)
        except GitError:
            # A killed agent's leftovers: the worktree is specflowd's, and is made again from the branch.
            worktrees.unlock(project, spec)
            git.remove_worktree(project.root, path, force=True)


def follow_base(project: Project, base: str, new: str) -> None:
    """After a merge landed on the remote's base branch: the local base branch follows when it can
    fast-forward and its checkout (if any) is clean; else it is left for its owner to pull."""
    ref = f"refs/heads/{base}"
    ours = git.read_ref(project.common_dir, ref)
    if ours is None or ours == new or not git.is_ancestor(project.root, ours, new):
        return
    checkout = git.checked_out_at(project.root, base)
    if checkout is not None and git.changed_files(checkout, untracked=False):
        return
    try:
        git.update_ref(project.root, ref, new, ours, f"specflowd: {base} as merged on the shared remote")
        if checkout is not None:
            git.carry_forward(checkout, ours, new)
    except (GitError, UserError) as e:
        log.info("the local %s did not follow the remote's merge: %s", base, getattr(e, "message", e))


# ---- the fleet's view, read from refs ----

def read_records(remote: Remote, records: dict[str, fleet.Record], since: str | None, until: str,
                 store: ObjectStore) -> set[str]:
    """Fold the remote's feed entries after `since` up to `until` into `records`."""
    entries = feed.read_new(store, since, until, 1000) if since else None
    if entries is None:
        entries = feed.read(remote.project, limit=None, since=since, until=until)
    return fleet.fold(records, entries)


def view(remote: Remote, records: dict[str, fleet.Record], leases: dict[str, Lease], *, host: str,
         statuses: Callable[[str], dict[str, TaskStatus]], now: datetime, local: set[str],
         sync: dict[str, Any]) -> dict[str, Any]:
    """What `status`, `list` and `fleet` read of a fleet (`.specflow/fleet.json`): every host, and
    every orchestration this host does not run itself, as state."""
    states = {}
    for oid, rec in records.items():
        if oid in local:
            continue
        states[oid] = dump(fleet.view_state(rec, leases.get(oid), str(remote.project.root), statuses(rec.spec)))
    return {"remote": remote.name, "host": host, "at": now.isoformat(), **sync,
            "hosts": fleet.hosts(records, leases),
            "leases": {oid: {"host": lease.host, "expires": lease.expires.isoformat(),
                             "written": lease.written.isoformat()} for oid, lease in leases.items()},
            "since": {oid: rec.since.isoformat() for oid, rec in records.items() if rec.since},
            "orchestrations": states}
