"""OpenAI Codex CLI (`codex exec --json`, `codex exec resume <id>`): its command line and its stream."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from specflowd.agents.result import AgentRequest
from specflowd.agents.stream import Adapter, Final, Observation, common_flags, json_lines, string, task_in

_TOOL_ITEMS = {"command_execution", "file_change", "mcp_tool_call", "web_search"}
_KEYS = ('"thread.started"', '"turn.', '"error"', '"agent_message"', *(f'"{item}"' for item in _TOOL_ITEMS))


def argv(req: AgentRequest, prompt_file: Path) -> list[str]:
    # Unattended runs cannot answer approval prompts; "bypassPermissions" asks for no sandbox at all.
    mode = ("--dangerously-bypass-approvals-and-sandbox" if req.permission_mode == "bypassPermissions"
            else "--full-auto")
    args = [*req.command, "exec", "--json", mode, *common_flags(req, {"model": "--model"})]
    # Codex cannot fork a session: a healer resumes the failed one. "-" reads the prompt from stdin.
    if req.resume_session_id:
        args += ["resume", req.resume_session_id]
    return [*args, "-"]


def parse_event(event: dict[str, Any]) -> Observation | None:
    kind = event.get("type")
    if kind == "thread.started":
        return Observation(session_id=string(event, "thread_id"))
    if kind == "turn.completed":
        return Observation(turn=True, final=Final(ok=True))
    if kind == "turn.failed":
        message = _message(event.get("error"))
        return Observation(turn=True, error=message, final=Final(ok=False, text=message))
    if kind == "error":
        return Observation(error=_message(event))
    if isinstance(kind, str) and kind.startswith("item.") and isinstance(event.get("item"), dict):
        return _item(event["item"])
    return None


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


ADAPTER = Adapter(kind="codex", argv=argv, parse_line=json_lines(parse_event), keys=_KEYS)
