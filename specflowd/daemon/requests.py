"""Doing what a valid request asks in one project: marks through `marks.mark`, `start` through the
pure `orchestrations.start`, and the rest as events of the orchestration machine, stepped by the
runner. Raises UserError to refuse."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any, assert_never

from specflowd.core import orchestrations
from specflowd.core.events import Cancel, Event, Merge, Pause, Recover, Resume
from specflowd.core.protocol import MarkRequest, OrchestrationRequest, RecoverRequest, Request, StartRequest
from specflowd.core.state import OrchestrationState, batch_label
from specflowd.core.tasklist import Mark
from specflowd.core.vocab import ErrorCode, MarkSource, RequestAction
from specflowd.daemon.runner import Runner
from specflowd.daemon.site import Site
from specflowd.errors import UserError
from specflowd.repo.marks import mark, resolve_spec


def execute(site: Site, request: Request, rid: str, runner: Runner) -> dict[str, Any]:
    """The result of a request, after its effect is on disk."""
    match request:
        case MarkRequest():
            return _mark(site, request, runner)
        case StartRequest():
            return _start(site, request, rid, runner)
        case OrchestrationRequest() | RecoverRequest():
            state = site.states.get(request.orchestration)
            holder = site.fleet.holder(request.orchestration) if site.fleet is not None and (
                state is None or state.lease_lost_at is not None) else None
            if holder is not None:
                raise UserError(f"orchestration {request.orchestration} runs on host {holder}, not here: send the "
                                "request to that host's daemon", code=ErrorCode.CONFLICT, field="orchestration")
            if state is None:
                raise UserError(f"no orchestration {request.orchestration} in {site.project.root} "
                                f"(known: {', '.join(sorted(site.states)) or 'none'})",
                                code=ErrorCode.UNKNOWN_ORCHESTRATION, field="orchestration")
            return _summary(runner.request(site, state, machine_event(request, datetime.now(UTC))))
        case _:
            assert_never(request)


def machine_event(request: OrchestrationRequest | RecoverRequest, now: datetime) -> Event:
    """The orchestration machine's event for a request about an orchestration."""
    if isinstance(request, RecoverRequest):
        return Recover(now=now, choice=request.choice, budget=request.budget)
    match request.action:
        case RequestAction.PAUSE:
            return Pause(now=now)
        case RequestAction.RESUME:
            return Resume(now=now)
        case RequestAction.CANCEL:
            return Cancel(now=now)
        case RequestAction.MERGE:
            return Merge(now=now)
        case _:
            assert_never(request.action)


def _start(site: Site, request: StartRequest, rid: str, runner: Runner) -> dict[str, Any]:
    if site.fleet is not None:
        return site.fleet.queue(request, rid)
    site.docs.snapshot().task_file(request.spec)  # UserError(unknown_spec) when there is no such spec
    state = orchestrations.start(
        site.states.values(), new_id=_new_id(site.states), spec=request.spec, project=str(site.project.root),
        config=site.config, overrides=request.config, budget=request.budget, request_id=rid, now=datetime.now(UTC))
    if state.id not in site.states:
        state = runner.start(site, state)
    return _summary(state)


def _new_id(taken: dict[str, OrchestrationState]) -> str:
    while True:
        new = secrets.token_hex(4)
        if new not in taken:
            return new


def _summary(state: OrchestrationState) -> dict[str, Any]:
    return {"orchestration": state.id, "spec": state.spec, "status": state.status.value,
            "phase": state.phase.value}


def _mark(site: Site, request: MarkRequest, runner: Runner) -> dict[str, Any]:
    active = site.active()
    hint = active[0].spec if len(active) == 1 else None
    spec = resolve_spec(site.docs, request.spec, hint)
    running = next((s for s in active if s.spec == spec), None)
    marks = [Mark(t, request.status, request.reason) for t in request.task_ids]
    # A mark made during an orchestration names it, and the batch its task belongs to (SPEC §4).
    batch = next((b for b in running.batches if request.task_ids[0] in b.task_ids), None) if running else None
    outcome = mark(site.docs, spec, marks, orchestration=running.id if running else None, evidence=request.evidence,
                   batch=batch_label(running, batch) if running and batch else None, source=MarkSource.REQUEST,
                   host=site.fleet.host if site.fleet is not None else None)
    if outcome.commit is not None:
        runner.marked(site, spec)
    return outcome.as_dict()
