"""Orchestrations inside the daemon: feeds the pure state machine its events and performs the actions
it returns (agent runs, verify, merges, event commits, timers, state files). Loop thread only; the
agent supervisor and verify threads report back by posting events."""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from specflowd.agents.process import child_env, is_alive, specflow_env
from specflowd.agents.result import (
    AgentRequest,
    AgentResult,
    RunFinished,
    RunInterrupted,
    RunProgress,
    RunRecord,
    RunStarted,
)
from specflowd.agents.supervisor import Supervisor, log_path
from specflowd.core import machine, prompts
from specflowd.core.plan import Plan, make_plan
from specflowd.core.state import AgentRun, OrchestrationState, utcnow
from specflowd.core.trailers import event_message
from specflowd.errors import UserError
from specflowd.repo import merge, worktrees

if TYPE_CHECKING:
    from specflowd.daemon.loop import Loop
    from specflowd.daemon.requests import Served

log = logging.getLogger("specflowd.runner")
TAIL = 2000


@dataclass(frozen=True)
class Feed:
    """A machine event for one orchestration, produced by the shell (plan read, verify, merge)."""

    root: Path
    orchestration: str
    event: Any


@dataclass(frozen=True)
class WakeUp:
    """Timer: a usage limit's reset time was reached."""

    root: Path
    orchestration: str


class Runner:
    """Runs every orchestration of every served project through `machine.step`."""

    def __init__(self, loop: Loop, supervisor: Supervisor, sites: dict[Path, Served],
                 drain: Callable[[], None] = lambda: None) -> None:
        self.loop = loop
        # Answers the requests waiting in the inboxes. Called before a finished run is judged:
        # its commits' hooks dropped their mark requests before it exited, and dual confirmation
        # must see those marks, whether or not their inotify events were handled yet.
        self.drain = drain
        self.supervisor = supervisor
        self.sites = sites
        self._verifies: dict[tuple[Path, str], subprocess.Popen[bytes]] = {}
        loop.on(RunStarted, self._on_started)
        loop.on(RunProgress, lambda e: None)  # live progress: the supervisor's log has it all
        loop.on(RunFinished, self._on_finished)
        loop.on(RunInterrupted, self._on_interrupted)
        loop.on(Feed, lambda e: self._feed(e.root, e.orchestration, e.event))
        loop.on(WakeUp, lambda e: self._feed(e.root, e.orchestration, machine.RateLimitReset(now=utcnow())))

    # -- requests ----------------------------------------------------------------------------

    def start(self, served: Served, state: OrchestrationState) -> OrchestrationState:
        """Send a new orchestration its Start: the plan of its task list, and its code worktree."""
        plan = self.plan(served, state)
        worktrees.ensure(served.project, state.spec, state.config.orchestration.base_branch)
        prompt = _design_prompt(served, state.spec) if not plan.tasks_total else ""
        return self._step(served, state, machine.Start(now=utcnow(), plan=plan, design_prompt=prompt), strict=True)

    def request(self, served: Served, state: OrchestrationState, action: str, choice: str | None) -> OrchestrationState:
        now = utcnow()
        event: Any = {
            "pause": lambda: machine.Pause(now=now),
            "resume": lambda: machine.Resume(now=now),
            "cancel": lambda: machine.Cancel(now=now),
            "merge": lambda: machine.Merge(now=now),
            "recover": lambda: machine.Recover(now=now, choice=choice),
        }[action]()
        return self._step(served, state, event, strict=True)

    def marked(self, served: Served, spec: str) -> None:
        """Marks were committed for `spec`: its running orchestration hears the new statuses."""
        for state in list(served.states.values()):
            if state.spec == spec and state.active:
                self._step(served, state, machine.TasksMarked(now=utcnow(), statuses=self.statuses(served, state)))

    def restarted(self, served: Served) -> None:
        """After a daemon start: every orchestration that was active learns which agents survived."""
        for state in list(served.states.values()):
            live = machine.live_runs(state)
            if not state.active and not live:
                continue
            alive = {r.n: bool(r.pid and r.pid_start_time and is_alive(r.pid, r.pid_start_time)) for r in live}
            self._step(served, state, machine.Restarted(now=utcnow(), alive=alive))

    # -- reading the task list -----------------------------------------------------------------

    def plan(self, served: Served, state: OrchestrationState) -> Plan:
        snap = served.docs.snapshot()
        path = snap.task_file(state.spec)
        return make_plan(served.docs.document(snap, path), spec=state.spec, file=path,
                         batch_size=state.config.orchestration.batch_size)

    def statuses(self, served: Served, state: OrchestrationState) -> dict[str, str]:
        snap = served.docs.snapshot()
        doc = served.docs.document(snap, snap.task_file(state.spec))
        return {t: s.value for t, s in zip(doc.ids(), doc.statuses(), strict=True)}

    # -- stepping ------------------------------------------------------------------------------

    def _feed(self, root: Path, orchestration: str, event: Any) -> None:
        served = self.sites.get(root)
        state = served.states.get(orchestration) if served else None
        if served is None or state is None:
            log.warning("event for unknown orchestration %s dropped", orchestration)
            return
        self._step(served, state, event)

    def _step(self, served: Served, state: OrchestrationState, event: Any, strict: bool = False) -> OrchestrationState:
        t = machine.step(state, event)
        if t.refused is not None:
            if strict:
                raise UserError(t.refused, code="conflict", field="orchestration")
            log.info("orchestration %s: %s dropped: %s", state.id, event.type, t.refused)
            return state
        served.states[state.id] = t.state
        for action in t.actions:
            try:
                self._perform(served, t.state, action)
            except Exception as e:  # one failed action must not leave the others undone
                log.exception("orchestration %s: %s failed", state.id, action.type)
                self._failed_action(served, t.state, action, e)
        return served.states[state.id]

    def _failed_action(self, served: Served, state: OrchestrationState, action: Any, error: Exception) -> None:
        """Turn a shell failure into the event the machine waits for, so nothing hangs 'running'."""
        now = utcnow()
        reason = f"{type(error).__name__}: {getattr(error, 'message', error)}"
        if action.type == "run_agent":
            self.loop.post(Feed(served.project.root, state.id, machine.AgentFinished(
                now=now, run_n=action.n, result=machine.RunResult(ok=False, error_type="process_failed", error=reason))))
        elif action.type == "run_verify":
            self.loop.post(Feed(served.project.root, state.id, machine.VerifyFinished(
                now=now, exit_code=127, output_tail=reason)))
        elif action.type == "merge_branch":
            self.loop.post(Feed(served.project.root, state.id, machine.MergeFinished(
                now=now, outcome="failed", detail=reason)))

    def _perform(self, served: Served, state: OrchestrationState, action: Any) -> None:
        root = served.project.root
        kind = action.type
        if kind == "write_state":
            served.save(served.states[state.id])
        elif kind == "commit_event":
            message = event_message(action.subject, action.event, action.trailers)
            served.docs.commit(lambda snap: ([], message), allow_empty=True)
        elif kind == "run_agent":
            self._run_agent(served, state, action)
        elif kind == "stop_agent":
            if not self.supervisor.cancel(_run_id(state.id, action.n)):
                self.loop.post(Feed(root, state.id, machine.AgentFinished(
                    now=utcnow(), run_n=action.n, result=machine.RunResult(ok=False, error_type="cancelled"))))
        elif kind == "adopt_agent":
            self._adopt(served, state, action)
        elif kind == "run_verify":
            self._run_verify(served, state, action)
        elif kind == "stop_verify":
            proc = self._verifies.get((root, state.id))
            if proc is not None:
                _kill_group(proc)
        elif kind == "merge_branch":
            self._merge(served, state, action)
        elif kind == "read_plan":
            self.loop.post(Feed(root, state.id, machine.PlanReady(now=utcnow(), plan=self.plan(served, state))))
        elif kind == "schedule_wake":
            delay = max(0.0, (action.at - datetime.now(action.at.tzinfo)).total_seconds())
            self.loop.later(delay, WakeUp(root, state.id))
        else:
            raise ValueError(f"unknown action {kind}")

    # -- agents ----------------------------------------------------------------------------------

    def _run_agent(self, served: Served, state: OrchestrationState, action: machine.RunAgent) -> None:
        project = served.project
        cfg = state.config.agent
        cwd = worktrees.ensure(project, state.spec, state.config.orchestration.base_branch)
        worktrees.lock(project, state.spec, f"specflowd: agent run {action.n} of {state.id}")
        values = dict(action.prompt.values)
        # The machine knows task ids; the prompt shows each task as its line of the task list.
        values["tasks"] = _task_lines(served, state.spec, action.task_ids) if action.task_ids else "none"
        override = project.root / prompts.OVERRIDE_DIR / f"{action.prompt.template}.md"
        text = prompts.render(action.prompt.model_copy(update={"values": values}), docs_worktree=str(served.docs.worktree),
                              template=override.read_text(encoding="utf-8") if override.is_file() else None)
        env = specflow_env(project=project.root, spec=state.spec, orchestration=state.id, tasks=action.task_ids,
                           inbox=project.requests)
        request = AgentRequest(
            kind=cfg.kind, command=cfg.command, prompt=text, cwd=cwd, model=cfg.model or None,
            fallback_model=cfg.fallback_model or None, allowed_tools=cfg.allowed_tools,
            disallowed_tools=cfg.disallowed_tools, max_turns=cfg.max_turns,
            max_budget_usd=action.max_budget_usd if action.max_budget_usd > 0 else None,
            timeout_s=cfg.timeout_s, resume_session_id=action.resume_session, fork_session=action.fork, env=env)
        self.supervisor.start(_run_id(state.id, action.n), request,
                              log_path(project.root, state.id, action.n, action.phase.value), orchestration=state.id)

    def _adopt(self, served: Served, state: OrchestrationState, action: machine.AdoptAgent) -> None:
        run = _agent_run(state, action.n)
        if run is None or not run.pid or not run.log_file:
            raise ValueError(f"run {action.n} has no process to adopt")
        log_file = Path(run.log_file)
        started = run.started_at.timestamp() if run.started_at else 0.0
        self.supervisor.adopt(RunRecord(
            run_id=_run_id(state.id, action.n), kind=state.config.agent.kind, orchestration=state.id, pid=run.pid,
            start_time=run.pid_start_time or 0, log_path=log_file, stderr_path=log_file.with_suffix(".stderr"),
            started_at=started, timeout_s=state.config.agent.timeout_s, session_id=run.session_id))

    def _served_run(self, run_id: str) -> tuple[Served, OrchestrationState, int] | None:
        orchestration, _, n = run_id.rpartition("-")
        for served in self.sites.values():
            state = served.states.get(orchestration)
            if state is not None:
                return served, state, int(n)
        log.warning("agent event for unknown run %s", run_id)
        return None

    def _on_started(self, e: RunStarted) -> None:
        found = self._served_run(e.run_id)
        if found is None:
            return
        served, state, n = found
        self._step(served, state, machine.AgentStarted(now=utcnow(), run_n=n, pid=e.pid, pid_start_time=e.start_time,
                                                       log_file=str(e.log_path)))

    def _on_finished(self, e: RunFinished) -> None:
        ended = self._ended(e.run_id)
        if ended is not None:
            served, state, n = ended
            self._step(served, state, machine.AgentFinished(
                now=utcnow(), run_n=n, result=_result(e.result, _agent_run(state, n)),
                task_status=self.statuses(served, state)))

    def _on_interrupted(self, e: RunInterrupted) -> None:
        ended = self._ended(e.run_id)
        if ended is not None:
            served, state, n = ended
            result = machine.RunResult(ok=False, error_type="process_failed", session_id=e.session_id,
                                       error="the agent ended while no daemon watched it, without a result",
                                       transcript_tail=_tail(e.log_path))
            self._step(served, state, machine.AgentFinished(now=utcnow(), run_n=n, result=result,
                                                            task_status=self.statuses(served, state)))

    def _ended(self, run_id: str) -> tuple[Served, OrchestrationState, int] | None:
        """A run ended: free its worktree, and answer the waiting requests first (see `drain`)."""
        found = self._served_run(run_id)
        if found is None:
            return None
        served, state, n = found
        worktrees.unlock(served.project, state.spec)
        self.drain()
        return served, served.states[state.id], n

    # -- verify and merge ---------------------------------------------------------------------

    def _run_verify(self, served: Served, state: OrchestrationState, action: machine.RunVerify) -> None:
        root = served.project.root
        cwd = worktrees.ensure(served.project, state.spec, state.config.orchestration.base_branch)
        # The project's own command, split like a shell would but run without one: use
        # `sh -c '…'` in verify_command for pipes and `&&`.
        proc = subprocess.Popen(shlex.split(action.command), cwd=cwd, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                env=child_env(os.environ, {}))
        self._verifies[(root, state.id)] = proc

        def wait() -> None:
            try:
                out, _ = proc.communicate(timeout=action.timeout_s)
                code = proc.returncode
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                out, _ = proc.communicate()
                code = 124
                out += f"\n[specflowd: verify stopped after {action.timeout_s} s]".encode()
            self.loop.post(Feed(root, state.id, machine.VerifyFinished(
                now=utcnow(), exit_code=code, output_tail=out.decode("utf-8", "replace")[-TAIL:])))

        threading.Thread(target=wait, name=f"verify-{state.id}", daemon=True).start()

    def _merge(self, served: Served, state: OrchestrationState, action: machine.MergeBranch) -> None:
        message = event_message(f"Merge {action.branch} (spec {state.spec})", "merge",
                                {"Spec": state.spec, "Orchestration": state.id})
        out = merge.merge(served.project, action.branch, action.base_branch, message)
        outcome = "merged" if out.outcome in ("merged", "up_to_date") else out.outcome
        if outcome == "merged":
            worktrees.remove_if_clean(served.project, state.spec)
        self.loop.post(Feed(served.project.root, state.id, machine.MergeFinished(
            now=utcnow(), outcome=outcome, files=out.files, detail=out.detail)))


def _run_id(orchestration: str, n: int) -> str:
    return f"{orchestration}-{n}"


def _agent_run(state: OrchestrationState, n: int) -> AgentRun | None:
    return next((r for r in state.runs if r.n == n), None)


def _tail(path: Path | str | None) -> str:
    if not path:
        return ""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - TAIL))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _result(r: AgentResult, run: AgentRun | None) -> machine.RunResult:
    return machine.RunResult(
        ok=r.ok, error_type=r.error_type.value if r.error_type else None,
        error=None if r.ok else (r.text or r.stderr_tail or (r.error_type.value if r.error_type else "failed"))[-TAIL:],
        exit_code=r.exit_code, session_id=r.session_id, cost_usd=r.cost_usd, turns=r.turns, duration_s=r.duration_s,
        text=r.text[-TAIL:], stderr_tail=r.stderr_tail[-TAIL:], transcript_tail=_tail(run.log_file if run else None),
        resets_at=r.rate_limit_resets_at)


def _task_lines(served: Served, spec: str, task_ids: list[str]) -> str:
    """The batch's tasks as their lines in the task list: id, box and title, for the prompt."""
    snap = served.docs.snapshot()
    doc = served.docs.document(snap, snap.task_file(spec))
    lines = []
    for task_id in task_ids:
        try:
            task = doc.find(task_id)
        except ValueError:
            lines.append(f"- [ ] {task_id}")
            continue
        lines.append(f"- [{task.box}] {task.description.strip()}")
    return "\n".join(lines)


def _design_prompt(served: Served, spec: str) -> str:
    text = served.docs.snapshot().read(f"specs/{spec}/requirements.md")
    return text.decode("utf-8", "replace") if text else ""


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)

