"""A project on many machines, the loop's side (SPEC §10). It keeps the fleet's view of the shared
feed and leases (folded from what the sync thread fetched), queues start requests as `queued`
commits, decides what this host claims or takes over (`core.fleet.claims`), starts or resumes what
it won, tells the machine when a lease was lost (it stops the agent), gives leases back when an
orchestration ends, merges through the remote, and writes `.specflow/fleet.json` for the commands
that show the fleet. Loop thread only; the sync thread (`daemon/sync.py`) does the git I/O."""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from specflowd import fsio
from specflowd.core import fleet, orchestrations
from specflowd.core.events import LeaseLost, MergeBranch, MergeFinished, TakenOver
from specflowd.core.fleet import Claim, Record
from specflowd.core.lease import Lease, clock_skew_s, holder_must_stop, iso, max_skew_s
from specflowd.core.plan import Plan, make_plan
from specflowd.core.protocol import StartRequest
from specflowd.core.records import dump
from specflowd.core.state import OrchestrationState
from specflowd.core.text import visible
from specflowd.core.trailers import parse_trailers
from specflowd.core.vocab import TERMINAL, ErrorCode, FeedEvent, MergeOutcome, Status, TaskStatus
from specflowd.daemon.loop import Loop
from specflowd.daemon.runner import MachineEvent, Runner
from specflowd.daemon.site import Site
from specflowd.daemon.sync import ClaimResult, LeaseGone, RemoteMerged, Sync, SyncReport
from specflowd.errors import UserError
from specflowd.repo import feed, git, remote, worktrees
from specflowd.repo.git import GitError
from specflowd.repo.remote import Remote, host_name

log = logging.getLogger("specflowd.fleet")
PUBLISH_EVERY_S = 1.0  # fleet.json is written at most this often


@dataclass(frozen=True)
class Publish:
    """Timer: write the project's fleet.json."""

    root: Path


class Fleet:
    """One project's part in a fleet; implements `site.Shared`."""

    def __init__(self, site: Site, runner: Runner, loop: Loop, free: Callable[[], int]) -> None:
        cfg = site.config.remote
        project = site.project
        if git.remote_url(project.root, cfg.name) is None:
            raise UserError(f"[remote] name = {cfg.name!r} in {project.config_path}, but {project.root} has no such "
                            "git remote (`git remote -v` lists them; `git remote add NAME URL` adds one)")
        self.site, self.runner, self.loop, self.free = site, runner, loop, free
        self.config = cfg
        self.host = host_name(cfg)
        self.remote = Remote(project, cfg.name)
        self.records: dict[str, Record] = {}
        self.leases: dict[str, Lease] = {}
        self.tip: str | None = None  # the remote's tip, folded into the records so far
        self.claiming: set[str] = set()
        self.adopting: set[str] = set()  # running here since before this host joined the fleet
        self.failed: set[str] = set()  # claimed, but could not be started here: left to other hosts
        self.report: SyncReport | None = None
        self.publish_due = False
        self.sync = Sync(self.remote, self.host, cfg, loop.post)
        self.absorb(self.sync.first())
        skew = clock_skew_s(list(self.leases.values()), datetime.now(UTC))
        if skew > max_skew_s(cfg.lease_s):
            self.sync.close()
            raise UserError(f"this host's clock is {skew:.1f} s behind the newest lease on {cfg.name}: more than "
                            f"lease_s / 4 ({max_skew_s(cfg.lease_s):g} s), so leases would lapse at the wrong times. "
                            "Synchronise the clocks (NTP: `timedatectl set-ntp true`), then start again "
                            "(`specflowd doctor` shows the skew)")
        site.fleet = self
        site.docs.committed = self.sync.kick

    # -- starting and stopping ----------------------------------------------------------------

    def begin(self) -> None:
        """After the daemon's restart: which of this host's orchestrations it still holds."""
        now = datetime.now(UTC)
        for state in list(self.site.states.values()):
            if not state.active:
                continue
            lease = self.leases.get(state.id)
            if lease is not None and lease.host == self.host and not holder_must_stop(lease.expires, now,
                                                                                     self.config.lease_s):
                self.sync.hold(state.id, state.spec, lease)
            elif not state.host and lease is None:
                self.adopting.add(state.id)  # begun before this host joined a fleet: claimed, and runs on
                self.sync.claim(Claim(state.id, state.spec, "", "", True))
            else:  # before the restart adopts its agents or starts new ones: this host runs it no more
                why = f"taken by {lease.host}" if lease and lease.host != self.host else "not renewed while the daemon was down"
                with contextlib.suppress(UserError):
                    self.runner.request(self.site, state, LeaseLost(now=now, reason=f"its lease was {why}"))
        self.sync.start()

    def close(self) -> None:
        self.sync.close()

    def running(self) -> int:
        """Orchestrations of this host with an agent's work to do: what fills its slots."""
        return sum(1 for s in self.site.states.values()
                   if s.host == self.host and s.status == Status.RUNNING and s.lease_lost_at is None)

    # -- what the sync thread reports -----------------------------------------------------------

    def absorb(self, report: SyncReport) -> None:
        self.report, self.leases = report, report.leases
        if report.tip and report.tip != self.tip:
            remote.read_records(self.remote, self.records, self.tip, report.tip, self.site.docs.store)
            self.tip = report.tip
        self.publish_soon()

    def on_report(self, report: SyncReport) -> None:
        self.absorb(report)
        if report.moved:  # marks from other hosts (or a rebuild): the running orchestrations hear them
            for spec in {s.spec for s in self.site.active()}:
                self.runner.marked(self.site, spec)
        self.decide()

    def on_claim(self, result: ClaimResult) -> None:
        c = result.claim
        self.claiming.discard(c.orchestration)
        if c.orchestration in self.adopting:
            self.adopting.discard(c.orchestration)
            state = self.site.states.get(c.orchestration)
            if result.won and state is not None:
                self.site.save(replace(state, host=self.host))
            elif not result.won:
                self.lose(c.orchestration, f"it could not be claimed for this host: {result.why}")
            return
        if not result.won:
            log.info("claim of %s lost: %s", c.orchestration, visible(result.why))
            self.decide()
            return
        log.info("%s orchestration %s (%s)", "took over" if c.previous_host else "claimed", c.orchestration, c.spec)
        try:
            self.take(c)
        except (UserError, GitError, OSError) as e:
            why = getattr(e, "message", None) or str(e)
            log.error("orchestration %s was claimed but cannot run here: %s", c.orchestration, visible(why))
            self.failed.add(c.orchestration)
            self.sync.release(c.orchestration)

    def on_gone(self, e: LeaseGone) -> None:
        log.warning("lease of orchestration %s lost: %s", e.orchestration, e.reason)
        self.lose(e.orchestration, e.reason)

    def on_merged(self, e: RemoteMerged) -> None:
        state = self.site.states.get(e.orchestration)
        if state is None:
            return
        outcome = MergeOutcome.MERGED if e.outcome.outcome == MergeOutcome.UP_TO_DATE else e.outcome.outcome
        if outcome == MergeOutcome.MERGED:
            worktrees.remove_if_clean(self.site.project, state.spec)
        self.loop.post(MachineEvent(self.site.project.root, state.id, MergeFinished(
            now=datetime.now(UTC), outcome=outcome, files=e.outcome.files, detail=e.outcome.detail)))

    # -- deciding ----------------------------------------------------------------------------

    def decide(self) -> None:
        if self.report is None or not self.report.reachable:
            return
        busy = set(self.report.held) | self.claiming | self.adopting | self.failed | {
            oid for oid, s in self.site.states.items() if s.lease_lost_at is None and s.host == self.host}
        for c in fleet.claims(self.records, self.leases, free=self.free(), now=datetime.now(UTC), busy=busy):
            self.claiming.add(c.orchestration)
            self.sync.claim(c)

    def take(self, c: Claim) -> None:
        """Start a claimed orchestration here, or resume one taken over (SPEC §10)."""
        rec = self.records[c.orchestration]
        site = self.site
        queued = fleet.parse_queued(git.commit_message(site.project.root, rec.queued_commit)) \
            if rec.queued_commit else fleet.parse_queued("")
        fresh = orchestrations.start(
            site.states.values(), new_id=c.orchestration, spec=rec.spec, project=str(site.project.root),
            config=site.config, overrides=queued.orchestration, budget=queued.budget,
            request_id=queued.request_id or c.orchestration, now=datetime.now(UTC))
        fresh.host = self.host
        base = fresh.config.orchestration.base_branch
        remote.prepare_work_branch(self.remote, rec.spec, base, resume=c.started)
        if not c.started:
            self.runner.start(site, fresh)
            return
        doc_status, plan = self.plan_of(rec, fresh)
        state = fleet.resume_state(rec, project=str(site.project.root), config=fresh.config, plan=plan,
                                   task_status=doc_status, host=self.host)
        before = site.states.get(c.orchestration)
        if before is not None:  # this host ran it before: its runs keep their numbers (and logs)
            state.runs = before.runs
        self.runner.request(site, state, TakenOver(now=datetime.now(UTC), host=self.host,
                                                   previous_host=c.previous_host))

    def plan_of(self, rec: Record, fresh: OrchestrationState) -> tuple[dict[str, TaskStatus], Plan | None]:
        """The task list's statuses now, and the plan the orchestration entered implement with."""
        docs = self.site.docs
        snap = docs.snapshot()
        path = snap.task_file(rec.spec)
        doc = docs.document(snap, path)
        statuses = dict(zip(doc.ids(), doc.statuses(), strict=True))
        began = next((e for e in reversed(rec.entries)
                      if e.get("event") == FeedEvent.PHASE and e["subject"].endswith("phase implement")), None)
        if began is None:
            return statuses, None
        then = docs.snapshot(began["commit"])
        plan = make_plan(docs.document(then, path), spec=rec.spec, file=path,
                         batch_size=fresh.config.orchestration.batch_size)
        return statuses, plan

    def lose(self, orchestration: str, reason: str) -> None:
        state = self.site.states.get(orchestration)
        if state is not None and state.lease_lost_at is None and state.status not in TERMINAL:
            self.loop.post(MachineEvent(self.site.project.root, orchestration,
                                        LeaseLost(now=datetime.now(UTC), reason=reason)))

    # -- site.Shared ---------------------------------------------------------------------------

    def queue(self, request: StartRequest, rid: str) -> dict[str, Any]:
        """A start request on many machines: a `queued` commit, claimed by whichever host has a free
        slot first (this one too). A repeated request (answered by no one yet) is not queued twice."""
        site = self.site
        spec = request.spec
        site.docs.snapshot().task_file(spec)  # UserError(unknown_spec)
        again = git.log(site.project.root, site.project.branch_ref, "%H", limit=1,
                        grep=f"^Specflow-Request: {_literal(rid)}$").strip()
        if again:
            oid = dict(parse_trailers(git.commit_message(site.project.root, again))).get("Orchestration", "")
            return _summary(oid, spec, Status.QUEUED)
        running = fleet.active_for_spec(self.records, spec) or next(
            (s for s in site.states.values() if s.spec == spec and s.active), None)
        if running is not None:
            raise UserError(f"spec {spec} already has an orchestration in the fleet, {running.id}: cancel it first, "
                            "or wait for it to end", code=ErrorCode.CONFLICT, field="spec")
        oid = self.new_id()
        overrides = {"orchestration": dump(request.config), "budget": dump(request.budget)}
        message = fleet.queued_message(oid, spec, self.host, rid, {k: v for k, v in overrides.items() if v})
        sha = site.docs.commit(lambda snap: ([], message), allow_empty=True)
        if sha is not None:  # known at once here, so that this host may claim it before it is pushed
            fleet.fold(self.records, [feed.entry_from(sha, int(datetime.now(UTC).timestamp()), self.host, message)])
        self.decide()
        return _summary(oid, spec, Status.QUEUED)

    def new_id(self) -> str:
        while True:
            oid = secrets.token_hex(4)
            if oid not in self.records and oid not in self.site.states:
                return oid

    def merge(self, state: OrchestrationState, action: MergeBranch, message: str) -> None:
        self.sync.merge(state.id, state.spec, action.base_branch, message)

    def saved(self, state: OrchestrationState) -> None:
        if state.status in TERMINAL and state.host == self.host:
            self.sync.release(state.id)

    def holder(self, orchestration: str) -> str | None:
        lease = self.leases.get(orchestration)
        rec = self.records.get(orchestration)
        return lease.host if lease is not None else rec.host if rec is not None and rec.host else None

    # -- fleet.json ----------------------------------------------------------------------------

    def publish_soon(self) -> None:
        if not self.publish_due:
            self.publish_due = True
            self.loop.later(PUBLISH_EVERY_S, Publish(self.site.project.root))

    def publish(self) -> None:
        self.publish_due = False
        r = self.report
        if r is None:
            return
        snap = self.site.docs.snapshot()
        lists: dict[str, dict[str, TaskStatus]] = {}

        def statuses(spec: str) -> dict[str, TaskStatus]:
            if spec not in lists:
                try:
                    doc = self.site.docs.document(snap, snap.task_file(spec))
                    lists[spec] = dict(zip(doc.ids(), doc.statuses(), strict=True))
                except UserError:
                    lists[spec] = {}
            return lists[spec]

        local = {oid for oid, s in self.site.states.items() if s.lease_lost_at is None}
        sync = {"reachable": r.reachable, "unreachable_since": iso(r.unreachable_since) if r.unreachable_since else None,
                "error": r.error, "held": sorted(r.held), "stats": r.stats}
        data = remote.view(self.remote, self.records, self.leases, host=self.host, statuses=statuses,
                           now=datetime.now(UTC), local=local, sync=sync)
        fsio.atomic_write(self.site.project.fleet_file, json.dumps(data, indent=1).encode() + b"\n", fsync=False)


class Fleets:
    """Every project of the daemon that is on many machines, and the daemon's slots they share."""

    def __init__(self, sites: dict[Path, Site], runner: Runner, loop: Loop, max_agents: int) -> None:
        self.max_agents = max_agents
        self.by_root: dict[Path, Fleet] = {}
        try:
            for root, site in sites.items():
                if site.config.remote.name:
                    self.by_root[root] = Fleet(site, runner, loop, self.free)
        except BaseException:
            self.close()
            raise
        loop.on(SyncReport, lambda e: self.by_root[e.root].on_report(e))
        loop.on(ClaimResult, lambda e: self.by_root[e.root].on_claim(e))
        loop.on(LeaseGone, lambda e: self.by_root[e.root].on_gone(e))
        loop.on(RemoteMerged, lambda e: self.by_root[e.root].on_merged(e))
        loop.on(Publish, lambda e: self.by_root[e.root].publish())

    def free(self) -> int:
        """Agent slots (`max_agents`, per host) no orchestration of this host fills or claims."""
        return self.max_agents - sum(f.running() + len(f.claiming) for f in self.by_root.values())

    def begin(self) -> None:
        for f in self.by_root.values():
            f.begin()

    def close(self) -> None:
        for f in self.by_root.values():
            f.close()


def _summary(oid: str, spec: str, status: Status) -> dict[str, Any]:
    return {"orchestration": oid, "spec": spec, "status": status.value, "phase": "design"}


def _literal(text: str) -> str:
    """`text` as an extended regular expression that matches only itself."""
    return "".join(f"\\{c}" if c in ".^$*+?()[]{}|\\" else c for c in text)

