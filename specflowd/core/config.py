"""Settings: the models of `.specflow/config.toml` and of the user config (SPEC §8), their
defaults, and turning TOML text into them and back. The files themselves are read by
`repo/settings.py`."""

from __future__ import annotations

import tomllib
from typing import Any, TypeVar

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from specflowd.core.vocab import DESIGN_DOCS_BRANCH, DESIGN_DOCS_WORKTREE, AgentKind, LogLevel
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
    allowed_tools: list[str] = Field(default_factory=list)
    disallowed_tools: list[str] = Field(default_factory=lambda: ["AskUserQuestion"])
    max_turns: int = Field(50, ge=1)
    timeout_s: int = Field(3600, ge=1)


class DaemonConfig(_Section):
    log_level: LogLevel = LogLevel.INFO


class HealConfig(_Section):
    """The healer's own settings: it fixes one failure, with a tighter leash than a worker."""

    model: str = ""  # empty: [agent] model
    max_turns: int = Field(15, ge=1)


class PoolConfig(_Section):
    max_agents: int = Field(4, ge=1, le=256)


class RemoteConfig(_Section):
    """Many machines (SPEC §10): the git remote a fleet of daemons shares; "" = one machine."""

    # A remote's name, never a URL: it is passed to git as one argument, and names the remote's refs.
    name: str = Field("", pattern=r"^([A-Za-z0-9][A-Za-z0-9._-]{0,99})?$")
    host: str = Field("", pattern=r"^([A-Za-z0-9][A-Za-z0-9._-]{0,62})?$")  # "" = the machine's hostname
    sync_interval_s: float = Field(5, gt=0, le=3600)
    lease_s: float = Field(60, gt=0, le=86400)


class Config(_Section):
    design_docs: DesignDocsConfig = Field(default_factory=DesignDocsConfig)
    orchestration: OrchestrationConfig = Field(default_factory=OrchestrationConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    agent: AgentConfig = Field(default_factory=AgentConfig)
    heal: HealConfig = Field(default_factory=HealConfig)
    pool: PoolConfig = Field(default_factory=PoolConfig)
    daemon: DaemonConfig = Field(default_factory=DaemonConfig)
    remote: RemoteConfig = Field(default_factory=RemoteConfig)


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


def layered(user: UserConfig, project: Config) -> Config:
    """A project's settings over the user's: every key the project's file sets wins, every other
    key is the user config's, else the default. [design_docs] is the project's own (its hooks and
    light commands read it from the project's file alone)."""
    merged: dict[str, Any] = user.model_dump(exclude_unset=True, exclude={"projects", "design_docs"})
    for section, values in project.model_dump(exclude_unset=True).items():
        merged[section] = {**merged.get(section, {}), **values}
    return Config.model_validate(merged)


CONFIG_HEADER = """\
# specflowd project settings: every key and its meaning in README, 'Configuration'.
# A commented key is not set here: it comes from the user config ($XDG_CONFIG_HOME/specflowd/config.toml,
# e.g. [agent] or [budget] for all your projects), else it is the default shown.
"""


def render_config(config: Config) -> str:
    """The config file for `config`: a key whose value is not the default is set, every other key is
    shown commented with its default, so that the user config's settings still apply to it."""
    defaults = Config().model_dump(mode="json")
    lines = [CONFIG_HEADER]
    for section, values in config.model_dump(mode="json").items():
        lines.append(f"\n[{section}]")
        for key, value in values.items():
            text = tomli_w.dumps({key: value}).rstrip("\n")
            lines.append(text if value != defaults[section][key] else "\n".join(f"# {t}" for t in text.splitlines()))
    return "\n".join(lines) + "\n"
