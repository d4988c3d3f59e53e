"""Gemini CLI (`gemini -p … --output-format stream-json`): its command line and its stream."""

from __future__ import annotations

from pathlib import Path

from specflowd.agents.result import AgentRequest, ErrorType
from specflowd.agents.stream import Adapter, Final, Observation, as_int, common_flags, json_object, task_in

# Gemini appends -p's text to what it reads on stdin; the real prompt goes on stdin.
_STDIN_NOTE = "Follow the instructions given on standard input."
_FLAGS = {"model": "--model", "resume_session_id": "--resume", "allowed_tools": "--allowed-tools"}
_TURN_LIMIT = 53


def argv(req: AgentRequest, prompt_file: Path) -> list[str]:
    # Headless runs cannot approve tool calls interactively.
    return [*req.command, "-p", _STDIN_NOTE, "--output-format", "stream-json",
            "--approval-mode", req.permission_mode or "yolo", *common_flags(req, _FLAGS)]


def parse_line(line: str) -> Observation | None:
    event = json_object(line)
    if event is None:
        return Observation(garbage=True) if line.strip() else None
    kind = event.get("type")
    if kind == "init" and isinstance(event.get("session_id"), str):
        return Observation(session_id=event["session_id"])
    if kind == "message" and event.get("role") == "assistant" and isinstance(event.get("content"), str):
        return Observation(text=event["content"])
    if kind == "tool_use":
        name = event.get("tool_name") or event.get("name")
        return Observation(tool=name if isinstance(name, str) else "tool", task_id=task_in(event.get("parameters") or ""),
                           turn=True)
    if kind == "error":
        return Observation(error=str(event.get("message") or event.get("error") or "error"))
    if kind == "result":
        error = event.get("error")
        text = str(error.get("message", "")) if isinstance(error, dict) else ""
        stats = event.get("stats") if isinstance(event.get("stats"), dict) else {}
        return Observation(error=text or None, final=Final(
            ok=event.get("status") == "success", text=text, turns=as_int(stats.get("turns"))))
    return None


ADAPTER = Adapter(kind="gemini", argv=argv, parse_line=parse_line,
                  exit_codes={_TURN_LIMIT: ErrorType.MAX_TURNS})
