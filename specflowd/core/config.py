"""Settings: the models of `.specflow/config.toml` and of the user config (SPEC §8), their
defaults, and turning TOML text into them and back. The files themselves are read by
`repo/settings.py`."""

from __future__ import annotations

import tomllib
from typing import TypeVar

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from specflowd.core.prices import Price
from specflowd.core.vocab import (
    DESIGN_DOCS_BRANCH,
    DESIGN_DOCS_WORKTREE,
    PERMISSION_MODES,
    AgentKind,
    LogLevel,
)
from specflowd.errors import UserError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DesignDocsConfig(_Section):
    # Plain names only: the branch is written into the git hooks' shell scripts.
    branch: str = Field(DESIGN_DOCS_BRANCH, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")
    worktree: str = DESIGN_DOCS_WORKTREE


class OrchestrationConfig(_Section):
    base_branch: str = "main"
    auto_merge: bool = False
    skip_design: bool = False
    skip_analyze: bool = False
    auto_heal: bool = True
    max_heal_attempts: int = Field(1, ge=0, le=20)
    batch_size: int = Field(15, ge=1, le=1000)
    pause_between_batches: bool = False
    verify_command: str = ""


class BudgetConfig(_Section):
    per_batch: float = Field(5.0, ge=0)
    healing: float = Field(2.0, ge=0)
    total: float = Field(50.0, ge=0)


class AgentConfig(_Section):
    kind: AgentKind = AgentKind.CLAUDE
    command: str = "claude"
    model: str = "sonnet"
    fallback_model: str = "haiku"
    # Added to what the prompts need (core/permissions.py), never replacing it.
    allowed_tools: list[str] = Field(default_factory=list)
    disallowed_tools: list[str] = Field(default_factory=lambda: ["AskUserQuestion"])
    # "": specflowd's setting per CLI; else the CLI's own mode (vocab.PERMISSION_MODES).
    permission_mode: str = ""
    # Environment variables agents get besides what their CLI needs (core/environment.py); ["*"]: all.
    env_pass: list[str] = Field(default_factory=list)
    # USD per million tokens by model, over the shipped table (core/prices.py).
    prices: dict[str, Price] = Field(default_factory=dict)
    max_turns: int = Field(50, ge=1)
    timeout_s: int = Field(3600, ge=1)

    @model_validator(mode="after")
    def _known_permission_mode(self) -> AgentConfig:
        modes = PERMISSION_MODES[self.kind]
        if self.permission_mode not in modes:
            known = ", ".join(repr(m) for m in sorted(modes))
            raise ValueError(f"permission_mode {self.permission_mode!r} is not one of {self.kind.value}'s: {known}")
        return self


class DaemonConfig(_Section):
    log_level: LogLevel = LogLevel.INFO


class PoolConfig(_Section):
    max_agents: int = Field(4, ge=1, le=256)


class Config(_Section):
    design_docs: DesignDocsConfig = Field(default_factory=DesignDocsConfig)
    orchestration: OrchestrationConfig = Field(default_factory=OrchestrationConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    agent: AgentConfig = Field(default_factory=AgentConfig)
    pool: PoolConfig = Field(default_factory=PoolConfig)
    daemon: DaemonConfig = Field(default_factory=DaemonConfig)


class UserConfig(Config):
    """`$XDG_CONFIG_HOME/specflowd/config.toml`: defaults for every project, and the projects served."""

    projects: list[str] = Field(default_factory=list)


def describe_validation_error(e: ValidationError, where: str) -> str:
    first = e.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    return f"{where}: {loc}: {first['msg']}"


M = TypeVar("M", bound="Config")


def parse_config(text: str, model: type[M], where: str) -> M:
    """TOML text validated as `model`; a UserError naming `where` and the first bad key otherwise."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{where} is not valid TOML: {e}") from None
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise UserError(describe_validation_error(e, where)) from None


def render_config(config: Config) -> str:
    # tomli-w writes no comments; README's configuration reference explains every key.
    header = "# specflowd project settings. Every key and its meaning: see README, 'Configuration'.\n\n"
    return header + tomli_w.dumps(config.model_dump(mode="json", exclude_none=True))
