"""The state of one orchestration (SPEC §6): plain pydantic data, written to
`.specflow/workflows/orchestration-<id>.json` and rebuilt from the branch history when lost."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from specflowd.config import AgentConfig, BudgetConfig, OrchestrationConfig

SCHEMA_VERSION = 1


def utcnow() -> datetime:
    return datetime.now(UTC)


class Phase(StrEnum):
    DESIGN = "design"
    ANALYZE = "analyze"
    IMPLEMENT = "implement"
    VERIFY = "verify"
    MERGE = "merge"


PHASES: tuple[Phase, ...] = tuple(Phase)


class Status(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    WAITING_MERGE = "waiting_merge"
    NEEDS_ATTENTION = "needs_attention"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE = frozenset({Status.RUNNING, Status.PAUSED, Status.WAITING_MERGE, Status.NEEDS_ATTENTION})
TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})


class BatchStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    HEALING = "healing"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AgentRun(Model):
    """One agent process: enough to adopt it after a daemon restart, or resume its session."""

    n: int  # 1-based run number within the orchestration; names its log file
    phase: Phase
    batch: int | None = None  # batch index (1-based) for implement runs
    purpose: str = "work"  # work | followup | heal | design | analyze
    session_id: str | None = None
    resumed_from: str | None = None  # the session this run resumed or forked
    pid: int | None = None
    pid_start_time: int | None = None  # /proc/<pid>/stat field 22, to tell pid reuse apart
    log_file: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    exit_code: int | None = None
    ok: bool | None = None
    error_type: str | None = None
    error: str | None = None
    cost_usd: float = 0.0
    turns: int | None = None


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


class Decision(Model):
    at: datetime = Field(default_factory=utcnow)
    decision: str
    reason: str


class RunConfig(Model):
    """The settings an orchestration runs with, frozen at start (request overrides applied)."""

    orchestration: OrchestrationConfig = Field(default_factory=OrchestrationConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    agent: AgentConfig = Field(default_factory=AgentConfig)


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
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE
