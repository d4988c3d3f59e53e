"""The orchestration state machine (SPEC §6): `step(state, event)` gives the new state and the
actions the shell performs, or a refusal. Pure: no I/O, and the time comes in the event.

The theory, as h11 keeps its own: an orchestration is in one status at a time (`vocab.Status`),
or not started yet. Events (`events.py`) come from the shell: people's requests (pause, resume,
cancel, merge, recover) and what the shell saw happen (an agent started or finished, the task
list was re-read, verify or a merge finished, a usage limit lifted, the daemon restarted).
`TRANSITIONS` below says, for each status, which events it accepts and which statuses each may
lead to; any other event is refused with `REFUSALS`' reason, and a refusal changes nothing (a
request gets `conflict` with the message, a stale report is dropped). An accepted event's handler
may still refuse for a reason finer than the status: the run it reports is not live, the step it
answers was not asked for, a usage limit has not lifted yet. `step` checks the table before the
handler runs; the property tests check that every handler keeps to it.

Work the orchestration cannot do now (paused, waiting for a usage limit, needing attention) is
kept as `next_work`, and resume, the limit's reset or `recover retry` start it. Nothing is left
"running" that is not: every action that starts something is answered by an event.

Feed events (`Specflow-Event`, each also a line of the decision log) are `vocab.FeedEvent`;
`Specflow-Cost-USD` is the orchestration's total so far.
"""

from __future__ import annotations

from copy import deepcopy
from dataclasses import field, replace
from datetime import datetime, timedelta
from typing import assert_never

from specflowd.core.budget import allowance, describe_stop
from specflowd.core.events import (
    Action,
    AdoptAgent,
    AgentFinished,
    AgentSession,
    AgentStarted,
    Cancel,
    CommitEvent,
    Event,
    EventType,
    LeaseLost,
    Merge,
    MergeBranch,
    MergeFinished,
    Pause,
    PlanReady,
    RateLimitReset,
    ReadPlan,
    Recover,
    Restarted,
    Resume,
    RunAgent,
    RunResult,
    RunVerify,
    ScheduleWake,
    Start,
    StopAgent,
    StopVerify,
    TakenOver,
    TasksMarked,
    VerifyFinished,
    WriteState,
)
from specflowd.core.permissions import refusal
from specflowd.core.plan import Plan
from specflowd.core.prices import total
from specflowd.core.prompts import PromptRequest, mark_word
from specflowd.core.records import record
from specflowd.core.state import (
    AgentRun,
    BatchState,
    Decision,
    OrchestrationState,
    Work,
    batch_label,
    remaining_tasks,
)
from specflowd.core.vocab import (
    FINISHED,
    FORKS,
    RESUMES,
    TAIL_CHARS,
    TERMINAL,
    Awaiting,
    BatchStatus,
    ErrorType,
    FeedEvent,
    MergeOutcome,
    PauseReason,
    Phase,
    Purpose,
    RecoverChoice,
    Status,
    TaskStatus,
    WorkKind,
)

BACKOFF_FIRST_S = 60
BACKOFF_MAX_S = 3600

S = Status
# Where starting the next step may end: running it, needing a person, waiting for a merge, or (a
# batch with nothing left completes at once) pausing after it with pause_between_batches.
_GOING_ON = frozenset({S.RUNNING, S.NEEDS_ATTENTION, S.WAITING_MERGE, S.PAUSED})
_SAME: dict[Status, frozenset[Status]] = {status: frozenset({status}) for status in Status}

# status -> event -> the statuses the event may lead to. Agent reports (`agent_started`,
# `agent_session`, `agent_finished`) are accepted in every status while their run is live: the cost of a run that
# ends after a cancel still counts. `None` is an orchestration not started yet.
TRANSITIONS: dict[Status | None, dict[EventType, frozenset[Status]]] = {
    None: {"start": frozenset({S.RUNNING, S.NEEDS_ATTENTION, S.WAITING_MERGE})},
    S.RUNNING: {
        "agent_started": _SAME[S.RUNNING],
        "agent_session": _SAME[S.RUNNING],
        "agent_finished": _GOING_ON,
        "tasks_marked": _SAME[S.RUNNING],
        "plan_ready": _GOING_ON,
        "verify_finished": _GOING_ON,
        "merge_finished": frozenset({S.COMPLETED, S.NEEDS_ATTENTION}),
        "pause": _SAME[S.PAUSED],
        "cancel": _SAME[S.CANCELLED],
        "restarted": _GOING_ON,
        "lease_lost": _SAME[S.RUNNING],
        "taken_over": _GOING_ON,
    },
    S.PAUSED: {
        "agent_started": _SAME[S.PAUSED],
        "agent_session": _SAME[S.PAUSED],
        "agent_finished": frozenset({S.PAUSED, S.NEEDS_ATTENTION}),
        "tasks_marked": _SAME[S.PAUSED],
        "plan_ready": frozenset({S.PAUSED, S.NEEDS_ATTENTION}),
        "verify_finished": frozenset({S.PAUSED, S.NEEDS_ATTENTION}),
        "merge_finished": frozenset({S.COMPLETED, S.NEEDS_ATTENTION}),
        "pause": _SAME[S.PAUSED],  # only while waiting for a usage limit: the wait becomes the user's
        "resume": _GOING_ON,
        "cancel": _SAME[S.CANCELLED],
        "rate_limit_reset": _GOING_ON,
        "restarted": _SAME[S.PAUSED],
        "lease_lost": _SAME[S.PAUSED],
        "taken_over": _SAME[S.PAUSED],
    },
    S.WAITING_MERGE: {
        "agent_started": _SAME[S.WAITING_MERGE],
        "agent_session": _SAME[S.WAITING_MERGE],
        "agent_finished": _SAME[S.WAITING_MERGE],
        "tasks_marked": _SAME[S.WAITING_MERGE],
        "merge": _SAME[S.RUNNING],
        "cancel": _SAME[S.CANCELLED],
        "restarted": _SAME[S.WAITING_MERGE],
        "lease_lost": _SAME[S.WAITING_MERGE],
        "taken_over": _SAME[S.WAITING_MERGE],
    },
    S.NEEDS_ATTENTION: {
        "agent_started": _SAME[S.NEEDS_ATTENTION],
        "agent_session": _SAME[S.NEEDS_ATTENTION],
        "agent_finished": _SAME[S.NEEDS_ATTENTION],
        "tasks_marked": _SAME[S.NEEDS_ATTENTION],
        "recover": _GOING_ON | {S.FAILED},
        "cancel": _SAME[S.CANCELLED],
        "restarted": _SAME[S.NEEDS_ATTENTION],
        "lease_lost": _SAME[S.NEEDS_ATTENTION],
        "taken_over": _SAME[S.NEEDS_ATTENTION],
    },
    S.QUEUED: {},  # only in the fleet's view of the feed: no host steps a queued orchestration
    **{done: {
        "agent_started": _SAME[done],
        "agent_session": _SAME[done],
        "agent_finished": _SAME[done],
        "tasks_marked": _SAME[done],
        "restarted": _SAME[done],  # only to stop agents still running for it
    } for done in TERMINAL},
}

# Why an event the table does not accept is refused, with `{status}` and `{id}` filled in.
REFUSALS: dict[EventType, str] = {
    "start": "orchestration {id} has already started",
    "agent_started": "orchestration {id} has not started",
    "agent_session": "orchestration {id} has not started",
    "agent_finished": "orchestration {id} has not started",
    "tasks_marked": "orchestration {id} has not started",
    "plan_ready": "no task list was asked for",
    "verify_finished": "no verify is running",
    "merge_finished": "no merge is running",
    "pause": "cannot pause: the orchestration is {status}",
    "resume": "cannot resume: the orchestration is {status}",
    "cancel": "cannot cancel: the orchestration is already {status}",
    "merge": "cannot merge: the orchestration is {status}, not waiting for a merge",
    "recover": "nothing to recover: the orchestration is {status}",
    "rate_limit_reset": "not waiting for a usage limit",
    "restarted": "nothing to recover: the orchestration is {status}",
    "lease_lost": "no lease to lose: the orchestration is {status}",
    "taken_over": "nothing to take over: the orchestration is {status}",
}
# What a host that lost its lease still takes: reports of the agents it is stopping, a restart (to
# stop them again), and taking the orchestration over once more. Anything else would be a write for
# an orchestration this host no longer holds (SPEC §10, fencing).
FENCED_TAKES: frozenset[EventType] = frozenset({"agent_started", "agent_session", "agent_finished", "restarted",
                                               "taken_over"})


@record
class Transition:
    state: OrchestrationState
    actions: list[Action] = field(default_factory=list)
    refused: str | None = None


def accepts(state: OrchestrationState, event: EventType) -> bool:
    """Whether the table lets `state` take this kind of event at all."""
    return event in TRANSITIONS[state.status if state.started_at is not None else None]


def step(state: OrchestrationState, event: Event) -> Transition:
    """The state after `event`, and what to do about it; the input state is never changed."""
    if not accepts(state, event.type):
        why = "orchestration {id} has not started" if state.started_at is None else REFUSALS[event.type]
        return Transition(state=state, refused=why.format(id=state.id, status=state.status.value))
    if state.lease_lost_at is not None and event.type not in FENCED_TAKES:
        return Transition(state=state, refused=f"this host lost its lease on orchestration {state.id}: "
                                               "it writes nothing more for it")
    m = _Machine(deepcopy(state), event.now)
    refused = m.dispatch(event)
    if refused is not None:
        return Transition(state=state, refused=refused)
    m.s.updated_at = event.now
    m.out.append(WriteState())
    return Transition(state=m.s, actions=m.out)


def live_runs(state: OrchestrationState) -> list[AgentRun]:
    """Runs started or queued and not yet finished."""
    return [r for r in state.runs if r.ended_at is None]


def writes_documents(state: OrchestrationState) -> bool:
    """A design or analyze agent is at work on the spec's documents in the design-docs worktree."""
    return any(r.phase in (Phase.DESIGN, Phase.ANALYZE) for r in live_runs(state))


def in_flight(state: OrchestrationState) -> bool:
    """Something the shell runs for this orchestration will report back."""
    return state.awaiting is not None or bool(live_runs(state))


def with_detail(why: str, detail: str | None) -> str:
    return f"{why}: {detail}" if detail else why


def backoff_s(hits: int) -> int:
    """Wait after the n-th usage limit in a row with no reset time: 60 s doubling, at most an hour."""
    wait: int = BACKOFF_FIRST_S * 2 ** max(0, hits - 1)
    return min(BACKOFF_MAX_S, wait)


class _Machine:
    """One step's working copy, the time, and the actions gathered so far."""

    def __init__(self, s: OrchestrationState, now: datetime) -> None:
        self.s = s
        self.now = now
        self.out: list[Action] = []

    def dispatch(self, event: Event) -> str | None:
        """The event's handler: None when it was taken, else why it is refused."""
        match event:
            case Start():
                return self.on_start(event)
            case AgentStarted():
                return self.on_agent_started(event)
            case AgentSession():
                return self.on_agent_session(event)
            case AgentFinished():
                return self.on_agent_finished(event)
            case TasksMarked():
                return self.on_tasks_marked(event)
            case PlanReady():
                return self.on_plan_ready(event)
            case VerifyFinished():
                return self.on_verify_finished(event)
            case MergeFinished():
                return self.on_merge_finished(event)
            case Pause():
                return self.on_pause(event)
            case Resume():
                return self.on_resume(event)
            case Cancel():
                return self.on_cancel(event)
            case Merge():
                return self.on_merge(event)
            case Recover():
                return self.on_recover(event)
            case RateLimitReset():
                return self.on_rate_limit_reset(event)
            case Restarted():
                return self.on_restarted(event)
            case LeaseLost():
                return self.on_lease_lost(event)
            case TakenOver():
                return self.on_taken_over(event)
            case _:
                assert_never(event)

    # ---- the record ----

    def record(self, event: FeedEvent, what: str, batch: BatchState | None = None, **extra: str) -> None:
        """An event commit on the design-docs branch, and the same line in the decision log."""
        s = self.s
        trailers = {"Spec": s.spec, "Orchestration": s.id, "Phase": s.phase.value}
        if batch is not None:
            trailers["Batch"] = batch_label(s, batch)
        if s.total_cost_usd > 0:
            trailers["Cost-USD"] = f"{s.total_cost_usd:.4f}"
        if s.host:
            trailers["Host"] = s.host
        trailers.update(extra)
        self.out.append(CommitEvent(subject=f"orchestration {s.id}: {what}", event=event, trailers=trailers))
        s.decisions.append(Decision(at=self.now, decision=what, reason=event))

    def set_status(self, status: Status) -> None:
        self.s.status = status
        if status != Status.PAUSED:
            self.s.pause_reason = None
            self.s.waiting_until = None

    def attention(self, reason: str, retry: Work, event: FeedEvent = FeedEvent.NEEDS_ATTENTION,
                  detail: str | None = None) -> None:
        """Stop and wait for `recover`; `retry` is what a retry starts. `reason` is specflowd's own
        words and goes into the feed; `detail` (an agent's output) stays in the state file."""
        self.set_status(Status.NEEDS_ATTENTION)
        self.s.error = with_detail(reason, detail)
        self.s.next_work = retry
        self.record(event, f"needs attention: {reason}", self.current())

    def enter(self, phase: Phase) -> None:
        self.s.phase = phase
        self.record(FeedEvent.PHASE, f"phase {phase.value}")

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
            if s.phase != Phase.VERIFY:  # after a merge that failed: the merged result is verified again
                self.enter(Phase.VERIFY)
            self.start_verify()
        elif s.config.orchestration.auto_merge or work.purpose == Purpose.REQUESTED or s.merge_requested:
            self.start_merge()
        else:
            self.set_status(Status.WAITING_MERGE)
            self.record(FeedEvent.WAITING_MERGE, "waiting for a merge request")

    def start_agent(self, work: Work) -> None:
        s = self.s
        b = s.batches[work.batch - 1] if work.batch else None
        if b is not None and work.purpose == Purpose.WORK and not remaining_tasks(s, b):
            # Every task of the batch is finished already (marked by hand, or by a run before a
            # retry): nothing for an agent to do.
            self.complete(b)
            return
        heal = work.purpose == Purpose.HEAL
        a = allowance(s, work.phase, work.batch, heal)
        if not a.covers:
            retry = replace(work, purpose=Purpose.WORK, fork=False) if heal and work.batch else work
            self.attention(describe_stop(s, a), retry, event=FeedEvent.BUDGET_STOPPED)
            return
        run = AgentRun(n=len(s.runs) + 1, phase=work.phase, batch=work.batch, purpose=work.purpose,
                       resumed_from=work.resume_session, started_at=self.now, max_budget_usd=a.usd)
        s.runs.append(run)
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
        if work.purpose == Purpose.HEAL:
            attempts = b.heal_attempts if b else self.s.verify_heal_attempts
            what = f"batch {b.index}/{len(self.s.batches)}" if b else "verify"
            limit = str(self.s.config.orchestration.max_heal_attempts)
            self.record(FeedEvent.HEAL_STARTED, f"healing {what} (attempt {attempts}/{limit})", b, Attempt=str(attempts))
        elif work.purpose == Purpose.FOLLOWUP and b is not None:
            self.record(FeedEvent.FOLLOWUP_STARTED, f"batch {b.index}/{len(self.s.batches)} follow-up for unmarked tasks", b)
        elif b is not None:
            self.record(FeedEvent.BATCH_STARTED, f"batch {b.index}/{len(self.s.batches)} started", b)

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
        values["first_task_arg"] = mark_word(values["first_task"])  # quoted for a shell: `'#20'`
        template = work.purpose if work.purpose in (Purpose.FOLLOWUP, Purpose.HEAL) else work.phase.value
        if work.purpose == Purpose.HEAL:
            values |= self.heal_values(work, b)
        return PromptRequest(template=template, values=values)

    def heal_values(self, work: Work, b: BatchState | None) -> dict[str, str]:
        s = self.s
        failed = s.runs[work.after_run - 1] if work.after_run else None
        done = [t for t in s.task_status if s.task_status[t] in FINISHED]
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
            self.record(FeedEvent.SKIPPED, "verify skipped: no verify_command")
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

    def take_plan(self, plan: Plan, task_status: dict[str, TaskStatus]) -> None:
        s = self.s
        s.task_file = plan.file
        s.task_status.update(task_status)
        s.batches = [BatchState(index=b.index, name=b.name, task_ids=list(b.task_ids)) for b in plan.batches]
        for b in plan.batches:
            todo = set(b.incomplete)
            for t in b.task_ids:
                s.task_status[t] = TaskStatus.PENDING if t in todo else TaskStatus.DONE
        s.current_batch = None

    def after_design(self, plan: Plan) -> None:
        if plan.nothing_left:
            self.record(FeedEvent.SKIPPED, f"nothing left to do: all {plan.tasks_total} tasks are finished")
            self.to_verify()
        elif self.s.config.orchestration.skip_analyze:
            self.record(FeedEvent.SKIPPED, "analyze skipped (skip_analyze)")
            self.start_implement()
        else:
            self.enter(Phase.ANALYZE)
            self.go(Work(kind=WorkKind.AGENT, phase=Phase.ANALYZE, purpose=Purpose.ANALYZE))

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
            return Work(kind=WorkKind.AGENT, phase=s.phase, purpose=Purpose(s.phase.value))
        return Work(kind=WorkKind(s.phase.value), phase=s.phase)

    def continuation(self, run: AgentRun) -> Work:
        """Pick up an interrupted run: its session resumed if it has one, else the same run again."""
        return Work(kind=WorkKind.AGENT, phase=run.phase, batch=run.batch, purpose=run.purpose,
                    resume_session=self.resumable(run.session_id), after_run=run.n, continues=True)

    # ---- events ----

    def on_start(self, ev: Start) -> str | None:
        s = self.s
        s.started_at = self.now
        s.design_prompt = ev.design_prompt
        s.task_file = ev.plan.file
        self.set_status(Status.RUNNING)
        s.phase = Phase.DESIGN
        self.record(FeedEvent.STARTED, f"started ({ev.plan.tasks_total} tasks, {len(ev.plan.batches)} batches to run)")
        if ev.plan.tasks_total == 0:
            if s.config.orchestration.skip_design:
                self.attention("the task list has no tasks and skip_design is set: write tasks, then recover --retry",
                               Work(kind=WorkKind.PLAN, phase=Phase.DESIGN))
                return None
            self.enter(Phase.DESIGN)
            self.go(Work(kind=WorkKind.AGENT, phase=Phase.DESIGN, purpose=Purpose.DESIGN))
            return None
        why = "skip_design" if s.config.orchestration.skip_design else f"the task list has {ev.plan.tasks_total} tasks"
        self.record(FeedEvent.SKIPPED, f"design skipped ({why})")
        self.take_plan(ev.plan, ev.task_status)
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
        self.take_plan(ev.plan, ev.task_status)
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
        run.base_commit = ev.base_commit or run.base_commit
        if (self.s.status in TERMINAL or self.s.lease_lost_at is not None) and not run.stop_requested:
            self.stop(run, f"the orchestration is {self.s.status.value}" if self.s.lease_lost_at is None
                      else "this host lost its lease")
        return None

    def on_agent_session(self, ev: AgentSession) -> str | None:
        run = self.live(ev.run_n)
        if run is None:
            return f"run {ev.run_n} is not running"
        run.session_id = ev.session_id
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
        run.tokens = total(r.tokens) if r.tokens else run.tokens
        run.cost_estimated, run.unpriced, run.refused = r.cost_estimated, r.unpriced, r.refused
        run.session_cost_usd, run.session_tokens = r.session_cost_usd, r.session_tokens
        if not r.ok:
            run.stderr_tail, run.transcript_tail = r.stderr_tail[-TAIL_CHARS:], r.transcript_tail[-TAIL_CHARS:]
        s.total_cost_usd += r.cost_usd
        if run.purpose == Purpose.HEAL:
            s.healing_cost_usd += r.cost_usd
        b = s.batches[run.batch - 1] if run.batch else None
        if b is not None:
            b.cost_usd += r.cost_usd
        if ev.task_status:
            s.task_status.update(ev.task_status)
        if s.status not in (Status.RUNNING, Status.PAUSED) or s.lease_lost_at is not None:
            return None  # recorded: cost counts even for a run that ends after cancel
        if r.error_type == ErrorType.RATE_LIMITED:
            self.rate_limited(run, r)
        elif run.stop_requested and not r.ok:
            self.go(self.continuation(run))
        else:
            if r.ok:
                s.rate_limit_hits = 0
            self.run_ended(run, r, b)
        return None

    def run_ended(self, run: AgentRun, r: RunResult, b: BatchState | None) -> None:
        # The feed (pushed, read by everyone) gets specflowd's words; what the agent said, which may
        # quote a key from its environment, stays in the state file and the transcript (0600).
        code = f", exit {r.exit_code}" if r.exit_code not in (None, 0) else ""
        failure = f"{run.purpose} run {run.n} failed ({r.error_type or 'error'}{code})"
        if run.phase in (Phase.DESIGN, Phase.ANALYZE):
            if r.ok:
                self.go(Work(kind=WorkKind.PLAN, phase=run.phase))
            else:
                self.attention(f"{run.phase.value} {failure}",
                               Work(kind=WorkKind.AGENT, phase=run.phase, purpose=Purpose(run.phase.value)),
                               detail=r.error)
        elif run.phase == Phase.VERIFY:
            if r.ok:
                self.go(Work(kind=WorkKind.VERIFY, phase=Phase.VERIFY))
            else:
                self.verify_failed(failure, run, detail=r.error)
        elif b is not None:
            self.batch_run_ended(run, r, b, failure)

    def batch_run_ended(self, run: AgentRun, r: RunResult, b: BatchState, failure: str) -> None:
        s = self.s
        left = remaining_tasks(s, b)
        if left and r.refused:
            # Said to be a success or not, the CLI refused what the tasks need; a follow-up or a
            # healer would be refused the same: the settings must change first.
            run.ok, run.error_type = False, ErrorType.PERMISSION_DENIED
            run.error = refusal(s.config.agent.kind, r.refused)
            # The refused commands are the agent's text: named in the state, counted in the feed.
            refused = len(set(r.refused))
            self.batch_failed(b, run, f"the agent's CLI refused {refused} tool call(s) the tasks need", run.error,
                              heal=False)
            return
        if r.ok and not left:
            self.complete(b)
        elif r.ok and run.purpose == Purpose.WORK and b.followups == 0:
            b.followups += 1
            self.go(Work(kind=WorkKind.AGENT, phase=Phase.IMPLEMENT, batch=b.index, purpose=Purpose.FOLLOWUP,
                         resume_session=self.resumable(run.session_id), after_run=run.n))
        else:
            why = failure if not r.ok else f"run {run.n} ended but {', '.join(left)} not marked done"
            self.batch_failed(b, run, why, None if r.ok else r.error)

    def complete(self, b: BatchState) -> None:
        s = self.s
        b.status, b.error = BatchStatus.COMPLETED, None
        self.record(FeedEvent.BATCH_COMPLETED, f"batch {b.index}/{len(s.batches)} completed", b)
        if s.config.orchestration.pause_between_batches and s.status == Status.RUNNING:
            self.set_status(Status.PAUSED)
            s.pause_reason = PauseReason.BETWEEN_BATCHES
            self.record(FeedEvent.PAUSED, f"paused after batch {b.index} (pause_between_batches)", b)
        self.next_batch()

    def heal_work(self, phase: Phase, batch: int | None, run: AgentRun | None) -> Work:
        session = run.session_id if run and self.s.config.agent.kind in FORKS else None
        return Work(kind=WorkKind.AGENT, phase=phase, batch=batch, purpose=Purpose.HEAL, resume_session=session,
                    fork=session is not None, after_run=run.n if run else None)

    def resumable(self, session: str | None) -> str | None:
        """The session to continue, when the CLI can continue one (else a fresh session, with context)."""
        return session if self.s.config.agent.kind in RESUMES else None

    def can_heal(self, attempts: int) -> bool:
        o = self.s.config.orchestration
        return o.auto_heal and attempts < o.max_heal_attempts

    def batch_failed(self, b: BatchState, run: AgentRun, why: str, detail: str | None, heal: bool = True) -> None:
        s = self.s
        b.error = with_detail(why, detail)
        if heal and self.can_heal(b.heal_attempts):
            b.heal_attempts += 1
            b.status = BatchStatus.HEALING
            self.go(self.heal_work(Phase.IMPLEMENT, b.index, run))
            return
        b.status = BatchStatus.FAILED
        self.record(FeedEvent.BATCH_FAILED, f"batch {b.index}/{len(s.batches)} failed: {why}", b)
        self.attention(f"batch {b.index} failed after {b.heal_attempts} heal attempt(s): {why}",
                       Work(kind=WorkKind.AGENT, phase=Phase.IMPLEMENT, batch=b.index), detail=detail)

    def verify_failed(self, why: str, run: AgentRun | None, detail: str | None = None) -> None:
        s = self.s
        self.record(FeedEvent.VERIFY_FAILED, f"verify failed: {why}")
        if self.can_heal(s.verify_heal_attempts):
            s.verify_heal_attempts += 1
            s.error = with_detail(why, detail)
            last = run or next((r for r in reversed(s.runs) if r.session_id), None)
            self.go(self.heal_work(Phase.VERIFY, None, last))
            return
        self.attention(f"verify failed after {s.verify_heal_attempts} heal attempt(s): {why}",
                       Work(kind=WorkKind.VERIFY, phase=Phase.VERIFY), detail=detail)

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
        self.record(FeedEvent.RATE_LIMITED, f"usage limit reached: waiting until {until.isoformat()}", self.current())

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
            self.record(FeedEvent.VERIFY_PASSED, "verify passed")
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
        s.merge_requested = False
        retry = Work(kind=WorkKind.MERGE, phase=Phase.MERGE, purpose=Purpose.REQUESTED)
        if ev.outcome == MergeOutcome.MERGED:
            self.set_status(Status.COMPLETED)
            s.error = None
            self.record(FeedEvent.MERGED, f"merged specflow/{s.spec} into {s.config.orchestration.base_branch}")
            self.record(FeedEvent.COMPLETED, "completed")
        elif ev.outcome == MergeOutcome.CONFLICT:
            files = ", ".join(ev.files[:10]) + (" …" if len(ev.files) > 10 else "")
            # Resolved by a person on the work branch: that result is verified before it merges.
            self.attention(f"merge conflict in {len(ev.files)} file(s): {files}; resolve it on specflow/{s.spec}, "
                           "then recover --retry (verify runs again first)",
                           Work(kind=WorkKind.VERIFY, phase=Phase.VERIFY, purpose=Purpose.REQUESTED))
        elif ev.outcome == MergeOutcome.DIRTY:
            self.attention("the base branch's worktree has uncommitted changes; specflowd never touches them: "
                           f"commit or stash them, then recover --retry ({ev.detail})", retry)
        else:
            self.attention(f"merge failed: {ev.detail or 'no detail'}", retry)
        return None

    def on_pause(self, ev: Pause) -> str | None:
        s = self.s
        if s.status == Status.PAUSED:
            if s.pause_reason != PauseReason.RATE_LIMIT:
                return f"cannot pause: the orchestration is {s.status.value}"
            s.pause_reason, s.waiting_until = PauseReason.USER, None
            self.record(FeedEvent.PAUSED, "paused (was waiting for a usage limit)")
            return None
        self.set_status(Status.PAUSED)
        s.pause_reason = PauseReason.USER
        if ev.stop_run:
            for run in live_runs(s):
                self.stop(run, "paused")
        how = "stopping the running agent" if ev.stop_run else "the running step may finish"
        self.record(FeedEvent.PAUSED, f"paused ({how})", self.current())
        return None

    def on_resume(self, ev: Resume) -> str | None:
        self.set_status(Status.RUNNING)
        self.record(FeedEvent.RESUMED, "resumed", self.current())
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
        if s.awaiting == Awaiting.MERGE:
            return "cannot cancel while the merge runs: wait for it to finish"
        for run in live_runs(s):
            if not run.stop_requested:
                self.stop(run, "cancelled")
        if s.awaiting == Awaiting.VERIFY:
            self.out.append(StopVerify(reason="cancelled"))
        s.awaiting, s.next_work = None, None
        self.set_status(Status.CANCELLED)
        self.record(FeedEvent.CANCELLED, "cancelled (branch and worktree kept)", self.current())
        return None

    def on_merge(self, ev: Merge) -> str | None:
        self.set_status(Status.RUNNING)
        self.record(FeedEvent.MERGE_REQUESTED, "merge requested")
        self.start_merge()
        return None

    def on_recover(self, ev: Recover) -> str | None:
        s = self.s
        how = ev.choice.value
        if ev.budget and ev.choice != RecoverChoice.ABORT:
            s.config.budget = replace(s.config.budget, **ev.budget)
            how += " with budget " + ", ".join(f"{k} ${v:.2f}" for k, v in sorted(ev.budget.items()))
        if ev.choice == RecoverChoice.ABORT:
            self.set_status(Status.FAILED)
            s.next_work = None
            self.record(FeedEvent.FAILED, f"aborted: {s.error or 'no reason given'}", self.current())
            return None
        if ev.choice == RecoverChoice.RETRY:
            return self.retry(how)
        return self.skip(how)

    def retry(self, how: str) -> str | None:
        s = self.s
        work = replace(s.next_work or self.fallback_work(), continues=False)
        if work.kind == WorkKind.AGENT and work.batch:
            b = s.batches[work.batch - 1]
            b.heal_attempts, b.followups, b.cost_at_retry, b.error = 0, 0, b.cost_usd, None
            b.status = BatchStatus.PENDING
            work = replace(work, purpose=Purpose.WORK, fork=False, resume_session=None)
        if work.kind == WorkKind.AGENT:
            a = allowance(s, work.phase, work.batch, work.purpose == Purpose.HEAL)
            if not a.covers:
                return f"cannot retry: {describe_stop(s, a)}; skip or abort instead"
        if work.kind == WorkKind.VERIFY:
            s.verify_heal_attempts = 0
        s.merge_requested = work.purpose == Purpose.REQUESTED  # a merge asked for waits for no one
        self.set_status(Status.RUNNING)
        s.error = None
        self.record(FeedEvent.RECOVERED, f"recovered: {how}", self.current())
        self.go(work)
        return None

    def skip(self, how: str) -> str | None:
        s = self.s
        if s.phase == Phase.MERGE:
            return "cannot skip the merge: fix the cause and retry, or abort"
        self.set_status(Status.RUNNING)
        s.error = None
        s.next_work = None
        b = self.current()
        self.record(FeedEvent.RECOVERED, f"recovered: {how}", b)
        if s.phase == Phase.IMPLEMENT:
            if b is not None:
                b.status = BatchStatus.SKIPPED
                self.record(FeedEvent.BATCH_SKIPPED, f"batch {b.index}/{len(s.batches)} skipped", b)
            self.next_batch()
        elif s.phase == Phase.VERIFY:
            self.record(FeedEvent.SKIPPED, "verify skipped (recover skip)")
            self.to_merge()
        elif s.phase == Phase.ANALYZE:
            self.start_implement()
        else:
            self.go(Work(kind=WorkKind.PLAN, phase=Phase.DESIGN))
        return None

    def on_rate_limit_reset(self, ev: RateLimitReset) -> str | None:
        s = self.s
        if s.pause_reason != PauseReason.RATE_LIMIT:
            return "not waiting for a usage limit"
        if s.waiting_until is not None and self.now < s.waiting_until:
            return f"too early: waiting until {s.waiting_until.isoformat()}"
        self.set_status(Status.RUNNING)
        self.record(FeedEvent.RESUMED, "resumed after the usage limit", self.current())
        self.go_on()
        return None

    def on_restarted(self, ev: Restarted) -> str | None:
        s = self.s
        runs = live_runs(s)
        if s.lease_lost_at is not None:
            # Another host may run it now: stop what still runs here, and go on with nothing.
            for run in runs:
                if ev.alive.get(run.n, False):  # followed again, so that stopping it reaches it
                    self.out.append(AdoptAgent(n=run.n, pid=run.pid, log_file=run.log_file))
                    self.stop(run, "this host lost its lease")
                else:
                    self.lose(run, "the agent process was gone after the daemon restarted")
            return None
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
            self.lose(run, "the agent process was gone after the daemon restarted")
            if s.status in (Status.RUNNING, Status.PAUSED):
                how = f"resuming session {run.session_id}" if run.session_id else "running it again"
                notes.append(f"run {run.n} gone: {how}")
                s.next_work = self.continuation(run)
        if s.status in TERMINAL:
            return None
        self.reissue()
        self.record(FeedEvent.RESTARTED, "daemon restarted: " + ("; ".join(notes) or "nothing was running"),
                    self.current())
        if s.status == Status.RUNNING and not in_flight(s):
            if s.next_work is None:
                self.attention("the daemon restarted and the state does not say what was running: "
                               "recover --retry starts the current step again", self.fallback_work())
            else:
                self.go(s.next_work)
        return None

    def lose(self, run: AgentRun, why: str) -> None:
        run.ended_at, run.ok, run.error_type, run.error = self.now, False, ErrorType.LOST, why

    # ---- many machines (SPEC §10) ----

    def on_lease_lost(self, ev: LeaseLost) -> str | None:
        s = self.s
        for run in live_runs(s):
            if not run.stop_requested:
                self.stop(run, "this host lost its lease")
        if s.awaiting == Awaiting.VERIFY:
            self.out.append(StopVerify(reason="this host lost its lease"))
        # The one write still allowed: that it stopped. It carries nothing for the orchestration's
        # course (no mark, no status), and is pushed without the lease.
        self.record(FeedEvent.LEASE_LOST, f"lease lost by {s.host or 'this host'}: {ev.reason}; its agent stopped",
                    self.current())
        s.lease_lost_at = self.now
        return None

    def on_taken_over(self, ev: TakenOver) -> str | None:
        """Resume on this host as crash recovery does (SPEC §6), from what the feed and the pushed
        work branch hold: an agent session does not move between machines, so the step starts again
        in a fresh session, with the tasks done and remaining in its prompt."""
        s = self.s
        for run in live_runs(s):
            self.lose(run, f"the orchestration was taken over by {ev.host}")
        s.host, s.lease_lost_at = ev.host, None
        work = replace(s.next_work or self.fallback_work(), resume_session=None, fork=False, continues=False)
        s.decisions.append(Decision(at=self.now, decision=f"taken over from {ev.previous_host} by {ev.host}",
                                    reason=FeedEvent.TAKEN_OVER))
        if s.status == Status.RUNNING and s.awaiting is not None:
            self.reissue()  # the task list, verify or merge it waited for: asked for again, here
        elif s.status == Status.RUNNING:
            self.go(work)
        elif s.status == Status.PAUSED:
            s.next_work = work
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
