"""The state of one orchestration (SPEC §6): plain pydantic data, written to
`.specflow/workflows/orchestration-<id>.json` and rebuilt from the branch history when lost."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from specflowd.core.config import AgentConfig, BudgetConfig, HealConfig, OrchestrationConfig
from specflowd.core.vocab import (
    ACTIVE,
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


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Work(Model):
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


class AgentRun(Model):
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


class BatchState(Model):
    index: int  # 1-based
    name: str
    task_ids: list[str]
    status: BatchStatus = BatchStatus.PENDING
    heal_attempts: int = 0
    followups: int = 0
    runs: list[int] = Field(default_factory=list)  # AgentRun.n of this batch's runs
    cost_usd: float = 0.0
    error: str | None = None
    cost_at_retry: float = 0.0  # the batch's cost when `recover retry` gave it a fresh per-batch budget


class Decision(Model):
    at: datetime
    decision: str
    reason: str


class RunConfig(Model):
    """The settings an orchestration runs with, frozen at start (request overrides applied)."""

    orchestration: OrchestrationConfig = Field(default_factory=OrchestrationConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    agent: AgentConfig = Field(default_factory=AgentConfig)
    heal: HealConfig = Field(default_factory=HealConfig)


class OrchestrationState(Model):
    schema_version: int = SCHEMA_VERSION
    id: str
    spec: str
    project: str  # the project root
    status: Status = Status.RUNNING
    phase: Phase = Phase.DESIGN
    config: RunConfig = Field(default_factory=RunConfig)
    batches: list[BatchState] = Field(default_factory=list)
    current_batch: int | None = None  # 1-based index of the batch being worked on
    runs: list[AgentRun] = Field(default_factory=list)
    decisions: list[Decision] = Field(default_factory=list)
    total_cost_usd: float = 0.0
    healing_cost_usd: float = 0.0
    error: str | None = None
    waiting_until: datetime | None = None  # a usage limit's reset, while paused for it
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None  # set by the machine's Start event
    task_file: str | None = None  # the task list, relative to the design-docs worktree
    design_prompt: str = ""  # what the design phase is asked to write the spec from
    task_status: dict[str, TaskStatus] = Field(default_factory=dict)
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
