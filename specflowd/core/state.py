"""The state of one orchestration (SPEC §6): plain records (`core/records.py`), written to
`.specflow/workflows/orchestration-<id>.json` and rebuilt from the branch history when lost."""

from __future__ import annotations

from dataclasses import field
from datetime import datetime

from specflowd.core.config import RunConfig
from specflowd.core.prices import TokenUsage
from specflowd.core.records import record
from specflowd.core.vocab import (
    ACTIVE,
    FINISHED,
    Awaiting,
    BatchStatus,
    ErrorType,
    PauseReason,
    Phase,
    Purpose,
    Status,
    TaskStatus,
    WorkKind,
)

SCHEMA_VERSION = 1


@record
class Work:
    """The next unit of work, kept while the orchestration may not go on (paused, usage-limited,
    needs attention): resume, the usage-limit reset and `recover retry` start it."""

    kind: WorkKind
    phase: Phase
    batch: int | None = None
    purpose: Purpose = Purpose.WORK
    resume_session: str | None = None  # resume (or, with fork, fork) this agent session
    fork: bool = False
    after_run: int | None = None  # the run whose failure a heal (or follow-up) answers
    continues: bool = False  # picks up an interrupted run (usage limit, restart, a stopping pause)


@record
class AgentRun:
    """One agent process: enough to adopt it after a daemon restart, or resume its session."""

    n: int  # 1-based run number within the orchestration; names its log file
    phase: Phase
    batch: int | None = None  # batch index (1-based) for implement runs
    purpose: Purpose = Purpose.WORK
    session_id: str | None = None
    resumed_from: str | None = None  # the session this run resumed or forked
    pid: int | None = None
    pid_start_time: int | None = None  # /proc/<pid>/stat field 22, to tell pid reuse apart
    log_file: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    exit_code: int | None = None
    ok: bool | None = None
    error_type: ErrorType | None = None
    error: str | None = None
    cost_usd: float = 0.0
    turns: int | None = None
    max_budget_usd: float | None = None  # the cap the run was started with
    stderr_tail: str | None = None  # kept for a failed run: a healer is given them
    transcript_tail: str | None = None
    stop_requested: bool = False  # the machine asked the shell to stop it (pause, cancel)
    base_commit: str | None = None  # the work branch's tip when it started: the run's commits come after
    tokens: TokenUsage | None = None  # all models together
    cost_estimated: bool = False  # cost_usd was worked out from tokens and prices
    unpriced: list[str] = field(default_factory=list)  # models it used that have no price
    refused: list[str] = field(default_factory=list)  # tool calls its CLI refused
    session_cost_usd: float | None = None  # its session's running totals at its end, as its CLI said
    session_tokens: dict[str, TokenUsage] = field(default_factory=dict)


@record
class BatchState:
    index: int  # 1-based
    name: str
    task_ids: list[str]
    status: BatchStatus = BatchStatus.PENDING
    heal_attempts: int = 0
    followups: int = 0
    runs: list[int] = field(default_factory=list)  # AgentRun.n of this batch's runs
    cost_usd: float = 0.0
    error: str | None = None
    cost_at_retry: float = 0.0  # the batch's cost when `recover retry` gave it a fresh per-batch budget


@record
class Decision:
    at: datetime
    decision: str
    reason: str


@record
class OrchestrationState:
    schema_version: int = SCHEMA_VERSION
    id: str
    spec: str
    project: str  # the project root
    status: Status = Status.RUNNING
    phase: Phase = Phase.DESIGN
    config: RunConfig = field(default_factory=RunConfig)
    batches: list[BatchState] = field(default_factory=list)
    current_batch: int | None = None  # 1-based index of the batch being worked on
    runs: list[AgentRun] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    total_cost_usd: float = 0.0
    healing_cost_usd: float = 0.0
    error: str | None = None
    waiting_until: datetime | None = None  # a usage limit's reset, while paused for it
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None  # set by the machine's Start event
    task_file: str | None = None  # the task list, relative to the design-docs worktree
    design_prompt: str = ""  # what the design phase is asked to write the spec from
    task_status: dict[str, TaskStatus] = field(default_factory=dict)
    awaiting: Awaiting | None = None
    pause_reason: PauseReason | None = None
    next_work: Work | None = None
    verify_heal_attempts: int = 0
    verify_output: str | None = None  # tail of the last failed verify
    merge_requested: bool = False  # someone asked for the merge (or a retry of it): no waiting_merge
    rate_limit_hits: int = 0  # usage limits in a row, for the back-off when no reset time is given
    # Many machines (SPEC §10): the host whose lease runs it ("" on one machine), and when this
    # host lost that lease; from then on it writes nothing for it, and does not act on it.
    host: str = ""
    lease_lost_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE and self.lease_lost_at is None

    @property
    def cost_estimated(self) -> bool:
        """Some of the cost was worked out from tokens (or could not be: a model had no price)."""
        return any(r.cost_estimated or r.unpriced for r in self.runs)


def batch_label(state: OrchestrationState, b: BatchState) -> str:
    return f"{b.index}/{len(state.batches)} {b.name}"


def remaining_tasks(state: OrchestrationState, b: BatchState) -> list[str]:
    return [t for t in b.task_ids if state.task_status.get(t, TaskStatus.PENDING) not in FINISHED]
