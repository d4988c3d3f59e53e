"""After a daemon restart: adopt what still runs, resume what has a session, re-run the rest,
re-check a half-done merge, and leave nothing `running` that is not."""

from __future__ import annotations

from dataclasses import replace

from specflowd.core.events import (
    AgentFinished,
    AgentStarted,
    Cancel,
    MergeFinished,
    Restarted,
    RunResult,
    Start,
)
from specflowd.core.machine import step

from .helpers import Driver, new_state, plan_of, started


def test_a_live_agent_is_adopted() -> None:
    d = started()
    n = d.run_n()
    d.send(AgentStarted, run_n=n, pid=4242, pid_start_time=99, log_file="logs/1.jsonl", session_id="s1")
    d.send(Restarted, alive={n: True})
    (adopt,) = d.actions("adopt_agent")
    assert (adopt.n, adopt.pid, adopt.log_file) == (n, 4242, "logs/1.jsonl")
    assert d.actions("run_agent") == [] and "restarted" in d.events()


def test_a_dead_agent_with_a_session_is_resumed_and_one_without_is_run_again() -> None:
    d = started()
    n = d.run_n()
    d.send(AgentStarted, run_n=n, pid=1, session_id="s1")
    before = d.state
    d.send(Restarted, alive={n: False})
    (run,) = d.actions("run_agent")
    assert run.resume_session == "s1" and d.state.runs[n - 1].error_type == "lost"
    d = Driver(replace(before, runs=[replace(before.runs[0], session_id=None)]))
    d.send(Restarted, alive={})
    (run,) = d.actions("run_agent")
    assert run.resume_session is None and run.batch == 1


def test_a_half_done_merge_is_checked_again() -> None:
    d = Driver(new_state(auto_merge=True))
    d.send(Start, plan=plan_of(b"- [x] T001 Done\n"))
    d.send(Restarted, alive={})
    (merge,) = d.actions("merge_branch")
    assert merge.recheck
    d.send(MergeFinished, outcome="merged")
    assert d.state.status == "completed"


def test_a_usage_limit_wait_gets_its_timer_again() -> None:
    d = started()
    d.send(AgentFinished, run_n=d.run_n(), result=RunResult(ok=False, error_type="rate_limited"))
    d.send(Restarted, alive={})
    assert d.actions("schedule_wake")[0].at == d.state.waiting_until


def test_running_with_nothing_recorded_in_flight_needs_attention() -> None:
    d = started()
    broken = replace(d.state, runs=[])
    t = step(broken, Restarted(now=d.now, alive={}))
    assert t.state.status == "needs_attention" and "daemon restarted" in t.state.error


def test_a_cancelled_orchestration_s_surviving_agent_is_stopped() -> None:
    d = started()
    n = d.run_n()
    d.send(Cancel)
    d.send(Restarted, alive={n: True})
    assert d.actions("stop_agent")[0].n == n and d.actions("adopt_agent") == []
