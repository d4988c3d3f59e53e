"""Builders for the machine's tests: states, plans from task-list text, events at a moving clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


from specflowd.config import BudgetConfig, OrchestrationConfig
from specflowd.machine import Event, RunResult, Transition, step
from specflowd.plan import Plan, make_plan
from specflowd.progress import parse
from specflowd.state import OrchestrationState, RunConfig

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
