"""Builders for the machine's tests: states, plans from task-list text, events at a moving clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from specflowd.core.config import BudgetConfig, OrchestrationConfig, RunConfig
from specflowd.core.events import (
    AgentFinished,
    Cancel,
    Event,
    Merge,
    MergeFinished,
    Pause,
    Recover,
    RunResult,
    Start,
)
from specflowd.core.machine import Transition, in_flight, live_runs, step
from specflowd.core.plan import Plan, make_plan
from specflowd.core.state import OrchestrationState
from specflowd.core.tasklist import parse
from specflowd.core.vocab import RecoverChoice, Status

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)

TASKS = b"""# Tasks

## Setup
- [ ] T001 Create the package
- [ ] T002 Add the config

## Core Services
- [ ] T003 Parse batches
- [ ] T004 Mark tasks
"""


def plan_of(text: bytes, spec: str = "demo") -> Plan:
    return make_plan(parse(text), spec=spec, file=f"specs/{spec}/progress.md")


def new_state(budget: dict | None = None, **orchestration: object) -> OrchestrationState:
    config = RunConfig(orchestration=OrchestrationConfig(**orchestration), budget=BudgetConfig(**(budget or {})))
    return OrchestrationState(id="7f3c9a21", spec="demo", project="/p", config=config, created_at=T0, updated_at=T0)


def ok(cost: float = 1.0, session: str = "s1", **kw: object) -> RunResult:
    return RunResult(ok=True, cost_usd=cost, session_id=session, **kw)


def failed(error_type: str = "process_failed", cost: float = 1.0, session: str | None = "s1", **kw: object) -> RunResult:
    return RunResult(ok=False, error_type=error_type, error=f"it broke: {error_type}", cost_usd=cost,
                     session_id=session, stderr_tail="E" * 3000, transcript_tail="T" * 3000, **kw)


class Driver:
    """Feeds events one by one, keeping the last transition; the clock moves a minute per event."""

    def __init__(self, state: OrchestrationState) -> None:
        self.state = state
        self.now = T0
        self.last: Transition | None = None

    def send(self, make: type, **fields: object) -> Transition:
        self.now += timedelta(minutes=1)
        event: Event = make(now=self.now, **fields)
        self.last = step(self.state, event)
        if self.last.refused is None:
            self.state = self.last.state
        return self.last

    def actions(self, kind: str) -> list:
        assert self.last is not None
        return [a for a in self.last.actions if a.type == kind]

    def events(self) -> list[str]:
        return [a.event for a in self.actions("commit_event")]

    def run_n(self) -> int:
        (run,) = self.actions("run_agent")
        return run.n


def invariant_errors(state: OrchestrationState) -> list[str]:
    """What is wrong with a state the machine returned: the properties every state must hold."""
    errors = []
    if state.status == Status.RUNNING and not in_flight(state):
        errors.append("running with no live or queued run and nothing awaited")
    working = [r.n for r in live_runs(state) if not r.stop_requested]
    if len(working) > 1:
        errors.append(f"several runs at once: {working}")
    if state.status == Status.PAUSED and state.pause_reason is None:
        errors.append("paused without a reason")
    if state.status == Status.NEEDS_ATTENTION and not state.error:
        errors.append("needs attention without a reason")
    return errors


def representative_states() -> dict[str, OrchestrationState]:
    """One state per status (and a fresh one), each reached through the machine itself."""
    out: dict[str, OrchestrationState] = {"new": new_state()}
    d = Driver(new_state(skip_analyze=True))
    d.send(Start, plan=plan_of(TASKS))
    out["running"] = d.state
    n = d.run_n()
    d.send(Pause)
    out["paused_live_run"] = d.state
    d.send(AgentFinished, run_n=n, result=ok(), task_status={"T001": "done", "T002": "done"})
    out["paused"] = d.state
    limited = Driver(out["running"])
    limited.send(AgentFinished, run_n=n, result=RunResult(ok=False, error_type="rate_limited", session_id="s1"))
    out["paused_rate_limit"] = limited.state
    failing = Driver(new_state(skip_analyze=True, auto_heal=False))
    failing.send(Start, plan=plan_of(TASKS))
    failing.send(AgentFinished, run_n=failing.run_n(), result=failed())
    out["needs_attention"] = failing.state
    aborted = Driver(failing.state)
    aborted.send(Recover, choice=RecoverChoice.ABORT)
    out["failed"] = aborted.state
    done = Driver(new_state(skip_analyze=True))
    done.send(Start, plan=plan_of(b"- [x] T001 Done already\n"))
    out["waiting_merge"] = done.state
    done.send(Merge)
    done.send(MergeFinished, outcome="merged")
    out["completed"] = done.state
    cancelled = Driver(out["running"])
    cancelled.send(Cancel)
    cancelled.send(AgentFinished, run_n=n, result=RunResult(ok=False, error_type="cancelled"))
    out["cancelled"] = cancelled.state
    return out


def started(budget: dict | None = None, **config: object) -> Driver:
    """An orchestration of TASKS (two batches), analyze skipped, its first batch's run just asked for."""
    d = Driver(new_state(budget=budget, skip_analyze=True, **config))
    d.send(Start, plan=plan_of(TASKS))
    return d
