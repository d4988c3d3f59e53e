"""Doing what a valid request asks in one project: marks through `marks.mark`, orchestration requests
through the pure `orchestrations` functions and the state files. Raises UserError to refuse."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from specflowd.core import orchestrations
from specflowd.core.protocol import MarkRequest, OrchestrationRequest, RecoverRequest, StartRequest
from specflowd.core.state import OrchestrationState, utcnow
from specflowd.core.tasklist import Mark, Status
from specflowd.daemon import statefile
from specflowd.errors import UserError
from specflowd.repo.designdocs import DesignDocs
from specflowd.repo.marks import mark, resolve_spec
from specflowd.repo.project import Project

if TYPE_CHECKING:
    from specflowd.daemon.runner import Runner


@dataclass
class Served:
    """A project the daemon serves, and the mutable state it keeps for it (owned by the loop thread)."""

    project: Project
    docs: DesignDocs
    states: dict[str, OrchestrationState] = field(default_factory=dict)

    def save(self, state: OrchestrationState) -> None:
        statefile.save(self.project.workflows, state)
        self.states[state.id] = state

    def active(self) -> list[OrchestrationState]:
        return [s for s in self.states.values() if s.active]


def execute(served: Served, request: Any, rid: str, runner: Runner) -> dict[str, Any]:
    """The result of a request, after its effect is on disk."""
    if isinstance(request, MarkRequest):
        return _mark(served, request, runner)
    if isinstance(request, StartRequest):
        return _start(served, request, rid, runner)
    assert isinstance(request, OrchestrationRequest | RecoverRequest)
    state = served.states.get(request.orchestration)
    if state is None:
        raise UserError(f"no orchestration {request.orchestration} in {served.project.root} "
                        f"(known: {', '.join(sorted(served.states)) or 'none'})",
                        code="unknown_orchestration", field="orchestration")
    return _summary(runner.request(served, state, request.action, getattr(request, "choice", None)))


def _start(served: Served, request: StartRequest, rid: str, runner: Runner) -> dict[str, Any]:
    served.docs.snapshot().task_file(request.spec)  # UserError(unknown_spec) when there is no such spec
    state = orchestrations.start(
        served.states.values(), new_id=_new_id(served.states), spec=request.spec, project=str(served.project.root),
        config=served.project.config, overrides=request.config, request_id=rid, now=utcnow())
    if state.id not in served.states:
        state = runner.start(served, state)
    return _summary(state)


def _new_id(taken: dict[str, OrchestrationState]) -> str:
    while True:
        new = secrets.token_hex(4)
        if new not in taken:
            return new


def _summary(state: OrchestrationState) -> dict[str, Any]:
    return {"orchestration": state.id, "spec": state.spec, "status": state.status.value,
            "phase": state.phase.value}


def _mark(served: Served, request: MarkRequest, runner: Runner) -> dict[str, Any]:
    active = served.active()
    hint = active[0].spec if len(active) == 1 else None
    spec = resolve_spec(served.docs, request.spec, hint)
    orchestration = next((s.id for s in active if s.spec == spec), None)
    marks = [Mark(t, Status(request.status), request.reason) for t in request.task_ids]
    outcome = mark(served.docs, spec, marks, orchestration=orchestration, evidence=request.evidence,
                   source="request")
    if outcome.commit is not None:
        runner.marked(served, spec)
    return outcome.as_dict()
