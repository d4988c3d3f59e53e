"""Gemini CLI (`gemini -p … --output-format stream-json`): its command line and its stream."""

from __future__ import annotations

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
    per_model,
    string,
    task_in,
)
from specflowd.core.permissions import GEMINI_DEFAULT_MODE
from specflowd.core.prices import TokenUsage
from specflowd.core.vocab import ErrorType

# Gemini appends -p's text to what it reads on stdin; the real prompt goes on stdin.
_STDIN_NOTE = "Follow the instructions given on standard input."
_FLAGS = {"model": "--model", "resume_session_id": "--resume"}
_TURN_LIMIT = 53
_KEYS = ('"init"', '"message"', '"tool_use"', '"error"', '"result"')  # tool results tell nothing


def argv(req: AgentRequest, prompt_file: Path) -> list[str]:
    # Headless runs cannot approve tool calls; a new code worktree is a folder Gemini does not trust
    # yet, and in one it overrides the approval mode: --skip-trust trusts it for this run only.
    args = [*req.command, "-p", _STDIN_NOTE, "--output-format", "stream-json",
            "--approval-mode", req.permission_mode or GEMINI_DEFAULT_MODE, "--skip-trust", *common_flags(req, _FLAGS)]
    for folder in req.read_dirs:
        args += ["--include-directories", str(folder)]
    return args


def parse_event(event: dict[str, Any]) -> Observation | None:
    kind = event.get("type")
    if kind == "init":
        return Observation(session_id=string(event, "session_id"))
    if kind == "message" and event.get("role") == "assistant":
        return Observation(text=string(event, "content"))
    if kind == "tool_use":
        return Observation(tool=string(event, "tool_name") or "tool", task_id=task_in(event.get("parameters")),
                           turn=True)
    if kind == "error":
        return Observation(error=str(event.get("message") or event.get("error") or "error"))
    if kind == "result":
        error = event.get("error")
        text = str(error.get("message", "")) if isinstance(error, dict) else ""
        stats = event["stats"] if isinstance(event.get("stats"), dict) else {}
        # "success" is said whatever the exit code: the supervisor checks that too.
        return Observation(error=text or None, final=Final(
            ok=event.get("status") == "success", text=text, turns=as_int(stats.get("turns")),
            tokens=per_model(stats.get("models"), _model_stats)))
    return None


def _model_stats(used: dict[str, Any]) -> TokenUsage:
    """One model of a result's `stats.models` (cached input counted apart, thoughts as output)."""
    cached = as_int(used.get("cached")) or 0
    return TokenUsage(input=max(0, (as_int(used.get("input_tokens")) or 0) - cached), cache_read=cached,
                      output=(as_int(used.get("output_tokens")) or 0) + (as_int(used.get("thoughts")) or 0))


# Gemini cannot fork a session: a healer starts a fresh one with the failure's context.
ADAPTER = Adapter(kind="gemini", argv=argv, parse_line=json_lines(parse_event), keys=_KEYS,
                  exit_codes={_TURN_LIMIT: ErrorType.MAX_TURNS})
