"""OpenAI Codex CLI (`codex exec --json`, `exec resume <id>`, `exec fork <id>`): its command line and its stream."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from specflowd.agents.result import AgentRequest
from specflowd.agents.stream import (
    Adapter,
    Final,
    Observation,
    as_int,
    common_flags,
    json_lines,
    string,
    task_in,
)
from specflowd.core.prices import TokenUsage

_TOOL_ITEMS = {"command_execution", "file_change", "mcp_tool_call", "web_search"}
_KEYS = ('"thread.started"', '"turn.', '"error"', '"agent_message"', *(f'"{item}"' for item in _TOOL_ITEMS))
PROFILE = "specflowd"
# How `codex exec --json` says it cannot reach its API; it then retries with no end.
_UNREACHABLE = ("waiting for network", "Connection failed", "error sending request")


def argv(req: AgentRequest, prompt_file: Path) -> list[str]:
    # Commands run through bash without a login profile, which would reset the PATH specflowd gives
    # (its own folder first); nobody answers approval requests in exec mode.
    args = [*req.command, "exec", "--json", *common_flags(req, {"model": "--model"}),
            "-c", "allow_login_shell=false", "-c", 'approval_policy="never"', *_sandbox(req)]
    if req.resume_session_id:
        args += ["fork" if req.fork_session else "resume", req.resume_session_id]
    return [*args, "-"]  # the prompt from stdin


def _sandbox(req: AgentRequest) -> list[str]:
    """specflowd's permission profile, or the sandbox mode asked for.

    Codex's workspace-write sandbox keeps every `.git` under the workspace read-only, and for a
    worktree the git directory it points to: no commit can be made. The profile is that sandbox's
    rules (read everywhere, write in the worktree and temp folders, no network for commands) plus
    write access to the repository's git directories and specflowd's inbox, so an agent can commit
    and mark without the sandbox being switched off."""
    if req.permission_mode:
        return ["-s", req.permission_mode]
    rules: dict[str, str | dict[str, str]] = {":root": "read", ":project_roots": {".": "write"}, ":tmpdir": "write",
                                              ":slash_tmp": "write"}
    rules.update({str(folder): "write" for folder in req.write_dirs})
    entries = ", ".join(f"{json.dumps(k)}={_toml(v)}" for k, v in rules.items())
    return ["-c", f'default_permissions="{PROFILE}"', "-c", f"permissions.{PROFILE}={{filesystem={{{entries}}}}}"]


def _toml(value: str | dict[str, str]) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    return "{" + ", ".join(f"{json.dumps(k)}={json.dumps(v)}" for k, v in value.items()) + "}"


def parse_event(event: dict[str, Any]) -> Observation | None:
    kind = event.get("type")
    if kind == "thread.started":
        return Observation(session_id=string(event, "thread_id"))
    if kind == "turn.completed":
        return Observation(turn=True, tokens=_tokens(event.get("usage")), final=Final(ok=True))
    if kind == "turn.failed":
        message = _message(event.get("error"))
        return Observation(turn=True, error=message, final=Final(ok=False, text=message))
    if kind == "error":
        message = _message(event)
        return Observation(error=message, unreachable=any(s in message for s in _UNREACHABLE) or None)
    if isinstance(kind, str) and kind.startswith("item.") and isinstance(event.get("item"), dict):
        return _item(event["item"])
    return None


def _tokens(usage: object) -> dict[str, TokenUsage] | None:
    """A turn's usage; Codex does not name the model, so it is the one the run was given ("")."""
    if not isinstance(usage, dict):
        return None
    cached = as_int(usage.get("cached_input_tokens")) or 0
    return {"": TokenUsage(input=max(0, (as_int(usage.get("input_tokens")) or 0) - cached), cache_read=cached,
                           output=as_int(usage.get("output_tokens")) or 0,
                           cache_write=as_int(usage.get("cache_write_input_tokens")) or 0)}


def _message(value: object) -> str:
    return value["message"] if isinstance(value, dict) and isinstance(value.get("message"), str) else ""


def _item(item: dict[str, Any]) -> Observation | None:
    kind = item.get("type")
    if kind == "agent_message":
        return Observation(text=string(item, "text"))
    if kind in _TOOL_ITEMS:
        name = string(item, "tool") or kind
        return Observation(tool=name, task_id=task_in(item.get("command")))
    return None


ADAPTER = Adapter(kind="codex", argv=argv, parse_line=json_lines(parse_event), keys=_KEYS,
                  session_totals=True)
