"""A start request as a pure function: the new orchestration's state, or the refusal when its spec
already has an active one. Everything after the start is the state machine's (`machine.py`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from specflowd.core.config import Config, RunConfig
from specflowd.core.state import Decision, OrchestrationState
from specflowd.core.vocab import ErrorCode
from specflowd.errors import UserError


def start(existing: Iterable[OrchestrationState], *, new_id: str, spec: str, project: str, config: Config,
          overrides: Mapping[str, Any], request_id: str, now: datetime,
          budget: Mapping[str, Any] | None = None) -> OrchestrationState:
    """A new running orchestration of `spec`; refused while one is active for it. A repeated start
    request (the daemon died before answering it) gets the orchestration it already created.
    `overrides` and `budget` are the [orchestration] and [budget] keys the request set (checked:
    `records.given`), and only those; the rest stay as the project's config says."""
    for state in existing:
        if state.spec == spec and state.active:
            if started_by(state) == request_id:
                return state
            raise UserError(f"spec {spec} already has an active orchestration, {state.id} ({state.status}): "
                            f"cancel it first (`specflowd cancel {state.id}`)", code=ErrorCode.CONFLICT, field="spec")
    run_config = RunConfig(orchestration=replace(config.orchestration, **overrides),
                           budget=replace(config.budget, **(budget or {})), agent=config.agent, heal=config.heal)
    return OrchestrationState(id=new_id, spec=spec, project=project, config=run_config, created_at=now,
                              updated_at=now, decisions=[Decision(at=now, decision="start",
                                                                  reason=f"request {request_id}")])


def started_by(state: OrchestrationState) -> str | None:
    """The id of the request that started an orchestration."""
    for d in state.decisions:
        if d.decision == "start" and d.reason.startswith("request "):
            return d.reason.removeprefix("request ")
    return None
