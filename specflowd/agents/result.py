"""What goes into an agent run and what the supervisor reports of it: the request, the record
that lets a restarted daemon adopt the run, and the events it posts (the result itself is the
machine's `RunResult`)."""

from __future__ import annotations

import shlex
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from specflowd.core.events import RunResult
from specflowd.core.vocab import AgentKind


class AgentRequest(BaseModel):
    """Everything an adapter needs to build one run; the daemon maps `[agent]` config onto it."""

    model_config = ConfigDict(frozen=True)

    kind: AgentKind = AgentKind.CLAUDE
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
    permission_mode: str = ""  # "": specflowd's setting for the CLI; else the CLI's own mode
    verify_command: str = ""  # the project's, which the agent may run
    read_dirs: list[Path] = Field(default_factory=list)  # besides cwd: the spec's documents
    write_dirs: list[Path] = Field(default_factory=list)  # besides cwd: the git directories, the inbox
    # The daemon's environment passes through `env_pass` (core/environment.py; the daemon gives
    # `[agent] env_pass`), then `env` is set on top.
    env_pass: list[str] = Field(default_factory=lambda: ["*"])
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("command", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        # Config files give a string ("claude" or "/opt/bin/agent --fast"); never run through a shell.
        return shlex.split(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _default_command(self) -> AgentRequest:
        if not self.command:
            if self.kind == AgentKind.COMMAND:
                raise ValueError("the command kind needs a command")
            object.__setattr__(self, "command", [self.kind])
        return self


class RunRecord(BaseModel):
    """What the state file keeps of a run so that a restarted daemon can adopt it."""

    run_id: str
    kind: AgentKind
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
    """What a run is doing, posted when it changes: the daemon keeps the session id (a restart
    resumes that session) and logs the rest at debug level."""

    run_id: str
    session_id: str | None = None
    tool: str | None = None
    cost_usd: float | None = None
    task_id: str | None = None


class RunFinished(BaseModel):
    run_id: str
    result: RunResult


class RunInterrupted(BaseModel):
    """The process is gone without a result (the daemon was down): resume from the session."""

    run_id: str
    session_id: str | None
    log_path: Path

