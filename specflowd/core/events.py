"""What crosses the boundary between the orchestration machine and the shell that runs it.

Events say what happened (the shell reports them; requests from people are events too), actions
say what to do (the machine asks for them). Both are closed unions, discriminated by `type`: the
machine matches every event and the shell every action with `assert_never` at the end, so a new
member that one side forgets is a type error, not a surprise at run time.

The shell's part, per action: `RunAgent` start (or queue) an agent run and answer with
`AgentStarted`, `AgentSession` once the agent names its session, then `AgentFinished` (with the task list's statuses re-read after the run);
`StopAgent` stop that run (its `AgentFinished` still follows, with `cancelled`); `AdoptAgent`
follow a still-running agent's log after a restart; `RunVerify` / `StopVerify` run or stop the
verify command (`VerifyFinished`); `MergeBranch` merge and answer `MergeFinished`; `ReadPlan`
re-read the task list and answer `PlanReady`; `CommitEvent` commit on the design-docs branch;
`ScheduleWake` send `RateLimitReset` at that time; `WriteState` write the state file. On many
machines the shell also reports `LeaseLost` and `TakenOver` (SPEC §10).
"""

from __future__ import annotations

from dataclasses import field
from datetime import datetime
from typing import Literal

from specflowd.core.plan import Plan
from specflowd.core.prices import TokenUsage
from specflowd.core.prompts import PromptRequest
from specflowd.core.records import record
from specflowd.core.vocab import ErrorType, FeedEvent, MergeOutcome, Phase, Purpose, RecoverChoice, TaskStatus


@record
class RunResult:
    """An agent run's outcome, whatever CLI ran it: the agent layer concludes it from the run's
    stream and exit, and the machine judges the batch by it."""

    ok: bool
    error_type: ErrorType | None = None
    error: str | None = None  # why it failed, in a line or a few: the CLI's verdict or its stderr
    exit_code: int | None = None
    session_id: str | None = None
    cost_usd: float = 0.0
    turns: int | None = None
    duration_s: float | None = None
    text: str = ""  # the agent's final words
    stderr_tail: str = ""
    transcript_tail: str = ""
    resets_at: datetime | None = None  # when a usage limit lifts, if the CLI said
    refused: list[str] = field(default_factory=list)  # tool calls the CLI refused, named (`Bash(npm test)`)
    tokens: dict[str, TokenUsage] = field(default_factory=dict)  # by model; "" is the model the run was given
    cost_estimated: bool = False  # cost_usd comes from tokens and prices, not from the CLI
    unpriced: list[str] = field(default_factory=list)  # models that used tokens but have no price
    # What a CLI that reports its session's running totals said (Claude Code, Codex): cost_usd and
    # tokens above are this run's share, these totals less those of the session it continued.
    session_cost_usd: float | None = None
    session_tokens: dict[str, TokenUsage] = field(default_factory=dict)


# ---- events: what happened, as the shell reports it ----

@record
class _Event:
    now: datetime


@record
class Start(_Event):
    type: Literal["start"] = "start"
    plan: Plan  # the task list's plan at start; no tasks means the design phase writes them
    task_status: dict[str, TaskStatus] = field(default_factory=dict)  # every task's, finished ones too
    design_prompt: str = ""


@record
class AgentStarted(_Event):
    type: Literal["agent_started"] = "agent_started"
    run_n: int
    pid: int | None = None
    pid_start_time: int | None = None
    log_file: str | None = None
    session_id: str | None = None
    base_commit: str | None = None  # the work branch's tip when the run started: its commits come after


@record
class AgentSession(_Event):
    """The agent said which session it runs in: kept, so that a daemon that restarts while the
    agent is gone resumes that session rather than starting over."""

    type: Literal["agent_session"] = "agent_session"
    run_n: int
    session_id: str


@record
class AgentFinished(_Event):
    type: Literal["agent_finished"] = "agent_finished"
    run_n: int
    result: RunResult
    # The task list re-read once the run's marks were committed: dual confirmation needs them.
    task_status: dict[str, TaskStatus] | None = None


@record
class TasksMarked(_Event):
    type: Literal["tasks_marked"] = "tasks_marked"
    statuses: dict[str, TaskStatus]


@record
class PlanReady(_Event):
    type: Literal["plan_ready"] = "plan_ready"
    plan: Plan
    task_status: dict[str, TaskStatus] = field(default_factory=dict)


@record
class VerifyFinished(_Event):
    type: Literal["verify_finished"] = "verify_finished"
    exit_code: int
    output_tail: str = ""


@record
class MergeFinished(_Event):
    type: Literal["merge_finished"] = "merge_finished"
    outcome: MergeOutcome
    files: list[str] = field(default_factory=list)
    detail: str = ""


@record
class Pause(_Event):
    type: Literal["pause"] = "pause"
    stop_run: bool = False  # stop the running agent now, rather than let it finish


@record
class Resume(_Event):
    type: Literal["resume"] = "resume"


@record
class Cancel(_Event):
    type: Literal["cancel"] = "cancel"


@record
class Merge(_Event):
    type: Literal["merge"] = "merge"


@record
class Recover(_Event):
    type: Literal["recover"] = "recover"
    choice: RecoverChoice
    budget: dict[str, float] = field(default_factory=dict)  # budget keys raised (or lowered) for a retry


@record
class RateLimitReset(_Event):
    type: Literal["rate_limit_reset"] = "rate_limit_reset"


@record
class Restarted(_Event):
    type: Literal["restarted"] = "restarted"
    alive: dict[int, bool] = field(default_factory=dict)  # run n -> same pid and start time still there


@record
class LeaseLost(_Event):
    """Many machines (SPEC §10): this host's lease on the orchestration lapsed or was taken; it stops
    its agent at once and writes nothing more for it."""

    type: Literal["lease_lost"] = "lease_lost"
    reason: str


@record
class TakenOver(_Event):
    """Many machines: this host took the lapsed lease of `previous_host` (the `taken-over` commit is
    pushed with it), and resumes the orchestration from the feed and the pushed work branch."""

    type: Literal["taken_over"] = "taken_over"
    host: str
    previous_host: str


Event = (Start | AgentStarted | AgentSession | AgentFinished | TasksMarked | PlanReady | VerifyFinished | MergeFinished
         | Pause | Resume | Cancel | Merge | Recover | RateLimitReset | Restarted | LeaseLost | TakenOver)
EventType = Literal["start", "agent_started", "agent_session", "agent_finished", "tasks_marked", "plan_ready", "verify_finished",
                    "merge_finished", "pause", "resume", "cancel", "merge", "recover", "rate_limit_reset",
                    "restarted", "lease_lost", "taken_over"]


# ---- actions: what the shell is asked to do ----

@record
class RunAgent:
    type: Literal["run_agent"] = "run_agent"
    n: int
    phase: Phase
    batch: int | None
    purpose: Purpose
    prompt: PromptRequest
    resume_session: str | None
    fork: bool
    max_budget_usd: float
    task_ids: list[str]


@record
class StopAgent:
    type: Literal["stop_agent"] = "stop_agent"
    n: int
    reason: str


@record
class AdoptAgent:
    type: Literal["adopt_agent"] = "adopt_agent"
    n: int
    pid: int | None
    log_file: str | None


@record
class RunVerify:
    type: Literal["run_verify"] = "run_verify"
    command: str
    timeout_s: int


@record
class StopVerify:
    type: Literal["stop_verify"] = "stop_verify"
    reason: str


@record
class MergeBranch:
    type: Literal["merge_branch"] = "merge_branch"
    branch: str
    base_branch: str
    recheck: bool = False  # may be half done (restart): an already merged branch counts as merged


@record
class ReadPlan:
    type: Literal["read_plan"] = "read_plan"
    spec: str


@record
class CommitEvent:
    type: Literal["commit_event"] = "commit_event"
    subject: str
    event: FeedEvent
    trailers: dict[str, str]  # keys without the `Specflow-` prefix, as trailers.event_message takes


@record
class ScheduleWake:
    type: Literal["schedule_wake"] = "schedule_wake"
    at: datetime


@record
class WriteState:
    type: Literal["write_state"] = "write_state"


Action = (RunAgent | StopAgent | AdoptAgent | RunVerify | StopVerify | MergeBranch | ReadPlan | CommitEvent
          | ScheduleWake | WriteState)
