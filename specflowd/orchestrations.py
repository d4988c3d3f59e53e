"""What a request does to orchestration state, as pure functions (state in, new state out); the
orchestration runner's state machine replaces the bodies, not the signatures."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from specflowd.config import Config, OrchestrationConfig
from specflowd.errors import UserError
from specflowd.state import ACTIVE, Decision, OrchestrationState, RunConfig, Status


def start(existing: Iterable[OrchestrationState], *, new_id: str, spec: str, project: str, config: Config,
          overrides: OrchestrationConfig, request_id: str, now: datetime) -> OrchestrationState:
    """A new running orchestration of `spec`; refused while one is active for it. A repeated start
    request (the daemon died before answering it) gets the orchestration it already created."""
    for state in existing:
        if state.spec == spec and state.active:
            if started_by(state) == request_id:
                return state
            raise UserError(f"spec {spec} already has an active orchestration, {state.id} ({state.status}): "
                            f"cancel it first (`specflowd cancel {state.id}`)", code="conflict", field="spec")
    given = {key: getattr(overrides, key) for key in overrides.model_fields_set}
    run_config = RunConfig(orchestration=config.orchestration.model_copy(update=given), budget=config.budget,
                           agent=config.agent)
    return OrchestrationState(id=new_id, spec=spec, project=project, config=run_config, created_at=now,
                              updated_at=now, decisions=[Decision(at=now, decision="start",
                                                                  reason=f"request {request_id}")])


def started_by(state: OrchestrationState) -> str | None:
    """The id of the request that started an orchestration."""
    for d in state.decisions:
        if d.decision == "start" and d.reason.startswith("request "):
            return d.reason.removeprefix("request ")
    return None


# action -> (statuses it applies to, the status it leaves, what to say otherwise)
_TRANSITIONS: dict[str, tuple[frozenset[Status], Status | None, str]] = {
    "pause": (frozenset({Status.RUNNING}), Status.PAUSED, "only a running orchestration can be paused"),
    "resume": (frozenset({Status.PAUSED}), Status.RUNNING, "only a paused orchestration can be resumed"),
    "cancel": (ACTIVE, Status.CANCELLED, "it has already ended"),
    "merge": (frozenset({Status.WAITING_MERGE}), None, "it is not waiting for a merge"),
    "recover": (frozenset({Status.NEEDS_ATTENTION}), None, "it does not need attention"),
}


def apply(state: OrchestrationState, action: str, now: datetime, choice: str | None = None) -> OrchestrationState:
    """The state after a pause/resume/cancel/merge/recover request; UserError(conflict) when the request
    makes no sense in the current status. merge and recover are recorded for the runner to act on."""
    allowed, target, why = _TRANSITIONS[action]
    if state.status not in allowed:
        raise UserError(f"cannot {action} orchestration {state.id}: {why} (it is {state.status})",
                        code="conflict", field="orchestration")
    if action == "recover" and choice == "abort":
        target = Status.CANCELLED
    decision = f"{action} {choice}" if choice else action
    return state.model_copy(update={
        "status": target or state.status,
        "updated_at": now,
        "decisions": [*state.decisions, Decision(at=now, decision=decision, reason="requested")],
    })
