"""What goes into an agent run and what comes out of it: request, live events, result."""

from __future__ import annotations

import shlex
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Kind = Literal["claude", "codex", "gemini", "aider", "command"]


class ErrorType(StrEnum):
    TIMEOUT = "timeout"
    BUDGET_EXCEEDED = "budget_exceeded"
    MAX_TURNS = "max_turns"
    PROCESS_FAILED = "process_failed"
    INVALID_SESSION = "invalid_session"
    RATE_LIMITED = "rate_limited"
    CANCELLED = "cancelled"
    BAD_OUTPUT = "bad_output"


class AgentRequest(BaseModel):
    """Everything an adapter needs to build one run; the daemon maps `[agent]` config onto it."""

    model_config = ConfigDict(frozen=True)

    kind: Kind = "claude"
    # Program and fixed arguments; empty means the CLI's usual name (the kind).
    command: list[str] = Field(default_factory=list)
    prompt: str
    cwd: Path
    model: str | None = None
    fallback_model: str | None = None
    allowed_tools: list[str] = Field(default_factory=list)
    disallowed_tools: list[str] = Field(default_factory=list)
    max_turns: int | None = Field(default=None, ge=1)
    max_budget_usd: float | None = Field(default=None, gt=0)
    timeout_s: float = Field(default=3600.0, gt=0)
    resume_session_id: str | None = None
    fork_session: bool = False
    append_system_prompt: str | None = None
    permission_mode: str | None = None
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("command", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        # Config files give a string ("claude" or "/opt/bin/agent --fast"); never run through a shell.
        return shlex.split(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _default_command(self) -> AgentRequest:
        if not self.command:
            if self.kind == "command":
                raise ValueError("the command kind needs a command")
            object.__setattr__(self, "command", [self.kind])
        return self


class AgentResult(BaseModel):
    """The one result shape of every agent CLI."""

    ok: bool
    error_type: ErrorType | None = None
    session_id: str | None = None
    cost_usd: float = 0.0
    turns: int = 0
    duration_s: float = 0.0
    text: str = ""
    stderr_tail: str = ""
    exit_code: int | None = None
    rate_limit_resets_at: datetime | None = None


class RunRecord(BaseModel):
    """What the state file keeps of a run so that a restarted daemon can adopt it."""

    run_id: str
    kind: Kind
    orchestration: str = ""
    pid: int
    start_time: int  # /proc/<pid>/stat field 22: tells a live run from a reused pid
    log_path: Path
    log_offset: int = 0
    stderr_path: Path
    started_at: float  # wall clock, for the timeout of an adopted run
    timeout_s: float
    session_id: str | None = None


class RunStarted(BaseModel):
    run_id: str
    pid: int
    start_time: int
    log_path: Path
    adopted: bool = False


class RunProgress(BaseModel):
    run_id: str
    session_id: str | None = None
    tool: str | None = None
    cost_usd: float | None = None
    task_id: str | None = None


class RunFinished(BaseModel):
    run_id: str
    result: AgentResult


class RunInterrupted(BaseModel):
    """The process is gone without a result (the daemon was down): resume from the session."""

    run_id: str
    session_id: str | None
    log_path: Path


RunEvent = RunStarted | RunProgress | RunFinished | RunInterrupted
