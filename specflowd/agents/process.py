"""Facts about agent processes: what environment they get, who they are across pid reuse, their group, their priority."""

from __future__ import annotations

import contextlib
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

from specflowd.core.environment import agent_env
from specflowd.core.vocab import AgentKind

# How far below the daemon agents run (nice steps): they are batch work, the daemon coordinates.
AGENT_NICE = 10
_AUTOGROUP = re.compile(r"/autogroup-\d+ nice (-?\d+)\n?")


def specflow_env(*, project: Path, spec: str, orchestration: str, tasks: Iterable[str], inbox: Path) -> dict[str, str]:
    """The variables of SPEC §9; task ids are space-separated for shell loops."""
    return {"SPECFLOW_PROJECT": str(project), "SPECFLOW_SPEC": spec, "SPECFLOW_ORCHESTRATION": orchestration,
            "SPECFLOW_TASKS": " ".join(tasks), "SPECFLOW_INBOX": str(inbox)}


def run_env(base: Mapping[str, str], kind: AgentKind, env_pass: Iterable[str], given: Mapping[str, str]) -> dict[str, str]:
    """The environment an agent of `kind` runs with (core/environment.py), with the API key
    variables its CLI's own configuration names."""
    return agent_env(base, kind, list(env_pass), also=cli_key_variables(kind, base), given=given)


def cli_key_variables(kind: AgentKind, base: Mapping[str, str]) -> list[str]:
    """Variables a CLI's configuration says hold its keys: Codex providers' `env_key`s."""
    if kind != AgentKind.CODEX:
        return []
    home = base.get("CODEX_HOME") or str(Path(base.get("HOME", "~")).expanduser() / ".codex")
    try:
        config = tomllib.loads((Path(home) / "config.toml").read_text())
    except (OSError, ValueError):
        return []
    providers = config.get("model_providers")
    return [p["env_key"] for p in (providers.values() if isinstance(providers, dict) else [])
            if isinstance(p, dict) and isinstance(p.get("env_key"), str)]


def _stat(pid: int) -> tuple[str, int] | None:
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count from the last ")".
    fields = data[data.rindex(b")") + 2:].split()
    return fields[0].decode(), int(fields[19])


def process_start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat: with the pid, it names one process across pid reuse."""
    stat = _stat(pid)
    return stat[1] if stat else None


def is_alive(pid: int, start_time: int) -> bool:
    """The very process started then still runs (a zombie waiting for its reaper does not)."""
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X") and stat[1] == start_time


def signal_group(pgid: int, sig: int) -> None:
    """Signal a process group that may be gone already."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def autogroup_nice(text: str) -> int | None:
    """The nice value in a /proc/<pid>/autogroup file ("/autogroup-123 nice 0"); None for a process
    in no autogroup, whose file is empty: a process of a session-less init, pid 1 itself among them."""
    match = _AUTOGROUP.fullmatch(text)
    return int(match[1]) if match else None


def lower_priority(pid: int, *, below: int) -> None:
    """Put agent `pid` AGENT_NICE steps below process `below` (the daemon). Agents are batch work and
    the daemon coordinates them: under CPU contention the daemon must keep answering the inbox.

    Each agent leads a session of its own, and where the kernel schedules sessions as groups
    (autogroup, on by default) a process's nice value weighs only inside its group: the agent's group
    gets the nice value too, which also covers every child the agent starts. A daemon in no autogroup
    competes among the root group's tasks, each at its own nice value; its group counts as nice 0.
    Best effort: a kernel without autogroups, or a process gone already, leaves the agent as it is."""
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, pid, min(19, os.getpriority(os.PRIO_PROCESS, below) + AGENT_NICE))
    with contextlib.suppress(OSError):
        own = autogroup_nice(Path(f"/proc/{below}/autogroup").read_text())
        Path(f"/proc/{pid}/autogroup").write_text(str(min(19, (own or 0) + AGENT_NICE)))
