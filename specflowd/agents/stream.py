"""The pure core every adapter plugs into: output lines -> observations -> transcript -> result."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from specflowd.agents.limits import is_usage_limit, reset_time
from specflowd.agents.result import AgentRequest
from specflowd.core.events import RunResult
from specflowd.core.prices import TokenUsage
from specflowd.core.vocab import TAIL_CHARS, ErrorType, StopReason

_NO_SESSION = re.compile(
    r"No conversation found with session ID|no (?:rollout|session|thread) found|Invalid session identifier"
    r"|No previous sessions found", re.I)
# How an agent names the task it works on: a `specflowd mark` call (the id quoted or not) or a commit trailer.
_TASK = re.compile(r"(?:specflowd\s+mark\s+['\"]?|Specflow-Task:\s*)(T\d{3,}[a-z]?|\d+(?:\.\d+)*\.?|#\d+)")


_ERROR_CHARS = 4000


# Final, Observation and Transcript are frozen dataclasses, not pydantic models: one is made per
# output line, and validation would cost more than parsing the line (16 agents x 10k events).
Tokens = Mapping[str, TokenUsage]  # by model; "" is the model the run was given (a CLI that does not say)


@dataclass(frozen=True, slots=True)
class Final:
    """A CLI's own verdict on the run (its result event)."""

    ok: bool
    error_type: ErrorType | None = None
    text: str = ""
    session_id: str | None = None
    cost_usd: float | None = None
    turns: int | None = None
    tokens: Tokens | None = None  # the whole run's, when the result says
    refused: tuple[str, ...] = ()  # tool calls the CLI refused, named


@dataclass(frozen=True, slots=True)
class Observation:
    """What one output line tells; unset fields tell nothing."""

    session_id: str | None = None
    tool: str | None = None
    task_id: str | None = None
    cost_usd: float | None = None
    turn: bool = False
    text: str | None = None
    error: str | None = None
    final: Final | None = None
    tokens: Tokens | None = None  # used since the last report (added up)
    unreachable: bool | None = None  # True: the CLI waits for an API it cannot reach; False: it got through


@dataclass(frozen=True, slots=True)
class Transcript:
    """Everything learnt from a run's output so far."""

    session_id: str | None = None
    tool: str | None = None
    task_id: str | None = None
    cost_usd: float | None = None
    turns: int = 0
    text: str = ""
    error: str = ""
    final: Final | None = None
    tokens: Tokens = field(default_factory=dict)
    unreachable: bool = False


def fold(t: Transcript, observations: Iterable[Observation]) -> Transcript:
    """The transcript after `observations`, in order: later facts replace earlier ones, counts add up."""
    session_id, tool, task_id, cost_usd, text, final = t.session_id, t.tool, t.task_id, t.cost_usd, t.text, t.final
    turns, errors, unreachable = t.turns, [t.error] if t.error else [], t.unreachable
    tokens = dict(t.tokens)
    for obs in observations:
        session_id = obs.session_id if obs.session_id is not None else session_id
        tool = obs.tool if obs.tool is not None else tool
        task_id = obs.task_id if obs.task_id is not None else task_id
        cost_usd = obs.cost_usd if obs.cost_usd is not None else cost_usd
        text = obs.text if obs.text is not None else text
        final = obs.final if obs.final is not None else final
        turns += obs.turn
        # Any other line of substance means the CLI got through to its API again.
        unreachable = obs.unreachable if obs.unreachable is not None else (
            False if obs.turn or obs.final or obs.tool else unreachable)
        for model, used in (obs.tokens or {}).items():
            tokens[model] = tokens[model] + used if model in tokens else used
        if obs.error:
            # Keep earlier errors too: a CLI often says why (usage limit, reset time) before it gives up.
            errors.append(obs.error)
    return Transcript(session_id=session_id, tool=tool, task_id=task_id, cost_usd=cost_usd, turns=turns,
                      text=text, error="\n".join(errors)[-_ERROR_CHARS:], final=final, tokens=tokens,
                      unreachable=unreachable)


class Exit(BaseModel):
    """How the process ended, as the supervisor saw it."""

    code: int | None  # None: not our child (adopted), so its status cannot be known
    stopped: StopReason | None = None
    stderr_tail: str = ""
    duration_s: float = 0.0


@dataclass(frozen=True)
class Adapter:
    """One CLI: how to call it and how to read it. Both functions are pure."""

    kind: str
    argv: Callable[[AgentRequest, Path], list[str]]  # (request, prompt file) -> argv, prompt not in it
    parse_line: Callable[[str], Observation | None]
    prompt_on_stdin: bool = True
    needs_final: bool = True  # success requires the CLI's result event, not only exit 0
    exit_codes: Mapping[int, ErrorType] = field(default_factory=dict)
    # Only lines holding one of these can tell anything (empty: every line can). Most of a stream
    # is text and tool output; the supervisor does not even decode those lines.
    keys: tuple[str, ...] = ()
    # The cost and tokens a run reports are its session's totals so far, resumed or forked
    # sessions included (Claude Code, Codex), not the run's own.
    session_totals: bool = False


def conclude(adapter: Adapter, t: Transcript, exit: Exit, now: datetime, transcript_tail: str = "") -> RunResult:
    """The run's result from what its stream said and how its process ended."""
    final = t.final
    said = "\n".join(s for s in ((final.text if final else ""), t.error, exit.stderr_tail) if s)
    error_type = _error_type(adapter, final, said, exit)
    text = (final.text if final and final.text else t.text) or t.error
    if exit.stopped == StopReason.UNREACHABLE:
        text = f"{adapter.kind} could not reach its model API and kept retrying: stopped ({t.error[-300:]})"
    cost = final.cost_usd if final and final.cost_usd is not None else t.cost_usd
    return RunResult(
        ok=error_type is None,
        error_type=error_type,
        error=None if error_type is None else (text or exit.stderr_tail or error_type.value)[-TAIL_CHARS:],
        session_id=(final.session_id if final else None) or t.session_id,
        cost_usd=cost or 0.0,
        turns=(final.turns if final and final.turns is not None else t.turns),
        duration_s=exit.duration_s,
        text=text[-TAIL_CHARS:],
        stderr_tail=exit.stderr_tail[-TAIL_CHARS:],
        transcript_tail=transcript_tail[-TAIL_CHARS:],
        exit_code=exit.code,
        resets_at=reset_time(said, now) if error_type is ErrorType.RATE_LIMITED else None,
        refused=list(final.refused) if final else [],
        tokens=dict(final.tokens if final and final.tokens is not None else t.tokens),
        # No cost said: the daemon prices the tokens.
        cost_estimated=cost is None,
    )


def _error_type(adapter: Adapter, final: Final | None, said: str, exit: Exit) -> ErrorType | None:
    if exit.stopped == StopReason.UNREACHABLE:
        return ErrorType.PROCESS_FAILED
    if exit.stopped:
        return ErrorType(exit.stopped)
    succeeded = (final.ok and exit.code in (0, None)) if final else (not adapter.needs_final and exit.code == 0)
    if succeeded:
        return None
    if final and final.error_type:
        return final.error_type
    if _NO_SESSION.search(said):
        return ErrorType.INVALID_SESSION
    if is_usage_limit(said):
        return ErrorType.RATE_LIMITED
    if exit.code is not None and exit.code in adapter.exit_codes:
        return adapter.exit_codes[exit.code]
    if final is None and exit.code == 0:
        return ErrorType.BAD_OUTPUT  # exited "fine" but never said how the run went
    return ErrorType.PROCESS_FAILED


def json_object(line: str) -> dict[str, Any] | None:
    """The line as a JSON object, or None when it is not one."""
    if not line.startswith("{"):
        return None
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def json_lines(parse_event: Callable[[dict[str, Any]], Observation | None]) -> Callable[[str], Observation | None]:
    """A line parser for a JSONL stream: objects go to `parse_event`; anything else tells nothing."""
    def parse_line(line: str) -> Observation | None:
        event = json_object(line)
        return parse_event(event) if event is not None else None
    return parse_line


def string(event: dict[str, Any], key: str) -> str | None:
    value = event.get(key)
    return value if isinstance(value, str) else None


def task_in(tool_input: object) -> str | None:
    """The task id a shell command names (`specflowd mark T012`, a commit with `Specflow-Task: T012`).

    Only commands are looked at: that is where an agent marks or commits, and serialising every
    tool input to search it would cost more than the rest of the line's parsing."""
    command = tool_input.get("command") if isinstance(tool_input, dict) else tool_input
    m = _TASK.search(command) if isinstance(command, str) else None
    return m.group(1).rstrip(".") if m else None


def per_model(usage: object, read: Callable[[dict[str, Any]], TokenUsage]) -> dict[str, TokenUsage] | None:
    """Tokens by model from a CLI's `{model: {its counts}}` table, each read by `read`."""
    if not isinstance(usage, dict):
        return None
    return {str(model): read(used) for model, used in usage.items() if isinstance(used, dict)}


def as_float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def as_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def text_line(line: str) -> Observation | None:
    """A plain-text line of a CLI without JSON output; blank lines tell nothing."""
    stripped = line.strip()
    return Observation(text=stripped) if stripped else None


def common_flags(req: AgentRequest, flags: Mapping[str, str]) -> list[str]:
    """Value flags shared in spirit by several CLIs; `flags` maps request field -> the CLI's spelling."""
    argv: list[str] = []
    for name, flag in flags.items():
        value = getattr(req, name)
        if value is None or value == []:
            continue
        argv += [flag, ",".join(value) if isinstance(value, list) else str(value)]
    return argv
