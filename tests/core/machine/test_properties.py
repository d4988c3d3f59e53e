"""Properties under random event sequences: budgets hold to within one run, a batch completes only
on dual confirmation, nothing is `running` without work in flight, refusals change nothing."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import event as event_
from hypothesis import strategies as st

from specflowd.core import records
from specflowd.core.budget import minimum_run_usd
from specflowd.core.events import (
    AgentFinished,
    AgentSession,
    AgentStarted,
    Cancel,
    Event,
    Merge,
    MergeFinished,
    Pause,
    PlanReady,
    RateLimitReset,
    Recover,
    Restarted,
    Resume,
    RunResult,
    Start,
    TasksMarked,
    VerifyFinished,
)
from specflowd.core.machine import TRANSITIONS, live_runs, step
from specflowd.core.state import OrchestrationState
from specflowd.core.vocab import FINISHED, BatchStatus, RecoverChoice

from .helpers import T0, TASKS, invariant_errors, new_state, plan_of

MAX_RUN_COST = 3.0
PLANS = [plan_of(TASKS), plan_of(b""), plan_of(b"- [x] T001 Done\n- [-] T002 Skipped\n"),
         plan_of(b"- [ ] T001 One\n- [ ] T002 Two\n- [ ] T003 Three\n")]
ALL_TASKS = ["T001", "T002", "T003", "T004"]
ERRORS = ["timeout", "budget_exceeded", "max_turns", "process_failed", "invalid_session", "rate_limited",
          "cancelled", "bad_output"]

configs = st.fixed_dictionaries({
    "skip_design": st.booleans(), "skip_analyze": st.booleans(), "auto_heal": st.booleans(),
    "max_heal_attempts": st.integers(0, 2), "auto_merge": st.booleans(), "pause_between_batches": st.booleans(),
    "verify_command": st.sampled_from(["", "pytest -q"]),
})
budgets = st.fixed_dictionaries({
    "per_batch": st.sampled_from([0.5, 2.0, 5.0]), "healing": st.sampled_from([0.0, 1.0, 2.0]),
    "total": st.sampled_from([0.0, 1.0, 4.0, 20.0]),
})
statuses = st.dictionaries(st.sampled_from(ALL_TASKS), st.sampled_from(["pending", "done", "skipped", "blocked"]))


booleans = st.booleans()
sessions = st.sampled_from([None, "s1", "s2"])
costs = st.sampled_from([0.0, 0.3, 1.0, MAX_RUN_COST])
errors = st.sampled_from(ERRORS)
resets = st.sampled_from([None, T0 + timedelta(hours=5)])


@st.composite
def results(draw: st.DrawFn) -> RunResult:
    cost = draw(costs)
    session = draw(sessions)
    if draw(booleans):
        return RunResult(ok=True, cost_usd=cost, session_id=session)
    kind = draw(errors)
    return RunResult(ok=False, error_type=kind, error=kind, cost_usd=cost, session_id=session, resets_at=draw(resets))


choices = st.sampled_from(list(RecoverChoice))
outcomes = st.sampled_from(["merged", "conflict", "dirty", "failed"])
maybe_statuses = st.one_of(st.none(), statuses)
REQUESTS = ["tasks_marked", "pause", "resume", "cancel", "merge_request", "recover", "rate_limit_reset", "restarted",
            "stale_result"]


def draw_event(data: st.DataObject, state: OrchestrationState, now: datetime) -> Event:
    """A plausible next event (the results of what is in flight, weighted up) or any request.
    Strategies are module-level and events are built by hand: building strategies per step
    would cost most of the test's time."""
    live = live_runs(state)
    awaited = [state.awaiting.value] * 3 if state.awaiting is not None else []
    kinds = ["finished"] * 4 * len(live) + ["started", "session"] * len(live) + awaited + REQUESTS
    kind = data.draw(st.sampled_from(kinds))
    if kind in ("finished", "started", "session"):
        run = data.draw(st.sampled_from(live))
        if kind == "started":
            return AgentStarted(now=now, run_n=run.n, pid=9, session_id=data.draw(sessions))
        if kind == "session":
            return AgentSession(now=now, run_n=run.n, session_id=data.draw(sessions) or "s-new")
        return AgentFinished(now=now, run_n=run.n, result=data.draw(results()), task_status=data.draw(maybe_statuses))
    made = {
        "plan": lambda: PlanReady(now=now, plan=data.draw(st.sampled_from(PLANS))),
        "verify": lambda: VerifyFinished(now=now, exit_code=data.draw(st.sampled_from([0, 1]))),
        "merge": lambda: MergeFinished(now=now, outcome=data.draw(outcomes), files=["a.py"]),
        "tasks_marked": lambda: TasksMarked(now=now, statuses=data.draw(statuses)),
        "pause": lambda: Pause(now=now, stop_run=data.draw(booleans)),
        "resume": lambda: Resume(now=now),
        "cancel": lambda: Cancel(now=now),
        "merge_request": lambda: Merge(now=now),
        "recover": lambda: Recover(now=now, choice=data.draw(choices)),
        "rate_limit_reset": lambda: RateLimitReset(now=now + timedelta(days=1)),
        "restarted": lambda: Restarted(now=now, alive={r.n: data.draw(booleans) for r in live}),
        "stale_result": lambda: AgentFinished(now=now, run_n=data.draw(st.integers(1, 3)), result=data.draw(results())),
    }
    return made[kind]()


def check(before: OrchestrationState, dump: dict, t: object, event: object) -> None:
    assert records.dump(before) == dump, "step changed its input"
    if t.refused is not None:
        assert t.refused and t.state is before and t.actions == []
        return
    after = t.state
    allowed = TRANSITIONS[before.status if before.started_at is not None else None][event.type]
    assert after.status in allowed, f"{before.status} × {event.type} led to {after.status}, not in the table"
    assert t.actions[-1].type == "write_state"
    assert invariant_errors(after) == []
    commits = [a for a in t.actions if a.type == "commit_event"]
    assert all(c.subject.startswith(f"orchestration {after.id}: ") for c in commits)
    assert len(after.decisions) == len(before.decisions) + len(commits)
    budget = after.config.budget
    for a in t.actions:
        if a.type == "run_agent":
            assert a.max_budget_usd >= minimum_run_usd(after)
            assert a.max_budget_usd <= budget.total - after.total_cost_usd + 1e-9
    assert after.total_cost_usd <= budget.total + MAX_RUN_COST + 1e-9
    for old, b in zip(before.batches, after.batches, strict=False):
        assert b.cost_usd - b.cost_at_retry <= budget.per_batch + MAX_RUN_COST + 1e-9
        if b.status == BatchStatus.COMPLETED and old.status != BatchStatus.COMPLETED:
            # Completed by a run's end only when that run succeeded, or when every task of the batch
            # was already finished before the run ended (marked meanwhile, by hand or by the agent
            # before it was stopped): the work is done whatever the run's own ending.
            if event.type == "agent_finished" and event.run_n in b.runs and not event.result.ok:
                assert all(before.task_status.get(x) in FINISHED for x in b.task_ids), \
                    "completed by a failed run with tasks left"
            assert all(after.task_status.get(x) in FINISHED for x in b.task_ids), "completed with tasks left"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), config=configs, budget=budgets, plan=st.sampled_from(PLANS), length=st.integers(1, 40))
def test_random_event_sequences_keep_the_properties(data: st.DataObject, config: dict, budget: dict,
                                                     plan: object, length: int) -> None:
    state = new_state(budget=budget, **config)
    now = T0
    start = Start(now=now, plan=plan)
    t = step(state, start)
    check(state, records.dump(state), t, start)
    state = t.state
    for _ in range(length):
        now += timedelta(minutes=1)
        event = draw_event(data, state, now)
        dump = records.dump(state)
        t = step(state, event)
        check(state, dump, t, event)
        if t.refused is None:
            state = t.state
    event_(f"ended {state.status.value} in {state.phase.value}")


@settings(max_examples=150, deadline=None)
@given(data=st.data(), config=configs, length=st.integers(1, 25))
def test_after_a_restart_nothing_is_running_that_is_not(data: st.DataObject, config: dict, length: int) -> None:
    state = step(new_state(**config), Start(now=T0, plan=PLANS[0])).state
    now = T0
    for _ in range(length):
        now += timedelta(minutes=1)
        t = step(state, draw_event(data, state, now))
        state = t.state
    alive = data.draw(st.fixed_dictionaries({r.n: st.booleans() for r in live_runs(state)}))
    t = step(state, Restarted(now=now, alive=alive))
    gone = {n for n, up in alive.items() if not up}
    after = t.state
    if after.status.value == "running":
        assert live_runs(after) or after.awaiting is not None
    adopted = {a.n for a in t.actions if a.type == "adopt_agent"}
    assert adopted <= {n for n, up in alive.items() if up}
    assert all(after.runs[n - 1].ended_at is not None for n in gone)
