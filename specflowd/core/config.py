"""Settings: the models of `.specflow/config.toml` and of the user config (SPEC §8), their
defaults, and turning TOML text into them and back. The files themselves are read by
`repo/settings.py`."""

from __future__ import annotations

import tomllib
from dataclasses import field
from typing import Annotated, Any, TypeVar

import tomli_w

from specflowd.core import records
from specflowd.core.prices import Price
from specflowd.core.records import Check, RecordError, record
from specflowd.core.vocab import (
    DESIGN_DOCS_BRANCH,
    DESIGN_DOCS_WORKTREE,
    PERMISSION_MODES,
    AgentKind,
    LogLevel,
)
from specflowd.errors import UserError


@record
class DesignDocsConfig:
    # Plain names only: the branch is written into the git hooks' shell scripts.
    branch: Annotated[str, Check(pattern=r"[A-Za-z0-9][A-Za-z0-9._/-]{0,99}")] = DESIGN_DOCS_BRANCH
    worktree: str = DESIGN_DOCS_WORKTREE


@record
class OrchestrationConfig:
    base_branch: str = "main"
    auto_merge: bool = False
    skip_design: bool = False
    skip_analyze: bool = False
    auto_heal: bool = True
    max_heal_attempts: Annotated[int, Check(ge=0, le=20)] = 1
    batch_size: Annotated[int, Check(ge=1, le=1000)] = 15
    pause_between_batches: bool = False
    verify_command: str = ""


@record
class BudgetConfig:
    per_batch: Annotated[float, Check(ge=0)] = 5.0
    healing: Annotated[float, Check(ge=0)] = 2.0
    total: Annotated[float, Check(ge=0)] = 50.0


@record
class AgentConfig:
    kind: AgentKind = AgentKind.CLAUDE
    command: str = "claude"
    model: str = "sonnet"
    fallback_model: str = "haiku"
    # Added to what the prompts need (core/permissions.py), never replacing it.
    allowed_tools: list[str] = field(default_factory=list)
    disallowed_tools: list[str] = field(default_factory=lambda: ["AskUserQuestion"])
    # "": specflowd's setting per CLI; else the CLI's own mode (vocab.PERMISSION_MODES).
    permission_mode: str = ""
    # Environment variables agents get besides what their CLI needs (core/environment.py); ["*"]: all.
    env_pass: list[str] = field(default_factory=list)
    # USD per million tokens by model, over the shipped table (core/prices.py).
    prices: dict[str, Price] = field(default_factory=dict)
    max_turns: Annotated[int, Check(ge=1)] = 50
    timeout_s: Annotated[int, Check(ge=1)] = 3600

    def __post_init__(self) -> None:
        modes = PERMISSION_MODES[self.kind]
        if self.permission_mode not in modes:
            known = ", ".join(repr(m) for m in sorted(modes))
            raise RecordError("permission_mode",
                              f"{self.permission_mode!r} is not one of {self.kind.value}'s: {known}")


@record
class DaemonConfig:
    log_level: LogLevel = LogLevel.INFO


@record
class HealConfig:
    """The healer's own settings: it fixes one failure, with a tighter leash than a worker."""

    model: str = ""  # empty: [agent] model
    max_turns: Annotated[int, Check(ge=1)] = 15


@record
class PoolConfig:
    max_agents: Annotated[int, Check(ge=1, le=256)] = 4


@record
class RemoteConfig:
    """Many machines (SPEC §10): the git remote a fleet of daemons shares; "" = one machine."""

    # A remote's name, never a URL: it is passed to git as one argument, and names the remote's refs.
    name: Annotated[str, Check(pattern=r"([A-Za-z0-9][A-Za-z0-9._-]{0,99})?")] = ""
    host: Annotated[str, Check(pattern=r"([A-Za-z0-9][A-Za-z0-9._-]{0,62})?")] = ""  # "" = the machine's hostname
    sync_interval_s: Annotated[float, Check(ge=0.1, le=3600)] = 5.0
    lease_s: Annotated[float, Check(ge=0.5, le=86400)] = 60.0


@record
class RunConfig:
    """The settings an orchestration runs with, frozen at start (request overrides applied) and
    kept in its state file."""

    orchestration: OrchestrationConfig = field(default_factory=OrchestrationConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    heal: HealConfig = field(default_factory=HealConfig)


@record
class Config(RunConfig):
    """A project's settings: what its orchestrations run with, and the project-wide rest."""

    design_docs: DesignDocsConfig = field(default_factory=DesignDocsConfig)
    pool: PoolConfig = field(default_factory=PoolConfig)
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    remote: RemoteConfig = field(default_factory=RemoteConfig)


@record
class UserConfig(Config):
    """`$XDG_CONFIG_HOME/specflowd/config.toml`: defaults for every project, and the projects served."""

    projects: list[str] = field(default_factory=list)


C = TypeVar("C", bound="Config")

# What a settings file sets: section -> key -> checked value (and `projects`, in the user's).
# Layering needs to know what a file says, not only what the result is.
Settings = dict[str, Any]


def parse_settings(text: str, model: type[Config], where: str) -> Settings:
    """TOML text checked against `model`, as what it sets; a UserError naming `where` and the first
    bad key otherwise."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{where} is not valid TOML: {e}") from None
    try:
        top = records.given(model, {k: v for k, v in data.items() if not isinstance(v, dict)})
        for name, values in data.items():
            if isinstance(values, dict):
                kind = records.given(model, {name: {}})[name]  # an unknown section is named here
                top[name] = records.given(type(kind), values, name)
    except RecordError as e:
        raise UserError(f"{where}: {e}") from None
    return top


def build(model: type[C], *layers: Settings) -> C:
    """The settings `layers` make, later ones winning key by key; defaults where none says.
    RecordError when the keys together do not fit (a permission mode of another agent kind)."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for name, values in layer.items():
            merged[name] = {**merged.get(name, {}), **values} if isinstance(values, dict) else values
    defaults = model()
    return records.make(model, {name: (records.make(type(getattr(defaults, name)), values, name)
                                       if isinstance(values, dict) else values) for name, values in merged.items()})


def layered(user: Settings, project: Settings, where: str) -> Config:
    """A project's settings over the user's: every key the project's file sets wins, every other
    key is the user config's, else the default. [design_docs] is the project's own (its hooks and
    light commands read it from the project's file alone). UserError naming `where` when they do
    not fit together."""
    mine = {k: v for k, v in user.items() if k not in ("projects", "design_docs")}
    try:
        return build(Config, mine, project)
    except RecordError as e:
        raise UserError(f"{where}: {e}") from None


CONFIG_HEADER = """\
# specflowd project settings: every key and its meaning in README, 'Configuration'.
# A commented key is not set here: it comes from the user config ($XDG_CONFIG_HOME/specflowd/config.toml,
# e.g. [agent] or [budget] for all your projects), else it is the default shown.
"""


def render_config(config: Config) -> str:
    """The config file for `config`: a key whose value is not the default is set, every other key is
    shown commented with its default, so that the user config's settings still apply to it."""
    defaults = records.dump(Config())
    lines = [CONFIG_HEADER]
    for name, values in records.dump(config).items():
        lines.append(f"\n[{name}]")
        for key, value in values.items():
            text = tomli_w.dumps({key: value}).rstrip("\n")
            lines.append(text if value != defaults[name][key] else "\n".join(f"# {t}" for t in text.splitlines()))
    return "\n".join(lines) + "\n"
