"""`specflowd run`: the long-running process. Wires the event loop to the inboxes, the task-list
watchers, signals and systemd, and answers every request exactly once."""

from __future__ import annotations

import errno
import logging
import os
import signal
import sys
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from specflowd import fsio
from specflowd.agents.pool import Pool
from specflowd.agents.supervisor import Supervisor
from specflowd.core import machine, protocol
from specflowd.core.protocol import ErrorBody, Request, request_digest
from specflowd.core.text import quoted, visible
from specflowd.core.vocab import ErrorCode
from specflowd.daemon import pidlock, requests, statefile
from specflowd.daemon.fleet import Fleets
from specflowd.daemon.handedits import HandEdits, Settled
from specflowd.daemon.inbox import Inbox
from specflowd.daemon.loop import Loop
from specflowd.daemon.notify import Notifier
from specflowd.daemon.runner import Runner
from specflowd.daemon.site import Site
from specflowd.daemon.watch import (
    INBOX_EVENTS,
    REF_EVENTS,
    TASK_LIST_EVENTS,
    BranchMoved,
    InboxHandler,
    InboxTouched,
    RefHandler,
    Rescan,
    TaskListHandler,
    TaskListTouched,
    WorktreeGone,
    make_observer,
)
from specflowd.errors import EXIT_CONFIG, UserError
from specflowd.repo.designdocs import DesignDocs
from specflowd.repo.project import Project, locate
from specflowd.repo.settings import listed_projects, load_config, user_config_path, user_settings

# Errors that are the disk's, not the request's: the request waits for space.
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
log = logging.getLogger("specflowd.daemon")
RESCAN_S = 5.0  # the inbox is listed again this often, in case inotify dropped an event


@dataclass(frozen=True)
class WatchdogPing:
    """Timer: tell systemd the loop is alive."""


@dataclass(frozen=True)
class Reload:
    """SIGHUP: read the configuration again."""


def open_site(project: Project, loop: Loop) -> Site:
    """Take the project's daemon lock and load what the daemon keeps for it."""
    fsio.make_private_dirs(project.specflow_dir)
    lock_fd = pidlock.acquire(project)
    try:
        docs = DesignDocs(project)
        try:
            with docs.lock():
                docs.repair()  # what a crash of the last daemon (or of `mark --now`) left
        except UserError as e:
            log.warning("the design-docs worktree needs a person: %s", e.message)
        inbox = Inbox(project.requests, project.responses)
        for folder in (inbox.responses / ".tmp", inbox.digests, project.workflows):  # its atomic writes
            for stale in fsio.stale_temp_files(folder):
                stale.unlink(missing_ok=True)
        site = Site(project=project, config=load_config(project), docs=docs,
                    inbox=inbox, hand=HandEdits(project.root, docs, loop.later),
                    lock_fd=lock_fd, states=statefile.load_all(project))
        site.index()
        return site
    except BaseException:
        os.close(lock_fd)
        raise


class Daemon:
    def __init__(self, projects: list[Project], notifier: Notifier, observer: str = "inotify") -> None:
        self.loop = Loop()
        self.post = self.loop.post  # for components in other threads (the agent supervisor, ...)
        self.notifier = notifier
        self.uid = os.geteuid()
        self.answered = 0
        self.sites: dict[Path, Site] = {}
        try:
            for project in projects:
                self.sites[project.root] = open_site(project, self.loop)
        except BaseException:
            self._release()
            raise
        self.observer = make_observer(observer, self.post)
        # One pool for the whole daemon: the user config's [pool], else the first project's.
        user = user_settings().get("pool", {})
        first = next(iter(self.sites.values())).config
        self.pool = Pool(user.get("max_agents", first.pool.max_agents))
        self.supervisor = Supervisor(self.post, pool=self.pool)
        self.runner = Runner(self.loop, self.supervisor, self.sites)
        try:  # many machines (SPEC §10): the projects that share a remote, synced before READY
            self.fleets = Fleets(self.sites, self.runner, self.loop, self.pool.state().max_agents)
        except BaseException:
            self.supervisor.close()
            self._release()
            raise
        self.loop.on(BranchMoved, lambda e: self.branch_moved(self.sites[e.root]))
        self.loop.on(InboxTouched, lambda e: self._handle(self.sites[e.root], e.name))
        self.loop.on(Rescan, lambda e: self.rescan())
        self.loop.on(TaskListTouched, lambda e: self.sites[e.root].hand.touched(e.spec))
        self.loop.on(WorktreeGone, lambda e: self.worktree_gone(self.sites[e.root]))
        self.loop.on(Settled, self._settled)
        self.loop.on(WatchdogPing, lambda e: self.notifier.send("WATCHDOG=1"))
        self.loop.on(Reload, lambda e: self.reload())

    # -- lifecycle -------------------------------------------------------------------------

    def run(self) -> int:
        # The agent supervisor's thread parses streams while this loop answers the inbox: a
        # shorter GIL switch interval keeps the loop's waits short while agents stream.
        sys.setswitchinterval(0.001)
        for root, site in self.sites.items():
            self.observer.schedule(InboxHandler(root, site.inbox.requests, self.post), str(site.inbox.requests),
                                   event_filter=INBOX_EVENTS)
            self.watch_task_lists(site)
            self.watch_branch(site)
        self.observer.start()
        signal.signal(signal.SIGTERM, lambda *_: self.loop.stop())
        signal.signal(signal.SIGINT, lambda *_: self.loop.stop())
        signal.signal(signal.SIGHUP, lambda *_: self.post(Reload()))
        try:
            self.fleets.begin()  # many machines: which orchestrations this host still holds a lease on
            for site in self.sites.values():
                self.runner.restarted(site)  # adopt or resume what the last daemon left
            # What arrived while no daemon ran goes through the loop like any arrival: a backlog of
            # thousands is answered after READY, not before it (systemd's start timeout), in order.
            for root, site in self.sites.items():
                for name in site.inbox.waiting():
                    self.post(InboxTouched(root, name))
            for site in self.sites.values():  # and what was edited by hand meanwhile
                self._look_at_task_lists(site)
            self.notifier.send("READY=1")
            self._status()
            log.info("serving %s", ", ".join(str(r) for r in self.sites))
            self.loop.later(RESCAN_S, Rescan(), every=RESCAN_S)
            if self.notifier.watchdog_interval:
                self.loop.later(0, WatchdogPing(), every=self.notifier.watchdog_interval)
            self.loop.run()
        finally:
            self.notifier.send("STOPPING=1")
            log.info("stopping")
            # watchdog logs a spurious error when its emitter is stopped mid-read.
            logging.getLogger("watchdog.observers.inotify").setLevel(logging.CRITICAL)
            self.observer.stop()
            self.observer.join(timeout=3)
            self.fleets.close()
            self.supervisor.close()  # agents keep running: the next daemon adopts them
            self._release()
            self.notifier.close()
        return 0

    def branch_moved(self, site: Site) -> None:
        """Marks that arrived by fetch, pull, update-ref or `mark --now`: carry the worktree forward,
        and let the running orchestrations see the task lists as they are now. The daemon's own
        commits move the ref too: the worktree is at that tip already, and there is nothing to do."""
        if site.docs.in_step(site.docs.tip()):
            return
        try:
            with site.docs.lock():
                site.docs.sync_worktree(site.docs.tip())
        except UserError as e:
            log.warning("the design-docs branch moved, but the worktree could not follow: %s", e.message)
            return
        for spec in {s.spec for s in site.active()}:
            self.runner.marked(site, spec)

    def _settled(self, e: Settled) -> None:
        site = self.sites[e.root]
        if any(s.spec == e.spec and machine.writes_documents(s) for s in site.active()):
            # A design or analyze agent is writing this spec's documents and commits them itself:
            # committing its half-written files under it would take its index lock from it.
            site.hand.postpone(e.spec)
            return
        if site.hand.settled(e.spec):
            self.runner.marked(site, e.spec)

    def _release(self) -> None:
        for site in self.sites.values():
            site.close()

    def reload(self) -> None:
        self.notifier.reloading()
        for site in self.sites.values():
            try:
                site.config = load_config(site.project)
            except UserError as e:
                log.error("reload: %s; the settings read before stay in force until it is fixed", e.message)
        log.info("configuration reloaded")
        self.notifier.send("READY=1")

    # -- requests --------------------------------------------------------------------------

    def rescan(self) -> None:
        """The periodic safety net: requests whose events were lost, and a design-docs worktree that
        was removed and made again (its old inotify watch died with the folder)."""
        for site in self.sites.values():
            self.watch_task_lists(site)
            pidlock.note(site.project)
            self.branch_moved(site)  # a move whose event was lost
        self.scan()

    def watch_branch(self, site: Site) -> None:
        """Watch the design-docs branch's ref, and packed-refs, where git rewrites them."""
        common = site.project.common_dir
        ref = common / site.project.branch_ref
        handler = RefHandler(site.project.root, [ref, common / "packed-refs"], self.post)
        for folder in {ref.parent, common}:
            with suppress(OSError):  # not there yet: the periodic rescan still sees a move
                self.observer.schedule(handler, str(folder), event_filter=REF_EVENTS)

    @staticmethod
    def worktree_gone(site: Site) -> None:
        """Forget the identity of the folder watched: the next rescan watches whatever is there then."""
        if site.docs_watch is not None:
            site.docs_watch = (site.docs_watch[0], None)

    def watch_task_lists(self, site: Site) -> None:
        """Watch the design-docs worktree, again whenever the folder there is a new one."""
        docs = site.docs.worktree
        try:
            st = docs.stat()
        except OSError:
            return
        identity = (st.st_dev, st.st_ino)
        if site.docs_watch is not None and site.docs_watch[1] == identity:
            return
        again = site.docs_watch is not None
        if site.docs_watch is not None:
            with suppress(KeyError, OSError):  # its folder is gone, and the emitter with it
                self.observer.unschedule(site.docs_watch[0])
            log.info("watching the design-docs worktree %s again", docs)
        root = site.project.root
        watch = self.observer.schedule(TaskListHandler(root, docs, self.post), str(docs), recursive=True,
                                       event_filter=TASK_LIST_EVENTS)
        site.docs_watch = (watch, identity)
        if again:  # edits made while nothing watched
            with suppress(UserError):
                self._look_at_task_lists(site)

    @staticmethod
    def _look_at_task_lists(site: Site) -> None:
        """Treat every task list as touched once: hand edits made while nothing watched get committed."""
        for spec in site.docs.snapshot().specs():
            site.hand.touched(spec)

    def scan(self) -> None:
        for site in self.sites.values():
            for name in site.inbox.waiting():
                if self.loop.stopping:
                    return
                self._handle(site, name)

    def _handle(self, site: Site, name: str) -> None:
        got = site.inbox.read(name)
        if got is None:  # already handled (an event and a rescan both saw it)
            return
        raw, facts = got
        rid, parsed = protocol.parse_request(raw, facts, self.uid)
        digest = request_digest(raw)
        log.debug("read %s (%d bytes) as request %s", quoted(name), facts.size, rid)
        prior = site.inbox.answered(rid)
        if prior is not None:
            answer, earlier = prior
            if earlier is None or digest is None or earlier == digest:
                # Answered before: a repeated request, or we died between answering and filing it away.
                log.info("request %s (%s): answered before, not done again", rid, quoted(name))
                site.inbox.file_away(name, bool(answer.get("ok")))
                return
            # The same id, other content: answered apart, so that the first answer stays.
            parsed = ErrorBody(code=ErrorCode.CONFLICT, field="id", message=(
                f"request id {rid} was used before, by a request with other content (answered at "
                f"{answer.get('at', '?')}): this one is not done; give it an id of its own"))
            rid = site.inbox.unused_id(rid)
        try:
            response = self._respond(site, rid, parsed)
            site.inbox.answer(rid, response, digest)
        except OSError as e:
            if e.errno not in _DISK_FULL:
                raise
            # Not the request's fault, and it passes: it stays queued, and the rescan tries again.
            log.error("request %s stays queued: no space left on the disk of %s", rid, site.project.root)
            self.notifier.status(f"disk full: requests wait in {site.inbox.requests}")
            return
        # Logged before the request is filed away: killed in between, the next daemon finds the
        # request answered and says so, so that every request has its line in the log.
        if response["ok"]:
            log.info("request %s: %s ok", rid, response["action"])
        else:
            log.info("request %s refused: %s: %s", rid, response["error"]["code"],
                     visible(response["error"]["message"]))
        site.inbox.file_away(name, response["ok"])
        self.answered += 1
        self._status()

    def _respond(self, site: Site, rid: str, parsed: Request | ErrorBody) -> dict[str, Any]:
        if isinstance(parsed, ErrorBody):
            return protocol.error_response(rid, parsed, datetime.now(UTC))
        try:
            result = requests.execute(site, parsed, rid, self.runner)
        except UserError as e:
            return protocol.error_response(rid, ErrorBody(code=e.code, message=e.message, field=e.field),
                                           datetime.now(UTC))
        except Exception as e:
            if isinstance(e, OSError) and e.errno in _DISK_FULL:
                raise  # `_handle` leaves the request queued
            log.exception("request %s failed", rid)
            return protocol.error_response(
                rid, ErrorBody(code=ErrorCode.INTERNAL, message=f"the daemon failed: {type(e).__name__}: {e}"),
                datetime.now(UTC))
        return protocol.ok_response(rid, parsed.action, result, datetime.now(UTC))

    def _status(self) -> None:
        active = sum(len(site.active()) for site in self.sites.values())
        self.notifier.status(f"{len(self.sites)} project(s), {active} orchestration(s) active, "
                             f"{self.answered} request(s) answered")


def projects_to_serve(paths: list[str]) -> list[Project]:
    """The projects named, else the current one; and those of the user config. Each must be set up."""
    named = [Path(p).expanduser() for p in paths]
    if not named:
        with suppress(UserError):  # not in a repository: the user config may still list projects
            named.append(locate().root)
    found = {project.root: project for project in (locate(path).require_initialized()
                                                     for path in listed_projects(*named))}
    if not found:
        raise UserError(f"no project to serve: run `specflowd run` inside a repository set up with `specflowd "
                        f"init`, pass --project PATH, or list projects in {user_config_path()} (looked there: "
                        f"{'it lists none' if user_config_path().exists() else 'there is no such file'}; "
                        "`specflowd systemd install --project PATH` adds one)", exit_code=EXIT_CONFIG)
    return list(found.values())


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("watchdog").setLevel(max(logging.INFO, logging.getLogger().level))
