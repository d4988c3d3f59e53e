"""Orchestrations inside the daemon: feeds the pure state machine its events and performs the actions
it returns (agent runs, verify, merges, event commits, timers, state files). Loop thread only; the
agent supervisor and verify threads report back by posting events."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import assert_never

from specflowd.agents.process import is_alive, specflow_env
from specflowd.agents.registry import adapter_for
from specflowd.agents.result import (
    AgentRequest,
    RunFinished,
    RunInterrupted,
    RunProgress,
    RunRecord,
    RunStarted,
)
from specflowd.agents.supervisor import Supervisor, finished_in_log, tail
from specflowd.core import machine
from specflowd.core.costs import own_share, priced, session_end
from specflowd.core.environment import path_with
from specflowd.core.events import (
    Action,
    AdoptAgent,
    AgentFinished,
    AgentSession,
    AgentStarted,
    CommitEvent,
    Event,
    MergeBranch,
    MergeFinished,
    PlanReady,
    RateLimitReset,
    ReadPlan,
    Restarted,
    RunAgent,
    RunResult,
    RunVerify,
    ScheduleWake,
    Start,
    StopAgent,
    StopVerify,
    TasksMarked,
    VerifyFinished,
    WriteState,
)
from specflowd.core.plan import Plan, make_plan
from specflowd.core.prompts import render, task_line
from specflowd.core.state import AgentRun, OrchestrationState
from specflowd.core.tasklist import TaskListError
from specflowd.core.text import visible
from specflowd.core.trailers import event_message
from specflowd.core.vocab import ErrorCode, ErrorType, FeedEvent, MergeOutcome, Purpose, TaskStatus
from specflowd.daemon.loop import Loop
from specflowd.daemon.site import Site
from specflowd.daemon.verify import Verifier
from specflowd.daemon.watch import Rescan
from specflowd.errors import UserError
from specflowd.program import own_program
from specflowd.repo import git, merge, worktrees
from specflowd.repo.evidence import apply_trailers
from specflowd.repo.project import Project, template

log = logging.getLogger("specflowd.runner")


@dataclass(frozen=True)
class MachineEvent:
    """An event for one orchestration's machine, reported by the shell (plan read, verify, merge)."""

    root: Path
    orchestration: str
    event: Event


@dataclass(frozen=True)
class WakeUp:
    """Timer: a usage limit's reset time was reached."""

    root: Path
    orchestration: str


@dataclass(frozen=True)
class RunEnded:
    """An agent run's end, judged once the inbox was read: the marks its commits' hooks dropped
    before it exited are answered first, and dual confirmation sees them."""

    run_id: str
    result: RunResult


class Runner:
    """Runs every orchestration of every served project through `machine.step`."""

    def __init__(self, loop: Loop, supervisor: Supervisor, sites: dict[Path, Site]) -> None:
        self.loop = loop
        self.supervisor = supervisor
        self.sites = sites
        self.verifier = Verifier()
        # Agents reach this very specflowd first on their PATH, and by $SPECFLOW_BIN.
        self.program = own_program()
        # What each run was started with, while it runs: its work branch's tip then, and the
        # request itself (a session that cannot be resumed is started again without it).
        self.launched: dict[str, tuple[AgentRequest, Path, str | None]] = {}
        loop.on(RunStarted, self._on_started)
        loop.on(RunProgress, self._on_progress)
        loop.on(RunFinished, lambda e: self._ended(e.run_id, e.result))
        loop.on(RunInterrupted, self._on_interrupted)
        loop.on(RunEnded, self._on_run_ended)
        loop.on(MachineEvent, lambda e: self._deliver(e.root, e.orchestration, e.event))
        loop.on(WakeUp, lambda e: self._deliver(e.root, e.orchestration, RateLimitReset(now=datetime.now(UTC))))

    # -- requests ----------------------------------------------------------------------------

    def start(self, site: Site, state: OrchestrationState) -> OrchestrationState:
        """Send a new orchestration its Start: the plan of its task list, and its code worktree."""
        plan = self.plan(site, state)
        worktrees.ensure(site.project, state.spec, state.config.orchestration.base_branch)
        prompt = _design_prompt(site, state.spec) if not plan.tasks_total else ""
        return self._step(site, state, Start(now=datetime.now(UTC), plan=plan, design_prompt=prompt,
                                             task_status=self.statuses(site, state)), strict=True)

    def request(self, site: Site, state: OrchestrationState, event: Event) -> OrchestrationState:
        """A person's request, as the machine's event: refused with `conflict` when it does not apply."""
        return self._step(site, state, event, strict=True)

    def marked(self, site: Site, spec: str) -> None:
        """Marks were committed for `spec`: its running orchestration hears the new statuses."""
        for state in list(site.states.values()):
            if state.spec == spec and state.active:
                self._step(site, state, TasksMarked(now=datetime.now(UTC), statuses=self.statuses(site, state)))

    def restarted(self, site: Site) -> None:
        """After a daemon start: every orchestration that was active learns which agents survived."""
        for state in list(site.states.values()):
            live = machine.live_runs(state)
            if not state.active and not live:
                continue
            # A run that ended while no daemon watched but wrote its result is adopted too: its
            # result is read from its log, and its cost counts.
            alive = {r.n: bool(r.pid and r.pid_start_time and is_alive(r.pid, r.pid_start_time))
                          or bool(r.log_file and finished_in_log(state.config.agent.kind, Path(r.log_file)))
                     for r in live}
            self._step(site, state, Restarted(now=datetime.now(UTC), alive=alive))

    # -- reading the task list -----------------------------------------------------------------

    def plan(self, site: Site, state: OrchestrationState) -> Plan:
        snap = site.docs.snapshot()
        path = snap.task_file(state.spec)
        return make_plan(site.docs.document(snap, path), spec=state.spec, file=path,
                         batch_size=state.config.orchestration.batch_size)

    def statuses(self, site: Site, state: OrchestrationState) -> dict[str, TaskStatus]:
        snap = site.docs.snapshot()
        doc = site.docs.document(snap, snap.task_file(state.spec))
        return dict(zip(doc.ids(), doc.statuses(), strict=True))

    # -- stepping ------------------------------------------------------------------------------

    def _deliver(self, root: Path, orchestration: str, event: Event) -> None:
        site = self.sites.get(root)
        state = site.states.get(orchestration) if site else None
        if site is None or state is None:
            log.warning("event for unknown orchestration %s dropped", orchestration)
            return
        self._step(site, state, event)

    def _step(self, site: Site, state: OrchestrationState, event: Event, strict: bool = False) -> OrchestrationState:
        t = machine.step(state, event)
        if t.refused is not None:
            if strict:
                raise UserError(t.refused, code=ErrorCode.CONFLICT, field="orchestration")
            log.info("orchestration %s: %s dropped: %s", state.id, event.type, t.refused)
            return state
        site.states[state.id] = t.state
        for action in t.actions:
            try:
                self._perform(site, t.state, action)
            except Exception as e:  # one failed action must not leave the others undone
                log.exception("orchestration %s: %s failed", state.id, action.type)
                self._failed_action(site, t.state, action, e)
        return site.states[state.id]

    def _post(self, site: Site, state: OrchestrationState, event: Event) -> None:
        self.loop.post(MachineEvent(site.project.root, state.id, event))

    def _failed_action(self, site: Site, state: OrchestrationState, action: Action, error: Exception) -> None:
        """Turn a shell failure into the event the machine waits for, so nothing hangs 'running'."""
        now = datetime.now(UTC)
        reason = f"{type(error).__name__}: {getattr(error, 'message', error)}"
        match action:
            case RunAgent():
                self._post(site, state, AgentFinished(now=now, run_n=action.n, result=RunResult(
                    ok=False, error_type=ErrorType.PROCESS_FAILED, error=reason)))
            case RunVerify():
                self._post(site, state, VerifyFinished(now=now, exit_code=127, output_tail=reason))
            case MergeBranch():
                self._post(site, state, MergeFinished(now=now, outcome=MergeOutcome.FAILED, detail=reason))
            case WriteState() | CommitEvent() | StopAgent() | AdoptAgent() | StopVerify() | ReadPlan() | ScheduleWake():
                pass  # logged; the machine waits for nothing from these
            case _:
                assert_never(action)

    def _perform(self, site: Site, state: OrchestrationState, action: Action) -> None:
        root = site.project.root
        match action:
            case WriteState():
                site.save(site.states[state.id])
                if site.fleet is not None:
                    site.fleet.saved(site.states[state.id])
            case CommitEvent():
                message = event_message(action.subject, action.event, action.trailers)
                site.docs.commit(lambda snap: ([], message), allow_empty=True)
                log.info("%s", visible(action.subject))  # the journal tells what the feed tells
            case RunAgent():
                self._run_agent(site, state, action)
            case StopAgent():
                if not self.supervisor.cancel(_run_id(state.id, action.n)):
                    self._post(site, state, AgentFinished(now=datetime.now(UTC), run_n=action.n, result=RunResult(
                        ok=False, error_type=ErrorType.CANCELLED, error=action.reason)))
            case AdoptAgent():
                self._adopt(site, state, action)
            case RunVerify():
                cwd = worktrees.ensure(site.project, state.spec, state.config.orchestration.base_branch)
                self.verifier.run((root, state.id), cwd, action.command, action.timeout_s, lambda code, out: self._post(
                    site, state, VerifyFinished(now=datetime.now(UTC), exit_code=code, output_tail=out)))
            case StopVerify():
                self.verifier.stop((root, state.id))
            case MergeBranch():
                self._merge(site, state, action)
            case ReadPlan():
                self._post(site, state, PlanReady(now=datetime.now(UTC), plan=self.plan(site, state),
                                                  task_status=self.statuses(site, state)))
            case ScheduleWake():
                delay = max(0.0, (action.at - datetime.now(action.at.tzinfo)).total_seconds())
                self.loop.later(delay, WakeUp(root, state.id))
            case _:
                assert_never(action)

    # -- agents ----------------------------------------------------------------------------------

    def _run_agent(self, site: Site, state: OrchestrationState, action: RunAgent) -> None:
        project = site.project
        cfg = state.config.agent
        cwd = worktrees.ensure(project, state.spec, state.config.orchestration.base_branch)
        worktrees.lock(project, state.spec, f"specflowd: agent run {action.n} of {state.id}")
        values = dict(action.prompt.values)
        # The machine knows task ids; the prompt shows each task as its line of the task list, with
        # the exact command that marks it.
        values["tasks"] = _task_lines(site, state.spec, action.task_ids) if action.task_ids else "none"
        text = render(replace(action.prompt, values=values),
                      template(project, "prompts", f"{action.prompt.template}.md"), docs_worktree=str(site.docs.worktree))
        git_dir, common_dir = git.git_dirs(cwd)
        heal = action.purpose == Purpose.HEAL
        request = AgentRequest(
            kind=cfg.kind, command=cfg.command, prompt=text, cwd=cwd,
            model=(state.config.heal.model if heal and state.config.heal.model else cfg.model) or None,
            fallback_model=cfg.fallback_model or None, allowed_tools=cfg.allowed_tools,
            disallowed_tools=cfg.disallowed_tools, max_turns=state.config.heal.max_turns if heal else cfg.max_turns,
            max_budget_usd=action.max_budget_usd if action.max_budget_usd > 0 else None,
            timeout_s=cfg.timeout_s, resume_session_id=action.resume_session, fork_session=action.fork,
            permission_mode=cfg.permission_mode, verify_command=state.config.orchestration.verify_command,
            read_dirs=[site.docs.worktree], write_dirs=[common_dir, git_dir, project.requests],
            env_pass=cfg.env_pass, env=self._agent_env(project, state, action, cwd))
        run_id = _run_id(state.id, action.n)
        log_path = project.log_file(state.id, action.n, action.phase.value)
        tip = git.read_ref(project.common_dir, f"refs/heads/{worktrees.work_branch(state.spec)}")
        self.launched[run_id] = (request, log_path, tip)
        self.supervisor.start(run_id, request, log_path, orchestration=state.id)

    def _agent_env(self, project: Project, state: OrchestrationState, action: RunAgent, cwd: Path) -> dict[str, str]:
        """What specflowd sets for an agent, over what passes of its own environment: SPEC §9's
        variables, this specflowd first on PATH and as $SPECFLOW_BIN, and the repository's git
        identity (some CLIs hide the user's git configuration from the commands they run)."""
        env = specflow_env(project=project.root, spec=state.spec, orchestration=state.id, tasks=action.task_ids,
                           inbox=project.requests)
        env.update(git.identity(cwd))
        env["PATH"] = path_with(str(self.program.parent) if self.program else None, os.environ.get("PATH"))
        if self.program:
            env["SPECFLOW_BIN"] = str(self.program)
        return env

    def _adopt(self, site: Site, state: OrchestrationState, action: AdoptAgent) -> None:
        run = _agent_run(state, action.n)
        if run is None or not run.pid or not run.log_file:
            raise ValueError(f"run {action.n} has no process to adopt")
        log_file = Path(run.log_file)
        started = run.started_at.timestamp() if run.started_at else 0.0
        self.supervisor.adopt(RunRecord(
            run_id=_run_id(state.id, action.n), kind=state.config.agent.kind, orchestration=state.id, pid=run.pid,
            start_time=run.pid_start_time or 0, log_path=log_file, stderr_path=log_file.with_suffix(".stderr"),
            started_at=started, timeout_s=state.config.agent.timeout_s, session_id=run.session_id))

    def _site_run(self, run_id: str) -> tuple[Site, OrchestrationState, int] | None:
        orchestration, _, n = run_id.rpartition("-")
        for site in self.sites.values():
            state = site.states.get(orchestration)
            if state is not None:
                return site, state, int(n)
        log.warning("agent event for unknown run %s", run_id)
        return None

    def _on_started(self, e: RunStarted) -> None:
        found = self._site_run(e.run_id)
        if found is not None:
            site, state, n = found
            launched = self.launched.get(e.run_id)
            self._step(site, state, AgentStarted(now=datetime.now(UTC), run_n=n, pid=e.pid,
                                                 pid_start_time=e.start_time, log_file=str(e.log_path),
                                                 base_commit=launched[2] if launched else None))

    def _on_progress(self, e: RunProgress) -> None:
        log.debug("run %s: tool %s, task %s, cost %s", e.run_id, e.tool, e.task_id, e.cost_usd)
        found = self._site_run(e.run_id)
        if found is None or e.session_id is None:
            return
        site, state, n = found
        run = _agent_run(state, n)
        if run is not None and run.session_id != e.session_id:
            self._step(site, state, AgentSession(now=datetime.now(UTC), run_n=n, session_id=e.session_id))

    def _on_interrupted(self, e: RunInterrupted) -> None:
        self._ended(e.run_id, RunResult(ok=False, error_type=ErrorType.PROCESS_FAILED, session_id=e.session_id,
                                        error="the agent ended while no daemon watched it, without a result",
                                        transcript_tail=tail(e.log_path)))

    def _ended(self, run_id: str, result: RunResult) -> None:
        """A run ended: free its worktree, read the inbox, then judge the run (see `RunEnded`)."""
        found = self._site_run(run_id)
        if found is None:
            return
        site, state, n = found
        launched = self.launched.pop(run_id, None)
        if launched and result.error_type == ErrorType.INVALID_SESSION and launched[0].resume_session_id:
            # The session was never saved, or is gone: the same prompt in a fresh session, rather
            # than a failed attempt.
            request, log_path, _ = launched
            log.info("run %s: session %s cannot be resumed; starting a fresh session", run_id,
                     request.resume_session_id)
            fresh = request.model_copy(update={"resume_session_id": None, "fork_session": False})
            self.launched[run_id] = (fresh, log_path, launched[2])
            self.supervisor.start(run_id, fresh, log_path, orchestration=state.id)
            return
        worktrees.unlock(site.project, state.spec)
        self.loop.post(Rescan())
        if adapter_for(state.config.agent.kind).session_totals:
            run = _agent_run(state, n)
            continued = launched[0].resume_session_id if launched else run.resumed_from if run else None
            result = own_share(result, session_end(state, continued, n))
        self.loop.post(RunEnded(run_id, priced(result, state.config.agent)))

    def _on_run_ended(self, e: RunEnded) -> None:
        found = self._site_run(e.run_id)
        if found is None:
            return
        site, state, n = found
        statuses = self.statuses(site, state)
        run = _agent_run(state, n)
        since = (run.base_commit if run else None) or state.config.orchestration.base_branch
        try:
            if apply_trailers(site.project, site.docs, state.spec, since, worktrees.work_branch(state.spec),
                              statuses=statuses, orchestration=state.id):
                statuses = self.statuses(site, state)
        except (UserError, git.GitError) as err:
            log.warning("orchestration %s: the trailers of run %d's commits could not be read: %s", state.id, n,
                        getattr(err, "message", err))
        self._step(site, state, AgentFinished(now=datetime.now(UTC), run_n=n, result=e.result, task_status=statuses))

    # -- merge ------------------------------------------------------------------------------------

    def _merge(self, site: Site, state: OrchestrationState, action: MergeBranch) -> None:
        message = event_message(f"Merge {action.branch} (spec {state.spec})", FeedEvent.MERGE_COMMIT,
                                {"Spec": state.spec, "Orchestration": state.id})
        if site.fleet is not None:  # many machines: merged into the remote's base branch, through the sync
            site.fleet.merge(state, action, message)
            return
        out = merge.merge(site.project, action.branch, action.base_branch, message)
        outcome = MergeOutcome.MERGED if out.outcome == MergeOutcome.UP_TO_DATE else out.outcome
        if outcome == MergeOutcome.MERGED:
            worktrees.remove_if_clean(site.project, state.spec)
        self._post(site, state, MergeFinished(now=datetime.now(UTC), outcome=outcome, files=out.files,
                                              detail=out.detail))


def _run_id(orchestration: str, n: int) -> str:
    return f"{orchestration}-{n}"


def _agent_run(state: OrchestrationState, n: int) -> AgentRun | None:
    return next((r for r in state.runs if r.n == n), None)


def _task_lines(site: Site, spec: str, task_ids: list[str]) -> str:
    """The batch's tasks as their lines in the task list (box and text), each with its mark command."""
    snap = site.docs.snapshot()
    doc = site.docs.document(snap, snap.task_file(spec))
    lines = []
    for task_id in task_ids:
        try:
            task = doc.find(task_id)
        except TaskListError:
            lines.append(task_line(task_id, " ", task_id))
            continue
        lines.append(task_line(task_id, task.box, task.description.strip()))
    return "\n".join(lines)


def _design_prompt(site: Site, spec: str) -> str:
    text = site.docs.snapshot().read(f"specs/{spec}/requirements.md")
    return text.decode("utf-8", "replace") if text else ""

