"""The environment of every process specflowd starts: agents, the verify command and its own git.
Pure: the caller passes its own environment in.

Two rules hold for every child:

- Git's location variables never pass. A git hook runs with GIT_DIR, GIT_INDEX_FILE and friends set,
  and a daemon started from one (or with GIT_DIR exported by hand) would point its children's git at
  another repository: an agent's commits landed in another repository while the orchestration said
  `completed`.
- systemd's handshake (NOTIFY_SOCKET, WATCHDOG_*) is the daemon's: a child pinging the watchdog would lie.

Agents get less: only the variables `[agent] env_pass` names (exact names or globs), on top of what
the chosen CLI needs (`needed`): its API key and endpoint variables, PATH, HOME, the locale, proxy
settings, TERM, and the variables of the CLI's own configuration. `env_pass = ["*"]` passes
everything (but the two rules above). A daemon's environment holds cloud keys, tokens and
SSH_AUTH_SOCK that an agent has no business with.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from fnmatch import fnmatchcase

from specflowd.core.vocab import AgentKind

GIT_LOCATION_VARS = frozenset({
    "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_PREFIX", "GIT_NAMESPACE", "GIT_QUARANTINE_PATH",
    "GIT_REFLOG_ACTION", "GIT_EDITOR", "GIT_CEILING_DIRECTORIES", "GIT_DISCOVERY_ACROSS_FILESYSTEM",
})
DAEMON_ONLY = frozenset({"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"})

# What any agent CLI needs to start, find its programs and reach its API (through a proxy if set).
_COMMON = (
    "PATH", "PYTHONPATH", "VIRTUAL_ENV", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "COLORTERM", "NO_COLOR",
    "TZ", "TMPDIR",
    "LANG", "LANGUAGE", "LC_*", "XDG_*",
    "http_proxy", "https_proxy", "no_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE",
    # git: who commits, and the configuration files git reads (not where the repository is)
    "GIT_AUTHOR_*", "GIT_COMMITTER_*", "GIT_CONFIG_*",
    # specflowd's own settings (the demo agent's, the log level)
    "SPECFLOWD_*",
)
_BY_KIND: dict[AgentKind, tuple[str, ...]] = {
    AgentKind.CLAUDE: ("ANTHROPIC_*", "CLAUDE_*", "DISABLE_TELEMETRY", "DISABLE_ERROR_REPORTING",
                       "DISABLE_AUTOUPDATER", "DISABLE_BUG_COMMAND", "DISABLE_COST_WARNINGS", "API_TIMEOUT_MS",
                       "MAX_THINKING_TOKENS", "BASH_DEFAULT_TIMEOUT_MS", "BASH_MAX_TIMEOUT_MS", "MCP_*"),
    AgentKind.CODEX: ("OPENAI_*", "CODEX_*", "AZURE_OPENAI_*"),
    AgentKind.GEMINI: ("GEMINI_*", "GOOGLE_*"),
    AgentKind.AIDER: ("AIDER_*", "LITELLM_*", "OPENAI_*", "ANTHROPIC_*", "GEMINI_*", "*_API_KEY", "*_API_BASE"),
    AgentKind.COMMAND: (),
}
# Claude Code on Bedrock or Vertex AI authenticates with those clouds' own variables.
_CLAUDE_CLOUDS = {"CLAUDE_CODE_USE_BEDROCK": ("AWS_*",),
                  "CLAUDE_CODE_USE_VERTEX": ("GOOGLE_*", "CLOUD_ML_REGION", "VERTEX_REGION_*", "GCLOUD_*")}


def needed(kind: AgentKind, base: Mapping[str, str]) -> tuple[str, ...]:
    """The names and globs the CLI of `kind` needs from `base` (the daemon's environment)."""
    patterns = _COMMON + _BY_KIND[kind]
    if kind == AgentKind.CLAUDE:
        for switch, more in _CLAUDE_CLOUDS.items():
            if base.get(switch, "").strip() not in ("", "0", "false"):
                patterns += more
    return patterns


def child_env(base: Mapping[str, str]) -> dict[str, str]:
    """What any child gets of `base`: everything but git's location variables and systemd's handshake."""
    return {k: v for k, v in base.items() if k not in GIT_LOCATION_VARS and k not in DAEMON_ONLY}


def agent_env(base: Mapping[str, str], kind: AgentKind, env_pass: Sequence[str], *,
              also: Iterable[str] = (), given: Mapping[str, str] | None = None) -> dict[str, str]:
    """An agent's environment: of `base`, the variables the CLI needs, those `env_pass` names and the
    names in `also` (read from the CLI's own configuration); then `given` (specflowd's own
    variables, the repository's git identity, PATH with specflowd first) on top."""
    patterns = (*needed(kind, base), *env_pass, *also)
    exact = {p for p in patterns if not any(c in p for c in "*?[")}
    globs = [p for p in patterns if p not in exact]
    env = {k: v for k, v in child_env(base).items() if k in exact or any(fnmatchcase(k, g) for g in globs)}
    env.update(given or {})
    return env


def path_with(first: str | None, path: str | None) -> str:
    """PATH with `first` in front (once), for a child that must find that program before any other."""
    rest = [p for p in (path or "").split(":") if p and p != first]
    return ":".join([first, *rest] if first else rest)
