"""The orchestration state machine (SPEC §6): `step(state, event)` gives the new state and the
actions the shell performs, or a refusal. Pure: no I/O, and the time comes in the event.

The shell's part, per action: `RunAgent` start (or queue) an agent run and answer with
`AgentStarted`, then `AgentFinished` (with the task list's statuses re-read after the run);
`StopAgent` stop that run (its `AgentFinished` still follows, with `cancelled`); `AdoptAgent`
follow a still-running agent's log after a restart; `RunVerify` / `StopVerify`;
`MergeBranch` merge (fast-forward / merge-tree / compare-and-swap) and answer `MergeFinished`;
`ReadPlan` re-read the task list and answer `PlanReady`; `CommitEvent` commit on the design-docs
branch; `ScheduleWake` send `RateLimitReset` at that time; `WriteState` write the state file.
A refusal changes nothing: a request gets `conflict` with the message, a stale result is dropped.

Feed events (`Specflow-Event`, each also a line of the decision log): started, phase, skipped,
batch-started, followup-started, heal-started, batch-completed, batch-failed, batch-skipped,
verify-passed, verify-failed, budget-stopped, rate-limited, needs-attention, paused, resumed,
recovered, restarted, cancelled, waiting-merge, merge-requested, merged, completed, failed.
`Specflow-Cost-USD` is the orchestration's total so far.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from specflowd.core import tasklist as progress
from specflowd.core.budget import allowance, describe_stop
from specflowd.core.plan import Plan
from specflowd.core.prompts import PromptRequest
from specflowd.core.state import (
    TERMINAL,
    AgentRun,
    Awaiting,
    BatchState,
    BatchStatus,
    Decision,
    OrchestrationState,
    PauseReason,
    Phase,
    Status,
    Work,
    WorkKind,
)

TAIL_CHARS = 2000
BACKOFF_FIRST_S = 60
BACKOFF_MAX_S = 3600
FINISHED_VALUES = frozenset(s.value for s in progress.FINISHED)
MERGE_REQUESTED = "requested"  # a merge Work's purpose once someone asked for it: no waiting_merge


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- events: what happened, as the shell reports it ----

class _Event(_Data):
    now: datetime


class Start(_Event):
    type: Literal["start"] = "start"
    plan: Plan  # the task list's plan at start; no tasks means the design phase writes them
    design_prompt: str = ""


class AgentStarted(_Event):
    type: Literal["agent_started"] = "agent_started"
    run_n: int
    pid: int | None = None
    pid_start_time: int | None = None
    log_file: str | None = None
    session_id: str | None = None


ErrorType = Literal["timeout", "budget_exceeded", "max_turns", "process_failed", "invalid_session",
                    "rate_limited", "cancelled", "bad_output"]


class RunResult(_Data):
    """An agent run's outcome, as the agent layer reports it."""

    ok: bool
    error_type: ErrorType | None = None
    error: str | None = None
    exit_code: int | None = None
    session_id: str | None = None
    cost_usd: float = 0.0
    turns: int | None = None
    duration_s: float | None = None
    text: str = ""
    stderr_tail: str = ""
    transcript_tail: str = ""
    resets_at: datetime | None = None  # when a usage limit lifts, if the CLI said


class AgentFinished(_Event):
    type: Literal["agent_finished"] = "agent_finished"
    run_n: int
    result: RunResult
    # The task list re-read once the run's marks were committed: dual confirmation needs them.
    task_status: dict[str, str] | None = None


class TasksMarked(_Event):
    type: Literal["tasks_marked"] = "tasks_marked"
    statuses: dict[str, str]


class PlanReady(_Event):
    type: Literal["plan_ready"] = "plan_ready"
    plan: Plan


class VerifyFinished(_Event):
    type: Literal["verify_finished"] = "verify_finished"
    exit_code: int
    output_tail: str = ""


class MergeFinished(_Event):
    type: Literal["merge_finished"] = "merge_finished"
    outcome: Literal["merged", "conflict", "dirty", "failed"]
    files: list[str] = Field(default_factory=list)
    detail: str = ""


class Pause(_Event):
    type: Literal["pause"] = "pause"
    stop_run: bool = False  # stop the running agent now, rather than let it finish


class Resume(_Event):
    type: Literal["resume"] = "resume"


class Cancel(_Event):
    type: Literal["cancel"] = "cancel"


class Merge(_Event):
    type: Literal["merge"] = "merge"


class Recover(_Event):
    type: Literal["recover"] = "recover"
    choice: Literal["retry", "skip", "abort"]


class RateLimitReset(_Event):
    type: Literal["rate_limit_reset"] = "rate_limit_reset"


class Restarted(_Event):
    type: Literal["restarted"] = "restarted"
    alive: dict[int, bool] = Field(default_factory=dict)  # run n -> same pid and start time still there


Event = Annotated[
    Start | AgentStarted | AgentFinished | TasksMarked | PlanReady | VerifyFinished | MergeFinished | Pause
    | Resume | Cancel | Merge | Recover | RateLimitReset | Restarted,
    Field(discriminator="type"),
]


# ---- actions: what the shell is asked to do ----

class RunAgent(_Data):
    type: Literal["run_agent"] = "run_agent"
    n: int
    phase: Phase
    batch: int | None
    purpose: str
    prompt: PromptRequest
    resume_session: str | None
    fork: bool
    max_budget_usd: float
    task_ids: list[str]


class StopAgent(_Data):
    type: Literal["stop_agent"] = "stop_agent"
    n: int
    reason: str


class AdoptAgent(_Data):
    type: Literal["adopt_agent"] = "adopt_agent"
    n: int
    pid: int | None
    log_file: str | None


class RunVerify(_Data):
    type: Literal["run_verify"] = "run_verify"
    command: str
    timeout_s: int


class StopVerify(_Data):
    type: Literal["stop_verify"] = "stop_verify"
    reason: str


class MergeBranch(_Data):
    type: Literal["merge_branch"] = "merge_branch"
    branch: str
    base_branch: str
    recheck: bool = False  # may be half done (restart): an already merged branch counts as merged


class ReadPlan(_Data):
    type: Literal["read_plan"] = "read_plan"
    spec: str


class CommitEvent(_Data):
    type: Literal["commit_event"] = "commit_event"
    subject: str
    event: str
    trailers: dict[str, str]  # keys without the `Specflow-` prefix, as trailers.event_message takes


class ScheduleWake(_Data):
    type: Literal["schedule_wake"] = "schedule_wake"
    at: datetime


class WriteState(_Data):
    type: Literal["write_state"] = "write_state"


Action = Annotated[
    RunAgent | StopAgent | AdoptAgent | RunVerify | StopVerify | MergeBranch | ReadPlan | CommitEvent
    | ScheduleWake | WriteState,
    Field(discriminator="type"),
]


class Transition(_Data):
    state: OrchestrationState
    actions: list[Action] = Field(default_factory=list)
    refused: str | None = None


def step(state: OrchestrationState, event: Event) -> Transition:
    """The state after `event`, and what to do about it; the input state is never changed."""
    if state.started_at is None and event.type != "start":
        return Transition(state=state, refused=f"orchestration {state.id} has not started")
    m = _Machine(state.model_copy(deep=True), event.now)
    refused = getattr(m, f"on_{event.type}")(event)
    if refused is not None:
        return Transition(state=state, refused=refused)
    m.s.updated_at = event.now
    m.out.append(WriteState())
    return Transition(state=m.s, actions=m.out)


def live_runs(state: OrchestrationState) -> list[AgentRun]:
    """Runs started or queued and not yet finished."""
    return [r for r in state.runs if r.ended_at is None]


def in_flight(state: OrchestrationState) -> bool:
    """Something the shell runs for this orchestration will report back."""
    return state.awaiting is not None or bool(live_runs(state))


def batch_label(state: OrchestrationState, b: BatchState) -> str:
    return f"{b.index}/{len(state.batches)} {b.name}"


def remaining_tasks(state: OrchestrationState, b: BatchState) -> list[str]:
    return [t for t in b.task_ids if state.task_status.get(t, progress.Status.PENDING.value) not in FINISHED_VALUES]


def backoff_s(hits: int) -> int:
    """Wait after the n-th usage limit in a row with no reset time: 60 s doubling, at most an hour."""
    return min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** max(0, hits - 1))


class _Machine:
    """One step's working copy, the time, and the actions gathered so far."""

    def __init__(self, s: OrchestrationState, now: datetime) -> None:
        self.s = s
        self.now = now
        self.out: list[Action] = []

    # ---- the record ----

    def record(self, event: str, what: str, batch: BatchState | None = None, **extra: str) -> None:
        """An event commit on the design-docs branch, and the same line in the decision log."""
        s = self.s
        trailers = {"Spec": s.spec, "Orchestration": s.id, "Phase": s.phase.value}
        if batch is not None:
            trailers["Batch"] = batch_label(s, batch)
        if s.total_cost_usd > 0:
            trailers["Cost-USD"] = f"{s.total_cost_usd:.4f}"
        trailers.update(extra)
        self.out.append(CommitEvent(subject=f"orchestration {s.id}: {what}", event=event, trailers=trailers))
        s.decisions.append(Decision(at=self.now, decision=what, reason=event))

    def set_status(self, status: Status) -> None:
        self.s.status = status
        if status != Status.PAUSED:
            self.s.pause_reason = None
            self.s.waiting_until = None

    def attention(self, reason: str, retry: Work, event: str = "needs-attention") -> None:
        """Stop and wait for `recover`; `retry` is what a retry starts."""
        self.set_status(Status.NEEDS_ATTENTION)
        self.s.error = reason
        self.s.next_work = retry
        self.record(event, f"needs attention: {reason}", self.current())

    def enter(self, phase: Phase) -> None:
        self.s.phase = phase
        self.record("phase", f"phase {phase.value}")

    def current(self) -> BatchState | None:
        s = self.s
        return s.batches[s.current_batch - 1] if s.phase == Phase.IMPLEMENT and s.current_batch else None

    # ---- going on ----

    def go(self, work: Work) -> None:
        """Start `work` now if the orchestration is running, else keep it for when it goes on."""
        s = self.s
        if s.status != Status.RUNNING:
            s.next_work = work
            return
        s.next_work = None
        if work.kind == WorkKind.AGENT:
            self.start_agent(work)
        elif work.kind == WorkKind.PLAN:
            s.awaiting = Awaiting.PLAN
            self.out.append(ReadPlan(spec=s.spec))
        elif work.kind == WorkKind.VERIFY:
            self.start_verify()
        elif s.config.orchestration.auto_merge or work.purpose == MERGE_REQUESTED:
            self.start_merge()
        else:
            self.set_status(Status.WAITING_MERGE)
            self.record("waiting-merge", "waiting for a merge request")

    def start_agent(self, work: Work) -> None:
        s = self.s
        heal = work.purpose == "heal"
        a = allowance(s, work.phase, work.batch, heal)
        if not a.covers:
            retry = work.model_copy(update={"purpose": "work", "fork": False}) if heal and work.batch else work
            self.attention(describe_stop(s, a), retry, event="budget-stopped")
            return
        run = AgentRun(n=len(s.runs) + 1, phase=work.phase, batch=work.batch, purpose=work.purpose,
                       resumed_from=work.resume_session, started_at=self.now, max_budget_usd=a.usd)
        s.runs.append(run)
        b = s.batches[work.batch - 1] if work.batch else None
        task_ids: list[str] = []
        if b is not None:
            b.runs.append(run.n)
            b.status = BatchStatus.HEALING if heal else BatchStatus.RUNNING
            task_ids = remaining_tasks(s, b)
        if not work.continues:
            self.record_start(work, b)
        self.out.append(RunAgent(n=run.n, phase=work.phase, batch=work.batch, purpose=work.purpose,
                                 prompt=self.prompt(work, b), resume_session=work.resume_session,
                                 fork=work.fork, max_budget_usd=a.usd, task_ids=task_ids))

    def record_start(self, work: Work, b: BatchState | None) -> None:
        if work.purpose == "heal":
            attempts = b.heal_attempts if b else self.s.verify_heal_attempts
            what = f"batch {b.index}/{len(self.s.batches)}" if b else "verify"
            limit = str(self.s.config.orchestration.max_heal_attempts)
            self.record("heal-started", f"healing {what} (attempt {attempts}/{limit})", b, Attempt=str(attempts))
        elif work.purpose == "followup" and b is not None:
            self.record("followup-started", f"batch {b.index}/{len(self.s.batches)} follow-up for unmarked tasks", b)
        elif b is not None:
            self.record("batch-started", f"batch {b.index}/{len(self.s.batches)} started", b)

    def prompt(self, work: Work, b: BatchState | None) -> PromptRequest:
        s = self.s
        values = {"spec": s.spec, "orchestration": s.id, "task_file": s.task_file or "",
                  "design_prompt": s.design_prompt, "phase": work.phase.value}
        tasks = remaining_tasks(s, b) if b is not None else []
        if b is not None:
            values |= {"batch": batch_label(s, b), "batch_name": b.name, "task_ids": ", ".join(tasks),
                       "tasks": "\n".join(f"- {t}" for t in tasks), "tasks_remaining": ", ".join(tasks) or "none",
                       "first_task": tasks[0] if tasks else (b.task_ids[0] if b.task_ids else "T001")}
        else:
            values["first_task"] = next(iter(s.task_status), "T001")
        template = work.purpose if work.purpose in ("followup", "heal") else work.phase.value
        if work.purpose == "heal":
            values |= self.heal_values(work, b)
        return PromptRequest(template=template, values=values)

    def heal_values(self, work: Work, b: BatchState | None) -> dict[str, str]:
        s = self.s
        failed = s.runs[work.after_run - 1] if work.after_run else None
        done = [t for t in s.task_status if s.task_status[t] in FINISHED_VALUES]
        scope = b.task_ids if b is not None else list(s.task_status)
        remaining = [t for t in scope if t not in done]
        values = {
            "failure": f"batch {b.index}/{len(s.batches)} failed" if b else "the verify step failed",
            "attempt": str(b.heal_attempts if b else s.verify_heal_attempts),
            "max_attempts": str(s.config.orchestration.max_heal_attempts),
            "error": (b.error if b else s.error) or (failed.error if failed else "") or "unknown",
            "stderr_tail": (failed.stderr_tail if failed else None) or "",
            "transcript_tail": (failed.transcript_tail if failed else None) or "",
            "tasks_done": ", ".join(t for t in scope if t in done) or "none",
            "tasks_remaining": ", ".join(remaining) or "none",
            "verify_note": "",
        }
        if b is None:
            command = s.config.orchestration.verify_command
            values["verify_note"] = (f"\n\n`{command}` must pass: run it before you finish. "
                                     f"Its last output:\n\n```\n{s.verify_output or ''}\n```")
            if not values["stderr_tail"]:
                values["stderr_tail"] = s.verify_output or ""
        return values

    def start_verify(self) -> None:
        s = self.s
        command = s.config.orchestration.verify_command.strip()
        if not command:
            self.record("skipped", "verify skipped: no verify_command")
            self.to_merge()
            return
        s.awaiting = Awaiting.VERIFY
        self.out.append(RunVerify(command=command, timeout_s=s.config.agent.timeout_s))

    def start_merge(self, recheck: bool = False) -> None:
        s = self.s
        s.awaiting = Awaiting.MERGE
        self.out.append(MergeBranch(branch=f"specflow/{s.spec}", base_branch=s.config.orchestration.base_branch,
                                    recheck=recheck))

    # ---- phases ----

    def take_plan(self, plan: Plan) -> None:
        s = self.s
        s.task_file = plan.file
        s.batches = [BatchState(index=b.index, name=b.name, task_ids=list(b.task_ids)) for b in plan.batches]
        for b in plan.batches:
            todo = set(b.incomplete)
            for t in b.task_ids:
                s.task_status[t] = progress.Status.PENDING.value if t in todo else progress.Status.DONE.value
        s.current_batch = None

    def after_design(self, plan: Plan) -> None:
        if plan.nothing_left:
            self.record("skipped", f"nothing left to do: all {plan.tasks_total} tasks are finished")
            self.to_verify()
        elif self.s.config.orchestration.skip_analyze:
            self.record("skipped", "analyze skipped (skip_analyze)")
            self.start_implement()
        else:
            self.enter(Phase.ANALYZE)
            self.go(Work(kind=WorkKind.AGENT, phase=Phase.ANALYZE, purpose="analyze"))

    def start_implement(self) -> None:
        self.enter(Phase.IMPLEMENT)
        self.next_batch()

    def next_batch(self) -> None:
        s = self.s
        todo = [b for b in s.batches if b.status not in (BatchStatus.COMPLETED, BatchStatus.SKIPPED)]
        if not todo:
            s.current_batch = None
            self.to_verify()
            return
        s.current_batch = todo[0].index
        self.go(Work(kind=WorkKind.AGENT, phase=Phase.IMPLEMENT, batch=todo[0].index))

    def to_verify(self) -> None:
        self.enter(Phase.VERIFY)
        self.go(Work(kind=WorkKind.VERIFY, phase=Phase.VERIFY))

    def to_merge(self) -> None:
        self.enter(Phase.MERGE)
        self.go(Work(kind=WorkKind.MERGE, phase=Phase.MERGE))

    def fallback_work(self) -> Work:
        """What the phase does when the state does not say: the current step, from the start."""
        s = self.s
        if s.phase == Phase.IMPLEMENT:
            b = self.current() or next((b for b in s.batches if b.status != BatchStatus.COMPLETED), None)
            if b is not None:
                return Work(kind=WorkKind.AGENT, phase=Phase.IMPLEMENT, batch=b.index)
            return Work(kind=WorkKind.VERIFY, phase=Phase.VERIFY)
        if s.phase in (Phase.DESIGN, Phase.ANALYZE):
            return Work(kind=WorkKind.AGENT, phase=s.phase, purpose=s.phase.value)
        return Work(kind=WorkKind(s.phase.value), phase=s.phase)

    def continuation(self, run: AgentRun) -> Work:
        """Pick up an interrupted run: its session resumed if it has one, else the same run again."""
        return Work(kind=WorkKind.AGENT, phase=run.phase, batch=run.batch, purpose=run.purpose,
                    resume_session=run.session_id, after_run=run.n, continues=True)

    # ---- events ----

    def on_start(self, ev: Start) -> str | None:
        s = self.s
        if s.started_at is not None:
            return f"orchestration {s.id} has already started"
        s.started_at = self.now
        s.design_prompt = ev.design_prompt
        s.task_file = ev.plan.file
        self.set_status(Status.RUNNING)
        s.phase = Phase.DESIGN
        self.record("started", f"started ({ev.plan.tasks_total} tasks, {len(ev.plan.batches)} batches to run)")
        if ev.plan.tasks_total == 0:
            if s.config.orchestration.skip_design:
                self.attention("the task list has no tasks and skip_design is set: write tasks, then recover --retry",
                               Work(kind=WorkKind.PLAN, phase=Phase.DESIGN))
                return None
            self.enter(Phase.DESIGN)
            self.go(Work(kind=WorkKind.AGENT, phase=Phase.DESIGN, purpose="design"))
            return None
        why = "skip_design" if s.config.orchestration.skip_design else f"the task list has {ev.plan.tasks_total} tasks"
        self.record("skipped", f"design skipped ({why})")
        self.take_plan(ev.plan)
        self.after_design(ev.plan)
        return None

    def on_plan_ready(self, ev: PlanReady) -> str | None:
        s = self.s
        if s.awaiting != Awaiting.PLAN:
            return "no task list was asked for"
        s.awaiting = None
        if ev.plan.tasks_total == 0:
            self.attention(f"the task list {ev.plan.file} has no tasks: write them, then recover --retry",
                           Work(kind=WorkKind.PLAN, phase=s.phase))
            return None
        self.take_plan(ev.plan)
        if s.phase == Phase.DESIGN:
            self.after_design(ev.plan)
        elif ev.plan.nothing_left:
            self.to_verify()
        else:
            self.start_implement()
        return None

    def on_agent_started(self, ev: AgentStarted) -> str | None:
        run = self.live(ev.run_n)
        if run is None:
            return f"run {ev.run_n} is not running"
        run.pid, run.pid_start_time, run.log_file = ev.pid, ev.pid_start_time, ev.log_file
        run.session_id = ev.session_id or run.session_id
        if self.s.status in TERMINAL and not run.stop_requested:
            self.stop(run, f"the orchestration is {self.s.status.value}")
        return None

    def live(self, n: int) -> AgentRun | None:
        return next((r for r in self.s.runs if r.n == n and r.ended_at is None), None)

    def stop(self, run: AgentRun, reason: str) -> None:
        run.stop_requested = True
        self.out.append(StopAgent(n=run.n, reason=reason))

    def on_agent_finished(self, ev: AgentFinished) -> str | None:
        s = self.s
        run = self.live(ev.run_n)
        if run is None:
            return f"run {ev.run_n} is not running"
        r = ev.result
        run.ended_at, run.ok, run.error_type, run.error = self.now, r.ok, r.error_type, r.error
        run.exit_code, run.turns, run.cost_usd = r.exit_code, r.turns, r.cost_usd
        run.session_id = r.session_id or run.session_id
        if not r.ok:
            run.stderr_tail, run.transcript_tail = r.stderr_tail[-TAIL_CHARS:], r.transcript_tail[-TAIL_CHARS:]
        s.total_cost_usd += r.cost_usd
        if run.purpose == "heal":
            s.healing_cost_usd += r.cost_usd
        b = s.batches[run.batch - 1] if run.batch else None
        if b is not None:
            b.cost_usd += r.cost_usd
        if ev.task_status:
            s.task_status.update(ev.task_status)
        if s.status not in (Status.RUNNING, Status.PAUSED):
            return None  # recorded: cost counts even for a run that ends after cancel
        if r.error_type == "rate_limited":
            self.rate_limited(run, r)
        elif run.stop_requested and not r.ok:
            self.go(self.continuation(run))
        else:
            if r.ok:
                s.rate_limit_hits = 0
            self.run_ended(run, r, b)
        return None

    def run_ended(self, run: AgentRun, r: RunResult, b: BatchState | None) -> None:
        failure = f"{run.purpose} run {run.n} failed ({r.error_type or 'error'}): {r.error or 'no detail'}"
        if run.phase in (Phase.DESIGN, Phase.ANALYZE):
            if r.ok:
                self.go(Work(kind=WorkKind.PLAN, phase=run.phase))
            else:
                self.attention(f"{run.phase.value} {failure}",
                               Work(kind=WorkKind.AGENT, phase=run.phase, purpose=run.phase.value))
        elif run.phase == Phase.VERIFY:
            if r.ok:
                self.go(Work(kind=WorkKind.VERIFY, phase=Phase.VERIFY))
            else:
                self.verify_failed(failure, run)
        elif b is not None:
            self.batch_run_ended(run, r, b, failure)

    def batch_run_ended(self, run: AgentRun, r: RunResult, b: BatchState, failure: str) -> None:
        s = self.s
        left = remaining_tasks(s, b)
        if r.ok and not left:
            self.complete(b)
        elif r.ok and run.purpose == "work" and b.followups == 0:
            b.followups += 1
            self.go(Work(kind=WorkKind.AGENT, phase=Phase.IMPLEMENT, batch=b.index, purpose="followup",
                         resume_session=run.session_id, after_run=run.n))
        else:
            why = failure if not r.ok else f"run {run.n} ended but {', '.join(left)} not marked done"
            self.batch_failed(b, run, why)

    def complete(self, b: BatchState) -> None:
        s = self.s
        b.status, b.error = BatchStatus.COMPLETED, None
        self.record("batch-completed", f"batch {b.index}/{len(s.batches)} completed", b)
        if s.config.orchestration.pause_between_batches and s.status == Status.RUNNING:
            self.set_status(Status.PAUSED)
            s.pause_reason = PauseReason.BETWEEN_BATCHES
            self.record("paused", f"paused after batch {b.index} (pause_between_batches)", b)
        self.next_batch()

    def heal_work(self, phase: Phase, batch: int | None, run: AgentRun | None) -> Work:
        session = run.session_id if run else None
        return Work(kind=WorkKind.AGENT, phase=phase, batch=batch, purpose="heal", resume_session=session,
                    fork=session is not None, after_run=run.n if run else None)

    def can_heal(self, attempts: int) -> bool:
        o = self.s.config.orchestration
        return o.auto_heal and attempts < o.max_heal_attempts

    def batch_failed(self, b: BatchState, run: AgentRun, why: str) -> None:
        s = self.s
        b.error = why
        if self.can_heal(b.heal_attempts):
            b.heal_attempts += 1
            b.status = BatchStatus.HEALING
            self.go(self.heal_work(Phase.IMPLEMENT, b.index, run))
            return
        b.status = BatchStatus.FAILED
        self.record("batch-failed", f"batch {b.index}/{len(s.batches)} failed: {why}", b)
        self.attention(f"batch {b.index} failed after {b.heal_attempts} heal attempt(s): {why}",
                       Work(kind=WorkKind.AGENT, phase=Phase.IMPLEMENT, batch=b.index))

    def verify_failed(self, why: str, run: AgentRun | None) -> None:
        s = self.s
        self.record("verify-failed", f"verify failed: {why}")
        if self.can_heal(s.verify_heal_attempts):
            s.verify_heal_attempts += 1
            s.error = why
            last = run or next((r for r in reversed(s.runs) if r.session_id), None)
            self.go(self.heal_work(Phase.VERIFY, None, last))
            return
        self.attention(f"verify failed after {s.verify_heal_attempts} heal attempt(s): {why}",
                       Work(kind=WorkKind.VERIFY, phase=Phase.VERIFY))

    def rate_limited(self, run: AgentRun, r: RunResult) -> None:
        s = self.s
        s.rate_limit_hits += 1
        wait = timedelta(seconds=backoff_s(s.rate_limit_hits))
        until = r.resets_at if r.resets_at and r.resets_at > self.now else self.now + wait
        s.next_work = self.continuation(run)
        if s.status == Status.RUNNING:
            self.set_status(Status.PAUSED)
            s.pause_reason = PauseReason.RATE_LIMIT
            s.waiting_until = until
            self.out.append(ScheduleWake(at=until))
        self.record("rate-limited", f"usage limit reached: waiting until {until.isoformat()}", self.current())

    def on_tasks_marked(self, ev: TasksMarked) -> str | None:
        self.s.task_status.update(ev.statuses)
        return None

    def on_verify_finished(self, ev: VerifyFinished) -> str | None:
        s = self.s
        if s.awaiting != Awaiting.VERIFY:
            return "no verify is running"
        s.awaiting = None
        if ev.exit_code == 0:
            s.verify_output = None
            self.record("verify-passed", "verify passed")
            self.to_merge()
        else:
            s.verify_output = ev.output_tail[-TAIL_CHARS:]
            self.verify_failed(f"`{s.config.orchestration.verify_command}` exited {ev.exit_code}", None)
        return None

    def on_merge_finished(self, ev: MergeFinished) -> str | None:
        s = self.s
        if s.awaiting != Awaiting.MERGE:
            return "no merge is running"
        s.awaiting = None
        retry = Work(kind=WorkKind.MERGE, phase=Phase.MERGE, purpose=MERGE_REQUESTED)
        if ev.outcome == "merged":
            self.set_status(Status.COMPLETED)
            s.error = None
            self.record("merged", f"merged specflow/{s.spec} into {s.config.orchestration.base_branch}")
            self.record("completed", "completed")
        elif ev.outcome == "conflict":
            files = ", ".join(ev.files[:10]) + (" …" if len(ev.files) > 10 else "")
            self.attention(f"merge conflict in {len(ev.files)} file(s): {files}", retry)
        elif ev.outcome == "dirty":
            self.attention("the base branch's worktree has uncommitted changes; specflowd never touches them: "
                           f"commit or stash them, then recover --retry ({ev.detail})", retry)
        else:
            self.attention(f"merge failed: {ev.detail or 'no detail'}", retry)
        return None

    def on_pause(self, ev: Pause) -> str | None:
        s = self.s
        if s.status == Status.PAUSED and s.pause_reason == PauseReason.RATE_LIMIT:
            s.pause_reason, s.waiting_until = PauseReason.USER, None
            self.record("paused", "paused (was waiting for a usage limit)")
            return None
        if s.status != Status.RUNNING:
            return f"cannot pause: the orchestration is {s.status.value}"
        self.set_status(Status.PAUSED)
        s.pause_reason = PauseReason.USER
        if ev.stop_run:
            for run in live_runs(s):
                self.stop(run, "paused")
        how = "stopping the running agent" if ev.stop_run else "the running step may finish"
        self.record("paused", f"paused ({how})", self.current())
        return None

    def on_resume(self, ev: Resume) -> str | None:
        s = self.s
        if s.status != Status.PAUSED:
            return f"cannot resume: the orchestration is {s.status.value}"
        self.set_status(Status.RUNNING)
        self.record("resumed", "resumed", self.current())
        self.go_on()
        return None

    def go_on(self) -> None:
        """Start the kept work, if nothing is still running that will lead to it."""
        s = self.s
        if in_flight(s):
            return
        self.go(s.next_work or self.fallback_work())

    def on_cancel(self, ev: Cancel) -> str | None:
        s = self.s
        if s.status in TERMINAL:
            return f"cannot cancel: the orchestration is already {s.status.value}"
        if s.awaiting == Awaiting.MERGE:
            return "cannot cancel while the merge runs: wait for it to finish"
        for run in live_runs(s):
            if not run.stop_requested:
                self.stop(run, "cancelled")
        if s.awaiting == Awaiting.VERIFY:
            self.out.append(StopVerify(reason="cancelled"))
        s.awaiting, s.next_work = None, None
        self.set_status(Status.CANCELLED)
        self.record("cancelled", "cancelled (branch and worktree kept)", self.current())
        return None

    def on_merge(self, ev: Merge) -> str | None:
        s = self.s
        if s.status != Status.WAITING_MERGE:
            return f"cannot merge: the orchestration is {s.status.value}, not waiting for a merge"
        self.set_status(Status.RUNNING)
        self.record("merge-requested", "merge requested")
        self.start_merge()
        return None

    def on_recover(self, ev: Recover) -> str | None:
        s = self.s
        if s.status != Status.NEEDS_ATTENTION:
            return f"nothing to recover: the orchestration is {s.status.value}"
        if ev.choice == "abort":
            self.set_status(Status.FAILED)
            s.next_work = None
            self.record("failed", f"aborted: {s.error or 'no reason given'}", self.current())
            return None
        if ev.choice == "retry":
            return self.retry()
        return self.skip()

    def retry(self) -> str | None:
        s = self.s
        work = (s.next_work or self.fallback_work()).model_copy(update={"continues": False})
        if work.kind == WorkKind.AGENT and work.batch:
            b = s.batches[work.batch - 1]
            b.heal_attempts, b.followups, b.cost_at_retry, b.error = 0, 0, b.cost_usd, None
            b.status = BatchStatus.PENDING
            work = work.model_copy(update={"purpose": "work", "fork": False, "resume_session": None})
        if work.kind == WorkKind.AGENT:
            a = allowance(s, work.phase, work.batch, work.purpose == "heal")
            if not a.covers:
                return f"cannot retry: {describe_stop(s, a)}; skip or abort instead"
        if work.kind == WorkKind.VERIFY:
            s.verify_heal_attempts = 0
        self.set_status(Status.RUNNING)
        s.error = None
        self.record("recovered", "recovered: retry", self.current())
        self.go(work)
        return None

    def skip(self) -> str | None:
        s = self.s
        if s.phase == Phase.MERGE:
            return "cannot skip the merge: fix the cause and retry, or abort"
        self.set_status(Status.RUNNING)
        s.error = None
        s.next_work = None
        b = self.current()
        self.record("recovered", "recovered: skip", b)
        if s.phase == Phase.IMPLEMENT:
            if b is not None:
                b.status = BatchStatus.SKIPPED
                self.record("batch-skipped", f"batch {b.index}/{len(s.batches)} skipped", b)
            self.next_batch()
        elif s.phase == Phase.VERIFY:
            self.record("skipped", "verify skipped (recover skip)")
            self.to_merge()
        elif s.phase == Phase.ANALYZE:
            self.start_implement()
        else:
            self.go(Work(kind=WorkKind.PLAN, phase=Phase.DESIGN))
        return None

    def on_rate_limit_reset(self, ev: RateLimitReset) -> str | None:
        s = self.s
        if s.status != Status.PAUSED or s.pause_reason != PauseReason.RATE_LIMIT:
            return "not waiting for a usage limit"
        if s.waiting_until is not None and self.now < s.waiting_until:
            return f"too early: waiting until {s.waiting_until.isoformat()}"
        self.set_status(Status.RUNNING)
        self.record("resumed", "resumed after the usage limit", self.current())
        self.go_on()
        return None

    def on_restarted(self, ev: Restarted) -> str | None:
        s = self.s
        runs = live_runs(s)
        if s.status in TERMINAL and not runs:
            return f"nothing to recover: the orchestration is {s.status.value}"
        notes = []
        for run in runs:
            if ev.alive.get(run.n, False):
                if s.status in TERMINAL:
                    self.stop(run, f"the orchestration is {s.status.value}")
                else:
                    self.out.append(AdoptAgent(n=run.n, pid=run.pid, log_file=run.log_file))
                notes.append(f"run {run.n} still running")
                continue
            run.ended_at, run.ok, run.error_type = self.now, False, "lost"
            run.error = "the agent process was gone after the daemon restarted"
            if s.status in (Status.RUNNING, Status.PAUSED):
                how = f"resuming session {run.session_id}" if run.session_id else "running it again"
                notes.append(f"run {run.n} gone: {how}")
                s.next_work = self.continuation(run)
        if s.status in TERMINAL:
            return None
        self.reissue()
        self.record("restarted", "daemon restarted: " + ("; ".join(notes) or "nothing was running"),
                    self.current())
        if s.status == Status.RUNNING and not in_flight(s):
            if s.next_work is None:
                self.attention("the daemon restarted and the state does not say what was running: "
                               "recover --retry starts the current step again", self.fallback_work())
            else:
                self.go(s.next_work)
        return None

    def reissue(self) -> None:
        """Ask again for the step the shell was running when the daemon stopped."""
        s = self.s
        if s.awaiting == Awaiting.PLAN:
            self.out.append(ReadPlan(spec=s.spec))
        elif s.awaiting == Awaiting.VERIFY:
            self.out.append(RunVerify(command=s.config.orchestration.verify_command, timeout_s=s.config.agent.timeout_s))
        elif s.awaiting == Awaiting.MERGE:
            self.start_merge(recheck=True)
        if s.status == Status.PAUSED and s.pause_reason == PauseReason.RATE_LIMIT and s.waiting_until:
            self.out.append(ScheduleWake(at=s.waiting_until))
