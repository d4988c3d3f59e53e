"""The sync thread of a project on many machines (SPEC §10): fetches the shared remote on a timer and
after every refusal, carries what arrived into the local design-docs branch and worktree (this
host's unpushed commits rebuilt on top), and pushes: every commit of the design-docs branch, never
forced, with the lease of each orchestration it writes for renewed in the same atomic push, the
work branches with them; claims; lease renewals every `lease_s / 3`; releases; merges into the
remote's base branch. All pushes go through this one thread, so no two of them race for a lease.

It owns the leases this host holds. It never touches the daemon's state: it posts what happened
(`SyncReport`, `ClaimResult`, `LeaseGone`, `RemoteMerged`) to the loop, which decides.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from specflowd.core import lease as leases
from specflowd.core.config import RemoteConfig
from specflowd.core.fleet import Claim, Unpushed, claim_message, parse_push, plan_push, refusal
from specflowd.core.lease import Lease
from specflowd.core.trailers import event_message
from specflowd.core.vocab import MergeOutcome as Outcome
from specflowd.errors import UserError
from specflowd.repo import git, remote, worktrees
from specflowd.repo.designdocs import DesignDocs
from specflowd.repo.git import RefMoved, Unreachable
from specflowd.repo.merge import MergeOutcome, combine
from specflowd.repo.remote import RebuildConflict, Remote

log = logging.getLogger("specflowd.sync")
ATTEMPTS = 8  # pushes refused in a row before the thread waits for its next turn
Post = Any


def now_utc() -> datetime:
    return datetime.now(UTC)


@dataclass
class Held:
    """A lease this host holds: the lease commit the remote has, and when it lapses."""

    spec: str
    sha: str
    expires: datetime
    renewed: datetime
    release: bool = False  # the orchestration ended: the lease goes once its last commits are pushed


@dataclass(frozen=True)
class SyncReport:
    """After each round: what the loop's view of the fleet needs."""

    root: Path
    tip: str | None  # the remote's design-docs branch
    leases: dict[str, Lease]
    moved: bool  # the local branch took commits from the remote
    reachable: bool
    unreachable_since: datetime | None
    error: str | None
    held: frozenset[str]
    stats: dict[str, int]


@dataclass(frozen=True)
class ClaimResult:
    root: Path
    claim: Claim
    won: bool
    why: str = ""


@dataclass(frozen=True)
class LeaseGone:
    """A lease this host held is lost: taken by another host, or not renewed in time."""

    root: Path
    orchestration: str
    reason: str


@dataclass(frozen=True)
class RemoteMerged:
    root: Path
    orchestration: str
    outcome: MergeOutcome


@dataclass
class _Merge:
    orchestration: str
    spec: str
    base: str
    message: str


@dataclass
class _Claiming:
    claim: Claim
    sha: str  # the new lease commit
    expires: datetime


@dataclass
class _Push:
    """One atomic push: its refspecs, the values its leases expect, the refs that mirror the remote
    once it lands, and the leases it renews or releases."""

    refspecs: list[str] = field(default_factory=list)
    expect: dict[str, str] = field(default_factory=dict)
    mirror: dict[str, str | None] = field(default_factory=dict)
    renewed: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    released: set[str] = field(default_factory=set)


@dataclass
class _Inbox:
    claims: list[Claim] = field(default_factory=list)
    releases: list[str] = field(default_factory=list)
    merges: list[_Merge] = field(default_factory=list)
    holds: list[tuple[str, str, Lease]] = field(default_factory=list)


class Sync:
    def __init__(self, remote: Remote, host: str, config: RemoteConfig, post: Post) -> None:
        self.remote = remote
        self.project = remote.project
        self.host = host
        self.config = config
        self.post = post
        self.docs = DesignDocs(self.project)  # this thread's own: objects, lock, helper process
        self.store = self.docs.store
        self.held: dict[str, Held] = {}
        self.claiming: dict[str, _Claiming] = {}
        self.merges: list[_Merge] = []
        self.reachable = True
        self.unreachable_since: datetime | None = None
        self.error: str | None = None
        self.stats: Counter[str] = Counter()
        self._moved = False
        self._requests: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._next_fetch = 0.0
        self._closing = False
        self._thread: threading.Thread | None = None

    # -- what the loop asks (any thread) ---------------------------------------------------

    def kick(self) -> None:
        """Something was committed: push it."""
        self._requests.put(("kick", None))

    def claim(self, c: Claim) -> None:
        self._requests.put(("claim", c))

    def release(self, orchestration: str) -> None:
        self._requests.put(("release", orchestration))

    def hold(self, orchestration: str, spec: str, lease: Lease) -> None:
        """After a restart: a lease of this host the remote still has, live."""
        self._requests.put(("hold", (orchestration, spec, lease)))

    def merge(self, orchestration: str, spec: str, base: str, message: str) -> None:
        self._requests.put(("merge", _Merge(orchestration, spec, base, message)))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="specflowd-sync", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closing = True
        self._requests.put(("stop", None))
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.docs.close()

    # -- the thread ------------------------------------------------------------------------

    def first(self) -> SyncReport:
        """The first round, in the caller's thread, before the daemon says it is ready."""
        self.fetch()
        return self._report()

    def _run(self) -> None:
        while not self._closing:
            inbox = self._wait()
            if self._closing:
                return
            try:
                self._round(inbox)
            except Exception:  # one bad round must not end the thread: the next one tries again
                log.exception("syncing with %s failed", self.remote.name)
                self._next_fetch = 0.0
            self.post(self._report())

    def _wait(self) -> _Inbox:
        """Block until asked for something or a timer is due; gather everything asked meanwhile."""
        inbox = _Inbox()
        timeout: float | None = max(0.0, self._due() - time.monotonic())
        while True:
            try:
                kind, value = self._requests.get(timeout=timeout)
            except queue.Empty:
                return inbox
            if kind == "stop":
                return inbox
            if kind == "claim":
                inbox.claims.append(value)
            elif kind == "release":
                inbox.releases.append(value)
            elif kind == "merge":
                inbox.merges.append(value)
            elif kind == "hold":
                inbox.holds.append(value)
            timeout = 0  # take what else is queued, then go

    def _due(self) -> float:
        """The monotonic time of the next thing to do unasked: a fetch, a renewal, giving a lease up."""
        due = self._next_fetch
        now, mono = now_utc(), time.monotonic()
        third = self.config.lease_s / leases.RENEWALS_PER_LEASE
        for h in self.held.values():
            due = min(due, mono + max(0.0, third - (now - h.renewed).total_seconds()))
            stop_at = h.expires.timestamp() - self.config.lease_s / leases.SKEW_FRACTION
            due = min(due, mono + max(0.0, stop_at - now.timestamp()))
        if self.merges:
            due = min(due, mono + self.config.sync_interval_s)
        return due

    def _round(self, inbox: _Inbox) -> None:
        for orchestration, spec, lease in inbox.holds:
            self.held[orchestration] = Held(spec, lease.sha, lease.expires, lease.written)
        for orchestration in inbox.releases:
            if orchestration in self.held:
                self.held[orchestration].release = True
        for c in inbox.claims:
            self._start_claim(c)
        self.merges += inbox.merges
        if time.monotonic() >= self._next_fetch:
            self.fetch()
        self._give_up(now_utc())
        self.push()
        if self.merges and self.reachable:
            self._merge_all()

    # -- fetching --------------------------------------------------------------------------

    def fetch(self) -> bool:
        """Fetch, and carry what came into the local branch; False when the remote is unreachable."""
        self._next_fetch = time.monotonic() + self.config.sync_interval_s
        self.stats["fetches"] += 1
        try:
            self.remote.fetch(timeout=self._timeout())
        except Unreachable as e:
            self._unreachable(e)
            return False
        self.reachable, self.unreachable_since = True, None
        self._integrate()
        return True

    def _unreachable(self, e: Unreachable) -> None:
        if self.reachable:
            log.warning("the remote %s is unreachable: %s", self.remote.name,
                        (e.stderr.strip().splitlines() or ["no answer"])[0])
        self.reachable = False
        self.unreachable_since = self.unreachable_since or now_utc()

    def _integrate(self) -> None:
        """The remote's new commits into the local branch: a fast-forward, or this host's unpushed
        commits rebuilt on the remote's tip (fenced ones left out)."""
        tip = self.remote.tip()
        if tip is None:
            return
        with self.docs.lock():
            local = self.docs.tip()
            if local == tip or (local is not None and git.is_ancestor(self.project.root, tip, local)):
                return
            mine = remote.unpushed(self.remote, self.store, local) if local else []
            new = self._rebuild(tip, mine) if mine else tip
            if new is not None and self._move(local, new):
                self.stats["rebuilds" if mine else "fast_forwards"] += 1

    def _move(self, old: str | None, new: str) -> bool:
        """Move the local branch (lock held); False when a commit outside the daemon (an agent's in
        the worktree) moved it meanwhile: the next round tries again."""
        try:
            remote.move_branch(self.project, old, new, self.docs.worktree)
        except RefMoved:
            self._next_fetch = 0.0
            return False
        self._moved = True
        return True

    def _rebuild(self, onto: str, commits: list[Unpushed]) -> str | None:
        """The unpushed commits on `onto`, fenced ones dropped; None on a conflict (said in `error`)."""
        plan = plan_push(commits, held=set(self.held), claiming=set(self.claiming))
        if plan.drop:
            self.stats["dropped"] += len(plan.drop)
            log.info("left out %d commit(s) of orchestrations whose lease this host lost", len(plan.drop))
        try:
            new = remote.rebuild(self.store, onto, [c.sha for c in commits], set(plan.drop))
        except RebuildConflict as e:
            self.error = e.message
            log.error("%s", e.message)
            return None
        self.error = None
        return new

    # -- pushing ---------------------------------------------------------------------------

    def push(self) -> None:
        """Push what there is to push, fetching and rebuilding after each refusal."""
        for _ in range(ATTEMPTS):
            if not self.reachable:
                self._lose_claims("the remote is unreachable")
                return
            if self._push_once():
                return
            if not self.fetch():
                return
            self._check_leases()
        self._next_fetch = 0.0

    def _push_once(self) -> bool:
        """One atomic push; True when it landed or there was nothing to push."""
        now = now_utc()
        with self.docs.lock():
            local = self.docs.tip()
            commits = remote.unpushed(self.remote, self.store, local) if local else []
            plan = plan_push(commits, held=set(self.held), claiming=set(self.claiming))
            tip = self.remote.tip()
            if plan.drop and tip is not None:
                new = self._rebuild(tip, commits)
                if new is None or not self._move(local, new):
                    return True
                local = new
                commits = remote.unpushed(self.remote, self.store, local)
        renew = {oid for oid in plan.renew if oid in self.held}
        renew |= {oid for oid, h in self.held.items()
                  if h.release or leases.renewal_due(h.renewed, now, self.config.lease_s)}
        # A commit that cannot be rebuilt on the remote's tip waits for a person; leases still renew.
        branch = local if commits and local and not self.error else None
        if branch is None and not renew and not self.claiming:
            return True
        push = self._refspecs(branch, renew, now)
        try:
            out = git.push(self.project.root, self.remote.name, push.refspecs, push.expect,
                           timeout=self._timeout())
        except Unreachable as e:
            self._unreachable(e)
            self._lose_claims("the remote is unreachable")
            return True
        self.stats["pushes"] += 1
        why = refusal(parse_push(out))
        if why is not None:
            self.stats[f"refused_{why}"] += 1
            log.info("push refused (%s): fetching and trying again", why)
            return False
        if branch is not None:
            self.stats["commits_pushed"] += len(commits)
        self._landed(push, now)
        return True

    def _timeout(self) -> float:
        return max(10.0, self.config.lease_s / 4)

    def _refspecs(self, branch: str | None, renew: set[str], now: datetime) -> _Push:
        p = _Push()
        if branch is not None:
            p.refspecs.append(f"{branch}:{self.project.branch_ref}")
            p.mirror[self.remote.tracking] = branch
        prefix = leases.tracking_leases(self.remote.name)
        for oid, c in self.claiming.items():
            p.refspecs.append(f"{c.sha}:{leases.lease_ref(oid)}")
            p.expect[leases.lease_ref(oid)] = c.claim.expected
            p.mirror[prefix + oid] = c.sha
        for oid in sorted(renew):
            h = self.held[oid]
            ref = leases.lease_ref(oid)
            p.expect[ref] = h.sha
            if h.release:
                p.refspecs.append(f":{ref}")
                p.mirror[prefix + oid] = None
                p.released.add(oid)
            else:
                expires = leases.expiry(now, self.config.lease_s)
                sha = remote.write_lease(self.store, self.project.root, oid, self.host, expires)
                p.renewed[oid] = (sha, expires)
                p.refspecs.append(f"{sha}:{ref}")
                p.mirror[prefix + oid] = sha
            self._work_branch(h.spec, p)
        return p

    def _work_branch(self, spec: str, p: _Push) -> None:
        """The work branch goes with its orchestration's commits (SPEC §10: after every batch, and
        before a merge); forced only over the value last fetched, and only by the lease's holder."""
        name = worktrees.work_branch(spec)
        ref = f"refs/heads/{name}"
        ours = git.read_ref(self.project.common_dir, ref)
        theirs = self.remote.branch_tip(name)
        if ours is not None and ours != theirs and ref not in p.expect:
            p.refspecs.append(f"{ours}:{ref}")
            p.expect[ref] = theirs or ""
            p.mirror[leases.tracking_branch(self.remote.name, name)] = ours

    def _landed(self, p: _Push, now: datetime) -> None:
        """A push landed: the refs that mirror the remote, and the books of the leases, follow."""
        for oid, (sha, expires) in p.renewed.items():
            h = self.held[oid]
            h.sha, h.expires, h.renewed = sha, expires, now
        for oid in p.released:
            del self.held[oid]
        for oid, c in self.claiming.items():
            self.held[oid] = Held(c.claim.spec, c.sha, c.expires, now)
            self.post(ClaimResult(self.project.root, c.claim, True))
        self.claiming.clear()
        git.set_refs(self.project.root, p.mirror)

    # -- claims and leases -----------------------------------------------------------------

    def _start_claim(self, c: Claim) -> None:
        """The claim's event commit on the local branch, and its lease commit: pushed together."""
        subject, event, trailers = claim_message(c, self.host)
        message = event_message(subject, event, trailers)
        try:
            self.docs.commit(lambda snap: ([], message), allow_empty=True)
        except UserError as e:
            self.post(ClaimResult(self.project.root, c, False, e.message))
            return
        expires = leases.expiry(now_utc(), self.config.lease_s)
        sha = remote.write_lease(self.store, self.project.root, c.orchestration, self.host, expires)
        self.claiming[c.orchestration] = _Claiming(c, sha, expires)

    def _lose_claims(self, why: str) -> None:
        for c in self.claiming.values():
            self.post(ClaimResult(self.project.root, c.claim, False, why))
        self.claiming.clear()

    def _check_leases(self) -> None:
        """After a refused push and a fetch: claims that lost, and leases another host took."""
        current = self.remote.leases()
        for oid, c in list(self.claiming.items()):
            found = current.get(oid)
            if (found.sha if found else "") != c.claim.expected:
                del self.claiming[oid]
                self.post(ClaimResult(self.project.root, c.claim, False,
                                      f"{found.host if found else 'another host'} claimed it first"))
        for oid, h in list(self.held.items()):
            found = current.get(oid)
            if found is None or found.sha != h.sha:
                del self.held[oid]
                if h.release:
                    continue  # it ended here; whatever happened to the lease since does not matter
                who = f"taken by {found.host}" if found else "deleted on the remote"
                self.post(LeaseGone(self.project.root, oid, f"its lease was {who}"))

    def _give_up(self, now: datetime) -> None:
        """Leases this host could not renew in time: given up before any other host may take them."""
        for oid, h in list(self.held.items()):
            if not h.release and leases.holder_must_stop(h.expires, now, self.config.lease_s):
                del self.held[oid]
                since = f" (the remote unreachable since {leases.iso(self.unreachable_since)})" \
                    if self.unreachable_since else ""
                self.post(LeaseGone(self.project.root, oid, f"its lease could not be renewed in time{since}"))

    # -- merges into the remote's base branch ----------------------------------------------

    def _merge_all(self) -> None:
        for m in list(self.merges):
            if m.orchestration not in self.held:
                self.merges.remove(m)  # lost meanwhile: the machine on this host is fenced
                continue
            outcome = self._merge(m)
            if outcome is None:
                return  # unreachable, or refused every time: tried again next round
            self.merges.remove(m)
            self.post(RemoteMerged(self.project.root, m.orchestration, outcome))

    def _merge(self, m: _Merge) -> MergeOutcome | None:
        work = worktrees.work_branch(m.spec)
        for _ in range(ATTEMPTS):
            base_tip = self.remote.branch_tip(m.base)
            work_tip = git.read_ref(self.project.common_dir, f"refs/heads/{work}")
            if base_tip is None or work_tip is None:
                missing = f"{self.remote.name}/{m.base}" if base_tip is None else work
                return MergeOutcome(Outcome.FAILED, detail=f"branch {missing} does not exist")
            combined = combine(self.project, work, m.base, base_tip, work_tip, m.message)
            if combined.outcome != Outcome.MERGED or combined.commit is None:
                return combined
            now = now_utc()
            push = self._refspecs(None, {m.orchestration}, now)
            push.refspecs.append(f"{combined.commit}:refs/heads/{m.base}")
            push.mirror[leases.tracking_branch(self.remote.name, m.base)] = combined.commit
            try:
                out = git.push(self.project.root, self.remote.name, push.refspecs, push.expect,
                               timeout=self._timeout())
            except Unreachable as e:
                self._unreachable(e)
                return None
            self.stats["pushes"] += 1
            why = refusal(parse_push(out))
            if why is None:
                self._landed(push, now)
                remote.follow_base(self.project, m.base, combined.commit)
                return combined
            self.stats[f"refused_{why}"] += 1
            if not self.fetch():
                return None
            self._check_leases()
            if m.orchestration not in self.held:
                return None
        return None

    # -- reporting -------------------------------------------------------------------------

    def _report(self) -> SyncReport:
        moved, self._moved = self._moved, False
        try:
            current = self.remote.leases()
        except git.GitError:
            current = {}
        return SyncReport(root=self.project.root, tip=self.remote.tip(), leases=current, moved=moved,
                          reachable=self.reachable, unreachable_since=self.unreachable_since, error=self.error,
                          held=frozenset(self.held), stats=dict(self.stats))

