"""Every status × every event: a defined transition or a refusal that says why and changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from specflowd.core import records
from specflowd.core.events import (
    AgentFinished,
    AgentSession,
    AgentStarted,
    Cancel,
    Merge,
    MergeFinished,
    Pause,
    PlanReady,
    RateLimitReset,
    Recover,
    Restarted,
    Resume,
    Start,
    TasksMarked,
    VerifyFinished,
)
from specflowd.core.machine import step
from specflowd.core.vocab import RecoverChoice

from .helpers import T0, TASKS, invariant_errors, ok, plan_of, representative_states

STATES = representative_states()


def last_run(name: str) -> int:
    runs = STATES[name].runs
    return runs[-1].n if runs else 1


EVENTS = {
    "start": lambda name: Start(now=T0, plan=plan_of(TASKS)),
    "agent_started": lambda name: AgentStarted(now=T0, run_n=last_run(name), pid=42, pid_start_time=7),
    "agent_session": lambda name: AgentSession(now=T0, run_n=last_run(name), session_id="s-2"),
    "agent_finished": lambda name: AgentFinished(now=T0, run_n=last_run(name), result=ok()),
    "tasks_marked": lambda name: TasksMarked(now=T0, statuses={"T001": "done"}),
    "plan_ready": lambda name: PlanReady(now=T0, plan=plan_of(TASKS)),
    "verify_finished": lambda name: VerifyFinished(now=T0, exit_code=0),
    "merge_finished": lambda name: MergeFinished(now=T0, outcome="merged"),
    "pause": lambda name: Pause(now=T0),
    "resume": lambda name: Resume(now=T0),
    "cancel": lambda name: Cancel(now=T0),
    "merge": lambda name: Merge(now=T0),
    "recover_retry": lambda name: Recover(now=T0, choice=RecoverChoice.RETRY),
    "recover_skip": lambda name: Recover(now=T0, choice=RecoverChoice.SKIP),
    "recover_abort": lambda name: Recover(now=T0, choice=RecoverChoice.ABORT),
    "rate_limit_reset": lambda name: RateLimitReset(now=T0 + timedelta(days=1)),
    "restarted": lambda name: Restarted(now=T0, alive={}),
}

# A = a transition, . = refused. Columns in EVENTS order.
TABLE = {
    #                     st as ss af tm pr vf mf pa re ca me rr rs ra rl rs
    "new":               "A  .  .  .  .  .  .  .  .  .  .  .  .  .  .  .  .",
    "running":           ".  A  A  A  A  .  .  .  A  .  A  .  .  .  .  .  A",
    "paused_live_run":   ".  A  A  A  A  .  .  .  .  A  A  .  .  .  .  .  A",
    "paused":            ".  .  .  .  A  .  .  .  .  A  A  .  .  .  .  .  A",
    "paused_rate_limit": ".  .  .  .  A  .  .  .  A  A  A  .  .  .  .  A  A",
    "waiting_merge":     ".  .  .  .  A  .  .  .  .  .  A  A  .  .  .  .  A",
    "needs_attention":   ".  .  .  .  A  .  .  .  .  .  A  .  A  A  A  .  A",
    "completed":         ".  .  .  .  A  .  .  .  .  .  .  .  .  .  .  .  .",
    "failed":            ".  .  .  .  A  .  .  .  .  .  .  .  .  .  .  .  .",
    "cancelled":         ".  .  .  .  A  .  .  .  .  .  .  .  .  .  .  .  .",
}


def test_the_table_names_every_status_and_event() -> None:
    assert set(TABLE) == set(STATES)
    assert {s.status.value for s in STATES.values()} == {
        "running", "paused", "waiting_merge", "needs_attention", "completed", "failed", "cancelled"}
    assert all(len(row.split()) == len(EVENTS) for row in TABLE.values())


@pytest.mark.parametrize("name", list(TABLE))
@pytest.mark.parametrize("event_name", list(EVENTS))
def test_status_x_event(name: str, event_name: str) -> None:
    state = STATES[name]
    before = records.dump(state)
    expected = TABLE[name].split()[list(EVENTS).index(event_name)]
    t = step(state, EVENTS[event_name](name))
    assert records.dump(state) == before, "the input state was changed"
    if expected == ".":
        assert t.refused, f"{name} × {event_name} should be refused"
        assert t.state is state and t.actions == []
    else:
        assert t.refused is None, f"{name} × {event_name} refused: {t.refused}"
        assert t.actions[-1].type == "write_state"
        assert invariant_errors(t.state) == []
