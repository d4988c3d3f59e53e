"""Agent processes: spawn into the worktree, follow their log, time out, cancel, adopt after a restart.

The child writes its stream straight into the log file (O_APPEND) and the supervisor follows that
file, so the stream keeps reaching the log when the daemon dies and a restarted daemon can adopt
the run. Nothing here owns orchestration state: every fact goes to `post` as an event.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from specflowd.agents.pool import Pool
from specflowd.agents.registry import adapter_for
from specflowd.agents.result import (
    AgentRequest,
    AgentResult,
    ErrorType,
    RunFinished,
    RunInterrupted,
    RunProgress,
    RunRecord,
    RunStarted,
)
from specflowd.agents.stream import Adapter, Exit, Transcript, conclude, fold
from specflowd.agents.tail import Follower

Post = Callable[[object], None]

# The daemon's systemd handshake is not the agent's: a child that pinged the watchdog would lie.
_DAEMON_ONLY = frozenset({"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"})
_STDERR_TAIL = 4000


def log_path(project: Path, orchestration: str, n: int, phase: str) -> Path:
    return project / ".specflow" / "logs" / orchestration / f"{n}-{phase}.jsonl"


def specflow_env(*, project: Path, spec: str, orchestration: str, tasks: Iterable[str], inbox: Path) -> dict[str, str]:
    """The variables of SPEC §9; task ids are space-separated for shell loops."""
    return {"SPECFLOW_PROJECT": str(project), "SPECFLOW_SPEC": spec, "SPECFLOW_ORCHESTRATION": orchestration,
            "SPECFLOW_TASKS": " ".join(tasks), "SPECFLOW_INBOX": str(inbox)}


def child_env(base: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in base.items() if k not in _DAEMON_ONLY}
    env.update(extra)
    return env


def _stat(pid: int) -> tuple[str, int] | None:
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count from the last ")".
    fields = data[data.rindex(b")") + 2:].split()
    return fields[0].decode(), int(fields[19])


def process_start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat: with the pid, it names one process across pid reuse."""
    stat = _stat(pid)
    return stat[1] if stat else None


def is_alive(pid: int, start_time: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X") and stat[1] == start_time


def _stderr_tail(path: Path) -> str:
    try:
        with path.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - _STDERR_TAIL))
            return f.read().decode("utf-8", "replace")[-_STDERR_TAIL:]
    except OSError:
        return ""


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class _Run:
    def __init__(self, run_id: str, adapter: Adapter, orchestration: str) -> None:
        self.run_id = run_id
        self.adapter = adapter
        self.orchestration = orchestration
        self.record: RunRecord | None = None
        self.cancelled = threading.Event()
        self.wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)


class Supervisor:
    """Runs agents and reports them to `post` (thread-safe; the daemon passes its queue's `put`)."""

    def __init__(self, post: Post, *, pool: Pool | None = None, grace_s: float = 5.0) -> None:
        self._post = post
        self._pool = pool
        self._grace_s = grace_s
        self._lock = threading.Lock()
        self._runs: dict[str, _Run] = {}
        # Parsing is pure Python and holds the GIL. Sixteen readers parsing at once would make the
        # daemon's own thread queue behind all of them for the GIL; one parser at a time bounds
        # its wait to a switch interval, and costs no throughput (the GIL serialises them anyway).
        self._parsing = threading.Lock()

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
            os.eventfd_write(run.wake_fd, 1)
        if self._pool:
            self._pool.wake()
        return True

    def record(self, run_id: str) -> RunRecord | None:
        """What the state file should keep of a running run (pid, start time, log, session id)."""
        with self._lock:
            run = self._runs.get(run_id)
            return run.record if run else None

    def _register(self, run_id: str, kind: str, orchestration: str) -> _Run:
        run = _Run(run_id, adapter_for(kind), orchestration)
        with self._lock:
            if run_id in self._runs:
                os.close(run.wake_fd)
                raise ValueError(f"run {run_id} is already supervised")
            self._runs[run_id] = run
        return run

    def _unregister(self, run: _Run) -> bool:
        """Drop the run from the table; False when it was dropped already (its end is reported once)."""
        with self._lock:
            if self._runs.get(run.run_id) is not run:
                return False
            del self._runs[run.run_id]
            os.close(run.wake_fd)
        if self._pool:
            self._pool.release(run.run_id)
        return True

    def _end(self, run: _Run, event: RunFinished | RunInterrupted) -> None:
        if self._unregister(run):
            self._post(event)

    def _finish(self, run: _Run, result: AgentResult) -> None:
        self._end(run, RunFinished(run_id=run.run_id, result=result))

    def _guarded(self, run: _Run, body: Callable[..., None], *args: object) -> None:
        """Run a run's thread body; whatever goes wrong, the run ends with a result and leaves nothing behind."""
        try:
            body(*args)
        except Exception as e:
            if run.record is not None:
                _signal_group(run.record.pid, signal.SIGKILL)
            self._finish(run, AgentResult(ok=False, error_type=ErrorType.PROCESS_FAILED,
                                          stderr_tail=f"specflowd could not supervise the agent: {e!r}"))

    def _launch(self, run: _Run, request: AgentRequest, log: Path) -> None:
        if self._pool and not self._pool.acquire(run.run_id, run.orchestration, run.cancelled):
            self._finish(run, AgentResult(ok=False, error_type=ErrorType.CANCELLED))
            return
        self._spawn(run, request, log)

    def _adopt(self, run: _Run) -> None:
        record = run.record
        assert record is not None
        try:
            follower = Follower(record.log_path, record.log_offset, run.adapter.keys)
        except FileNotFoundError:
            self._end(run, RunInterrupted(run_id=run.run_id, session_id=record.session_id, log_path=record.log_path))
            return
        pidfd: int | None = None
        with contextlib.suppress(ProcessLookupError):
            pidfd = os.pidfd_open(record.pid)
        # Checked after opening: the pidfd then pins this very process, not a later one with its pid.
        if pidfd is not None and not is_alive(record.pid, record.start_time):
            os.close(pidfd)
            pidfd = None
        if pidfd is not None:
            if self._pool:
                self._pool.occupy(record.run_id, record.orchestration)
            self._post(RunStarted(run_id=record.run_id, pid=record.pid, start_time=record.start_time,
                                  log_path=record.log_path, adopted=True))
        self._finish_following(run, follower, None, pidfd)

    def _spawn(self, run: _Run, request: AgentRequest, log: Path) -> None:
        log.parent.mkdir(parents=True, exist_ok=True)
        prompt = log.with_suffix(".prompt.md")
        stderr = log.with_suffix(".stderr")
        # Prompts and transcripts may quote secrets from the project: readable by the user only.
        with open(os.open(prompt, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600), "w") as f:
            f.write(request.prompt)
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        err = os.open(stderr, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        stdin = os.open(prompt if run.adapter.prompt_on_stdin else os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        offset = os.fstat(out).st_size
        follower = Follower(log, offset, run.adapter.keys)  # watching before the child exists: no write is missed
        began = time.monotonic()
        try:
            proc = subprocess.Popen(run.adapter.argv(request, prompt), cwd=request.cwd,
                                    env=child_env(os.environ, request.env), stdin=stdin, stdout=out, stderr=err,
                                    start_new_session=True)
        except OSError as e:
            self._finish(run, AgentResult(ok=False, error_type=ErrorType.PROCESS_FAILED, stderr_tail=str(e)))
            follower.close()
            return
        finally:
            for fd in (out, err, stdin):
                os.close(fd)
        start_time = process_start_time(proc.pid) or 0
        run.record = RunRecord(run_id=run.run_id, kind=request.kind, orchestration=run.orchestration, pid=proc.pid,
                               start_time=start_time, log_path=log, log_offset=offset, stderr_path=stderr,
                               started_at=time.time() - (time.monotonic() - began), timeout_s=request.timeout_s,
                               session_id=request.resume_session_id if not request.fork_session else None)
        self._post(RunStarted(run_id=run.run_id, pid=proc.pid, start_time=start_time, log_path=log))
        self._finish_following(run, follower, proc, os.pidfd_open(proc.pid))

    def _finish_following(self, run: _Run, follower: Follower, proc: subprocess.Popen[bytes] | None,
                          pidfd: int | None) -> None:
        try:
            self._follow_to_the_end(run, follower, proc, pidfd)
        finally:
            # Closing an inotify instance waits for an RCU grace period (often 10-20 ms): only once
            # the run's end has been reported.
            follower.close()
            if pidfd is not None:
                os.close(pidfd)

    def _follow_to_the_end(self, run: _Run, follower: Follower, proc: subprocess.Popen[bytes] | None,
                           pidfd: int | None) -> None:
        record = run.record
        assert record is not None
        transcript, stopped = self._follow(run, record, follower, pidfd)
        # Kill what the agent left behind in its group before reaping: the group id cannot be
        # reused while the leader is a zombie.
        _signal_group(record.pid, signal.SIGKILL)
        code = proc.wait() if proc else None
        transcript = self._consume(run, transcript, follower, to_the_end=True)
        if code is None and stopped is None and transcript.final is None:
            self._end(run, RunInterrupted(run_id=run.run_id, session_id=transcript.session_id or record.session_id,
                                          log_path=record.log_path))
            return
        exit = Exit(code=code, stopped=stopped, stderr_tail=_stderr_tail(record.stderr_path),
                    duration_s=round(time.time() - record.started_at, 3))
        self._finish(run, conclude(run.adapter, transcript, exit, datetime.now(UTC)))

    def _follow(self, run: _Run, record: RunRecord, follower: Follower,
                pidfd: int | None) -> tuple[Transcript, str | None]:
        """Read the stream until the process is gone, enforcing the timeout and cancel."""
        transcript = self._consume(run, Transcript(), follower)
        if pidfd is None:
            return transcript, None
        poll = select.poll()
        for fd in (follower.fileno(), pidfd, run.wake_fd):
            poll.register(fd, select.POLLIN)
        deadline = time.monotonic() + (record.started_at + record.timeout_s - time.time())
        stopped: str | None = None
        kill_at: float | None = None
        while True:
            now = time.monotonic()
            if stopped is None and (run.cancelled.is_set() or now >= deadline):
                stopped = "cancelled" if run.cancelled.is_set() else "timeout"
                _signal_group(record.pid, signal.SIGTERM)
                kill_at = now + self._grace_s
            if kill_at is not None and now >= kill_at:
                _signal_group(record.pid, signal.SIGKILL)
                kill_at = None
            until = kill_at if stopped else deadline
            timeout_ms = None if until is None else max(0, int((until - now) * 1000) + 1)
            ready = {fd for fd, _ in poll.poll(timeout_ms)}
            if run.wake_fd in ready:
                os.eventfd_read(run.wake_fd)
            transcript = self._consume(run, transcript, follower)
            if pidfd in ready:
                return transcript, stopped

    def _consume(self, run: _Run, transcript: Transcript, follower: Follower, *, to_the_end: bool = False) -> Transcript:
        before = (transcript.session_id, transcript.tool, transcript.cost_usd, transcript.task_id)
        with self._parsing:
            lines = follower.read_lines()
            if to_the_end:
                lines.append(follower.rest())
            transcript = fold(transcript, filter(None, map(run.adapter.parse_line, lines)))
        after = (transcript.session_id, transcript.tool, transcript.cost_usd, transcript.task_id)
        # One progress event per read, and only on change: a fast stream must not flood the daemon.
        if after != before:
            session, tool, cost, task = after
            if run.record is not None and session != run.record.session_id:
                run.record = run.record.model_copy(update={"session_id": session})
            self._post(RunProgress(run_id=run.run_id, session_id=session, tool=tool, cost_usd=cost, task_id=task))
        return transcript

