"""Claude Code (`claude -p --output-format stream-json --verbose`): its command line and its stream."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from specflowd.agents.result import AgentRequest
from specflowd.agents.stream import (
    Adapter,
    Final,
    Observation,
    as_float,
    as_int,
    common_flags,
    json_lines,
    per_model,
    string,
    task_in,
)
from specflowd.core.permissions import CLAUDE_DEFAULT_MODE, claude_allowed_tools, refused_tool
from specflowd.core.prices import TokenUsage
from specflowd.core.vocab import ErrorType

_FLAGS = {
    "model": "--model",
    "fallback_model": "--fallback-model",
    "disallowed_tools": "--disallowedTools",
    "max_turns": "--max-turns",
    "max_budget_usd": "--max-budget-usd",
    "append_system_prompt": "--append-system-prompt",
    "resume_session_id": "--resume",
}
# init and result events have a subtype; assistant events matter when they use a tool.
_KEYS = ('"subtype"', '"tool_use"')
_SUBTYPES = {"error_max_turns": ErrorType.MAX_TURNS, "error_max_budget_usd": ErrorType.BUDGET_EXCEEDED}


def argv(req: AgentRequest, prompt_file: Path) -> list[str]:
    # stream-json in print mode is refused without --verbose; the prompt comes on stdin. Print mode
    # asks nobody: what the prompts need is allowed up front, and edits by the permission mode.
    args = [*req.command, "-p", "--output-format", "stream-json", "--verbose", *common_flags(req, _FLAGS),
            "--permission-mode", req.permission_mode or CLAUDE_DEFAULT_MODE,
            "--allowedTools", ",".join(claude_allowed_tools(req.verify_command, req.allowed_tools))]
    for folder in req.read_dirs:
        args += ["--add-dir", str(folder)]
    if req.fork_session and req.resume_session_id:
        args.append("--fork-session")
    return args


def parse_event(event: dict[str, Any]) -> Observation | None:
    kind = event.get("type")
    session = string(event, "session_id")
    if kind == "system" and event.get("subtype") == "init":
        return Observation(session_id=session)
    if kind == "assistant":
        return _assistant(event, session)
    if kind == "result":
        subtype = event.get("subtype")
        cost = as_float(event.get("total_cost_usd"))
        text = string(event, "result") or ""
        return Observation(session_id=session, cost_usd=cost, final=Final(
            ok=subtype == "success" and event.get("is_error") is False,
            error_type=_SUBTYPES.get(subtype) if isinstance(subtype, str) else None,
            text=text, session_id=session, cost_usd=cost, turns=as_int(event.get("num_turns")),
            tokens=per_model(event.get("modelUsage"), _model_usage), refused=_refused(event.get("permission_denials"))))
    return None  # user/tool results, retries, stream events and whatever later versions add


def _model_usage(used: dict[str, Any]) -> TokenUsage:
    """One model of a result's `modelUsage` (its input counts neither cache reads nor writes)."""
    return TokenUsage(input=as_int(used.get("inputTokens")) or 0, output=as_int(used.get("outputTokens")) or 0,
                      cache_read=as_int(used.get("cacheReadInputTokens")) or 0,
                      cache_write=as_int(used.get("cacheCreationInputTokens")) or 0)


def _refused(denials: object) -> tuple[str, ...]:
    """`permission_denials` of a result, each named as a person would allow it (`Bash(npm test)`)."""
    if not isinstance(denials, list):
        return ()
    return tuple(refused_tool(d["tool_name"], d.get("tool_input")) for d in denials
                 if isinstance(d, dict) and isinstance(d.get("tool_name"), str))


def _assistant(event: dict[str, Any], session: str | None) -> Observation:
    message = event.get("message")
    blocks = message.get("content") if isinstance(message, dict) else None
    tool = task = text = None
    for block in blocks if isinstance(blocks, list) else ():
        if not isinstance(block, dict):
            continue
        if block.get("type") == "tool_use" and isinstance(block.get("name"), str):
            tool = block["name"]
            task = task_in(block.get("input")) or task
        elif block.get("type") == "text" and isinstance(block.get("text"), str):
            text = block["text"]
    return Observation(session_id=session, tool=tool, task_id=task, text=text, turn=True)


ADAPTER = Adapter(kind="claude", argv=argv, parse_line=json_lines(parse_event), keys=_KEYS,
                  session_totals=True)
