"""Agent processes: spawn into the worktree, follow their log, time out, cancel, adopt after a restart.

The child writes its stream straight into the log file (O_APPEND) and the supervisor follows that
file, so the stream keeps reaching the log when the daemon dies and a restarted daemon can adopt
the run. Nothing here owns orchestration state: every fact goes to `post` as an event.

Threads: a run waits for its pool slot and is spawned in a thread of its own; from then on one
loop thread follows every run (log growth, exit, deadlines, cancel). One thread parsing, not one
per agent, keeps the daemon's own thread from queuing behind many of them for the GIL.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from specflowd import fsio
from specflowd.agents.pool import Pool
from specflowd.agents.process import is_alive, lower_priority, process_start_time, run_env, signal_group
from specflowd.agents.registry import adapter_for
from specflowd.agents.result import (
    AgentRequest,
    RunFinished,
    RunInterrupted,
    RunProgress,
    RunRecord,
    RunStarted,
)
from specflowd.agents.stream import Adapter, Exit, Transcript, conclude, fold
from specflowd.agents.tail import Follower, Inotify
from specflowd.core.events import RunResult
from specflowd.core.vocab import TAIL_CHARS, ErrorType, StopReason

Post = Callable[[object], None]
_log = logging.getLogger(__name__)

# The run's own files: never through a planted link, readable by the user only.
_APPEND = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
THREAD_NAME = "specflowd-agent"
# How long after a log grows it is read: live progress may lag this much, and no more.
READ_EVERY_S = 0.05
# How long a CLI may say it cannot reach its model API before it is stopped: some (Codex) would
# wait for the network forever.
UNREACHABLE_S = 120.0


def tail(path: Path, chars: int = TAIL_CHARS) -> str:
    """The end of a file another process writes (stderr, a transcript); empty when unreadable."""
    try:
        with path.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 4 * chars))
            return f.read().decode("utf-8", "replace")[-chars:]
    except OSError:
        return ""


def finished_in_log(kind: str, log: Path) -> bool:
    """Whether a run's log holds the CLI's verdict (its result event): a run that ended while no
    daemon watched can then be judged from its log."""
    adapter = adapter_for(kind)
    try:
        follower = Follower(log, 0, adapter.keys)
    except OSError:
        return False
    try:
        lines = [*follower.read_lines(), follower.rest()]
    finally:
        follower.close()
    return fold(Transcript(), filter(None, map(adapter.parse_line, lines))).final is not None


class _Run:
    """One supervised run. After the hand-over, only the loop thread touches the following state."""

    def __init__(self, run_id: str, adapter: Adapter, orchestration: str) -> None:
        self.run_id = run_id
        self.adapter = adapter
        self.orchestration = orchestration
        self.record: RunRecord | None = None
        self.cancelled = threading.Event()
        self.follower: Follower | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.pidfd: int | None = None
        self.wd: int | None = None
        self.transcript = Transcript()
        self.stopped: StopReason | None = None
        self.kill_at: float | None = None
        self.deadline = 0.0
        self.give_up_at: float | None = None  # while the CLI says it cannot reach its API

    def wakes_at(self) -> float | None:
        if self.stopped:
            return self.kill_at
        return min(self.deadline, self.give_up_at) if self.give_up_at is not None else self.deadline


class Supervisor:
    """Runs agents and reports them to `post` (thread-safe; the daemon passes its queue's `put`)."""

    def __init__(self, post: Post, *, pool: Pool | None = None, grace_s: float = 5.0,
                 unreachable_s: float = UNREACHABLE_S) -> None:
        self._post = post
        self._pool = pool
        self._grace_s = grace_s
        self._unreachable_s = unreachable_s
        self._lock = threading.Lock()
        self._runs: dict[str, _Run] = {}
        self._inotify = Inotify()
        self._wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._handed: queue.SimpleQueue[_Run] = queue.SimpleQueue()
        self._closing = False
        self._loop_thread = threading.Thread(target=self._loop, name="agent-supervisor", daemon=True)
        self._loop_thread.start()

    def start(self, run_id: str, request: AgentRequest, log: Path, *, orchestration: str = "") -> None:
        """Start a run without blocking: it waits for a pool slot, then spawns, in its own thread."""
        run = self._register(run_id, request.kind, orchestration)
        threading.Thread(target=self._guarded, args=(run, self._launch, run, request, log), name=f"agent-{run_id}",
                         daemon=True).start()

    def adopt(self, record: RunRecord) -> None:
        """Take over a run a previous daemon started: follow it if alive, else read how it ended."""
        run = self._register(record.run_id, record.kind, record.orchestration)
        run.record = record
        threading.Thread(target=self._guarded, args=(run, self._adopt, run), name=f"agent-{record.run_id}",
                         daemon=True).start()

    def cancel(self, run_id: str) -> bool:
        """Stop a run (waiting or running): SIGTERM to its group, SIGKILL after the grace period."""
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                return False
            run.cancelled.set()
        os.eventfd_write(self._wake, 1)
        if self._pool:
            self._pool.wake()
        return True

    def record(self, run_id: str) -> RunRecord | None:
        """What the state file should keep of a running run (pid, start time, log, session id)."""
        with self._lock:
            run = self._runs.get(run_id)
            return run.record if run else None

    def close(self) -> None:
        """Stop following, leaving the agents running: a daemon that stops hands them to the next one."""
        self._closing = True
        os.eventfd_write(self._wake, 1)
        self._loop_thread.join()
        self._inotify.close()
        os.close(self._wake)

    # -- run threads: waiting for a slot, spawning, adopting ------------------------------------

    def _register(self, run_id: str, kind: str, orchestration: str) -> _Run:
        run = _Run(run_id, adapter_for(kind), orchestration)
        with self._lock:
            if run_id in self._runs:
                raise ValueError(f"run {run_id} is already supervised")
            self._runs[run_id] = run
        return run

    def _unregister(self, run: _Run) -> bool:
        """Drop the run from the table; False when it was dropped already (its end is reported once)."""
        with self._lock:
            if self._runs.get(run.run_id) is not run:
                return False
            del self._runs[run.run_id]
        if self._pool:
            self._pool.release(run.run_id)
        return True

    def _end(self, run: _Run, event: RunFinished | RunInterrupted) -> None:
        if self._unregister(run):
            self._post(event)

    def _finish(self, run: _Run, result: RunResult) -> None:
        self._end(run, RunFinished(run_id=run.run_id, result=result))

    def _fail(self, run: _Run, error: Exception) -> None:
        """Whatever went wrong, the run ends with a result and leaves nothing running."""
        # A spawned run is known by its process before it has a record; an adopted one by its record.
        leader = run.proc.pid if run.proc is not None else run.record.pid if run.record is not None else None
        if leader is not None:
            signal_group(leader, signal.SIGKILL)
        if run.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                run.proc.wait(timeout=self._grace_s)  # no zombie, even here
        why = f"specflowd could not supervise the agent: {error!r}"
        self._finish(run, RunResult(ok=False, error_type=ErrorType.PROCESS_FAILED, error=why, stderr_tail=why))

    def _guarded(self, run: _Run, body: Callable[..., None], *args: object) -> None:
        try:
            body(*args)
        except Exception as e:
            self._fail(run, e)

    def _launch(self, run: _Run, request: AgentRequest, log: Path) -> None:
        if self._pool and not self._pool.acquire(run.run_id, run.orchestration, run.cancelled):
            self._finish(run, RunResult(ok=False, error_type=ErrorType.CANCELLED, error="cancelled before it started"))
            return
        fsio.make_private_dirs(log.parent)
        prompt = log.with_suffix(".prompt.md")
        stderr = log.with_suffix(".stderr")
        # Prompts and transcripts may quote secrets from the project: readable by the user only.
        fsio.atomic_write(prompt, request.prompt.encode(), fsync=False)
        out = os.open(log, _APPEND, 0o600)
        err = os.open(stderr, _APPEND, 0o600)
        stdin = os.open(prompt if run.adapter.prompt_on_stdin else os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        offset = os.fstat(out).st_size
        began = time.monotonic()
        try:
            proc = subprocess.Popen(run.adapter.argv(request, prompt), cwd=request.cwd,
                                    env=run_env(os.environ, request.kind, request.env_pass, request.env),
                                    stdin=stdin, stdout=out, stderr=err,
                                    start_new_session=True)
        except OSError as e:
            self._finish(run, RunResult(ok=False, error_type=ErrorType.PROCESS_FAILED, error=str(e), stderr_tail=str(e)))
            return
        finally:
            for fd in (out, err, stdin):
                os.close(fd)
        # Kept first: should anything below fail, `_fail` kills and reaps the child it names.
        run.proc = proc
        lower_priority(proc.pid, below=os.getpid())
        start_time = process_start_time(proc.pid) or 0
        run.record = RunRecord(run_id=run.run_id, kind=request.kind, orchestration=run.orchestration, pid=proc.pid,
                               start_time=start_time, log_path=log, log_offset=offset, stderr_path=stderr,
                               started_at=time.time() - (time.monotonic() - began), timeout_s=request.timeout_s,
                               session_id=request.resume_session_id if not request.fork_session else None)
        run.pidfd = os.pidfd_open(proc.pid)
        self._post(RunStarted(run_id=run.run_id, pid=proc.pid, start_time=start_time, log_path=log))
        self._hand_over(run)

    def _adopt(self, run: _Run) -> None:
        record = run.record
        assert record is not None
        if not record.log_path.exists():
            self._end(run, RunInterrupted(run_id=run.run_id, session_id=record.session_id, log_path=record.log_path))
            return
        with contextlib.suppress(ProcessLookupError):
            run.pidfd = os.pidfd_open(record.pid)
        # Checked after opening: the pidfd then pins this very process, not a later one with its pid.
        if run.pidfd is not None and not is_alive(record.pid, record.start_time):
            os.close(run.pidfd)
            run.pidfd = None
        if run.pidfd is None:
            # Gone while no daemon watched: its log says how it ended, if it got that far.
            run.follower = Follower(record.log_path, record.log_offset, run.adapter.keys)
            try:
                self._conclude(run, code=None)
            finally:
                run.follower.close()
                run.follower = None
            return
        if self._pool:
            self._pool.occupy(record.run_id, record.orchestration)
        self._post(RunStarted(run_id=record.run_id, pid=record.pid, start_time=record.start_time,
                              log_path=record.log_path, adopted=True))
        self._hand_over(run)

    def _hand_over(self, run: _Run) -> None:
        """From here on the loop thread follows the run; nothing else touches its following state."""
        self._handed.put(run)
        os.eventfd_write(self._wake, 1)

    # -- the loop thread -------------------------------------------------------------------------

    def _loop(self) -> None:
        # Named for `top -H` and the benchmarks, which report this thread's CPU on its own.
        with contextlib.suppress(OSError):
            Path(f"/proc/self/task/{threading.get_native_id()}/comm").write_text(THREAD_NAME)
        poll = select.poll()
        poll.register(self._inotify.fileno(), select.POLLIN)
        poll.register(self._wake, select.POLLIN)
        by_pidfd: dict[int, _Run] = {}
        by_wd: dict[int, _Run] = {}
        grown: set[_Run] = set()
        read_at: float | None = None  # when the logs that grew are read
        while not self._closing:
            now = time.monotonic()
            wakes = [at for run in by_pidfd.values() if (at := run.wakes_at()) is not None]
            if read_at is not None:
                wakes.append(read_at)
            timeout_ms = max(0, int((min(wakes) - now) * 1000) + 1) if wakes else None
            ready = {fd for fd, _ in poll.poll(timeout_ms)}
            if self._wake in ready:
                os.eventfd_read(self._wake)
                while not self._handed.empty():
                    run = self._handed.get()
                    if self._guarded_step(run, self._begin_following, run):
                        assert run.pidfd is not None and run.wd is not None
                        by_pidfd[run.pidfd], by_wd[run.wd] = run, run
                        poll.register(run.pidfd, select.POLLIN)
                    else:
                        self._stop_following(run, poll, by_pidfd, by_wd)
            now = time.monotonic()
            if self._inotify.fileno() in ready:
                # Logs are read a moment after they grow, all at once: an agent writes line by
                # line, and a read per write would keep this thread, and so the GIL the daemon's
                # loop needs, busy. Until then the loop does not listen for more growth.
                grown.update(self._grown(by_wd))
                read_at = now + READ_EVERY_S
                poll.modify(self._inotify.fileno(), 0)
            if read_at is not None and now >= read_at:
                grown.update(self._grown(by_wd))
                for run in grown:
                    if run.pidfd in by_pidfd and not self._guarded_step(run, self._consume, run):
                        self._stop_following(run, poll, by_pidfd, by_wd)
                grown.clear()
                read_at = None
                poll.modify(self._inotify.fileno(), select.POLLIN)
            for pidfd, run in list(by_pidfd.items()):
                if pidfd in ready:
                    self._guarded_step(run, self._conclude_exited, run)
                    self._stop_following(run, poll, by_pidfd, by_wd)
                elif not self._guarded_step(run, self._enforce, run, now):
                    self._stop_following(run, poll, by_pidfd, by_wd)

    def _grown(self, by_wd: dict[int, _Run]) -> set[_Run]:
        """The runs whose logs grew since the last look (a watch may belong to a run gone since)."""
        return {run for wd in self._inotify.fired() if (run := by_wd.get(wd)) is not None}

    def _guarded_step(self, run: _Run, step: Callable[..., None], *args: object) -> bool:
        """Run one step of one run; a failure ends that run, never the loop."""
        try:
            step(*args)
            return True
        except Exception as e:
            try:
                self._fail(run, e)
            except Exception:  # even `post` failing must not stop the loop that serves every run
                _log.exception("agent run %s failed and its failure could not be reported", run.run_id)
            return False

    def _begin_following(self, run: _Run) -> None:
        record = run.record
        assert record is not None
        run.deadline = time.monotonic() + (record.started_at + record.timeout_s - time.time())
        # Watch first, then read: a write in between wakes the loop, none is missed.
        run.wd = self._inotify.watch(record.log_path)
        run.follower = Follower(record.log_path, record.log_offset, run.adapter.keys)
        self._consume(run)

    def _enforce(self, run: _Run, now: float) -> None:
        record = run.record
        assert record is not None
        if run.stopped is None and (run.cancelled.is_set() or now >= run.deadline
                                    or (run.give_up_at is not None and now >= run.give_up_at)):
            run.stopped = (StopReason.CANCELLED if run.cancelled.is_set() else
                           StopReason.TIMEOUT if now >= run.deadline else StopReason.UNREACHABLE)
            signal_group(record.pid, signal.SIGTERM)
            run.kill_at = now + self._grace_s
        if run.kill_at is not None and now >= run.kill_at:
            signal_group(record.pid, signal.SIGKILL)
            run.kill_at = None

    def _stop_following(self, run: _Run, poll: select.poll, by_pidfd: dict[int, _Run], by_wd: dict[int, _Run]) -> None:
        """Forget the run in the loop and close what it held; its end has been reported."""
        if run.pidfd is not None:
            if by_pidfd.pop(run.pidfd, None) is not None:
                poll.unregister(run.pidfd)
            os.close(run.pidfd)
            run.pidfd = None
        if run.wd is not None:
            if by_wd.pop(run.wd, None) is not None:
                self._inotify.unwatch(run.wd)
            run.wd = None
        if run.follower is not None:
            run.follower.close()
            run.follower = None

    def _conclude_exited(self, run: _Run) -> None:
        record = run.record
        assert record is not None
        # Kill what the agent left behind in its group before reaping: the group id cannot be
        # reused while the leader is a zombie.
        signal_group(record.pid, signal.SIGKILL)
        self._conclude(run, code=run.proc.wait() if run.proc else None)

    def _conclude(self, run: _Run, code: int | None) -> None:
        """Read the log to its end and report how the run ended."""
        record = run.record
        assert record is not None
        self._consume(run, to_the_end=True)
        transcript = run.transcript
        if code is None and run.stopped is None and transcript.final is None:
            self._end(run, RunInterrupted(run_id=run.run_id, session_id=transcript.session_id or record.session_id,
                                          log_path=record.log_path))
            return
        exit = Exit(code=code, stopped=run.stopped, stderr_tail=tail(record.stderr_path),
                    duration_s=round(time.time() - record.started_at, 3))
        self._finish(run, conclude(run.adapter, transcript, exit, datetime.now(UTC), tail(record.log_path)))

    def _consume(self, run: _Run, *, to_the_end: bool = False) -> None:
        assert run.follower is not None
        lines = run.follower.read_lines()
        if to_the_end:
            lines.append(run.follower.rest())
        before = run.transcript
        after = run.transcript = fold(before, filter(None, map(run.adapter.parse_line, lines)))
        if not after.unreachable:
            run.give_up_at = None
        elif run.give_up_at is None:
            run.give_up_at = time.monotonic() + self._unreachable_s
        progress = (after.session_id, after.tool, after.cost_usd, after.task_id)
        # One progress event per read, and only on change: a fast stream must not flood the daemon.
        if progress != (before.session_id, before.tool, before.cost_usd, before.task_id):
            if run.record is not None and after.session_id != run.record.session_id:
                run.record = run.record.model_copy(update={"session_id": after.session_id})
            self._post(RunProgress(run_id=run.run_id, session_id=after.session_id, tool=after.tool,
                                   cost_usd=after.cost_usd, task_id=after.task_id))
