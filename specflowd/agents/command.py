"""Any program as an agent: prompt on stdin, exit 0 is success, an optional JSON result line."""

from __future__ import annotations

from pathlib import Path

from specflowd.agents.result import AgentRequest
from specflowd.agents.stream import (
    Adapter,
    Final,
    Observation,
    as_float,
    as_int,
    json_object,
    string,
    text_line,
)
from specflowd.core.vocab import ErrorType


def argv(req: AgentRequest, prompt_file: Path) -> list[str]:
    return list(req.command)


def parse_line(line: str) -> Observation | None:
    """A JSON object with an `ok` key is the program's result; anything else is plain output."""
    event = json_object(line)
    if event is None or "ok" not in event:
        return text_line(line)
    error = event.get("error_type")
    session = string(event, "session_id")
    cost = as_float(event.get("cost_usd"))
    text = event.get("result", event.get("text", ""))
    return Observation(session_id=session, cost_usd=cost, final=Final(
        ok=event["ok"] is True,
        error_type=ErrorType(error) if isinstance(error, str) and error in ErrorType.__members__.values() else None,
        text=text if isinstance(text, str) else "", session_id=session, cost_usd=cost,
        turns=as_int(event.get("turns"))))


ADAPTER = Adapter(kind="command", argv=argv, parse_line=parse_line, needs_final=False)
