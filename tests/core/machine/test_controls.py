"""Budgets, usage limits, pause/resume/cancel, pause between batches."""

from __future__ import annotations

from datetime import timedelta

from specflowd.core.events import AgentFinished, Cancel, Pause, RateLimitReset, Recover, Resume, RunResult
from specflowd.core.machine import backoff_s
from specflowd.core.vocab import RecoverChoice

from .helpers import failed, ok, started

DONE_1 = {"T001": "done", "T002": "done"}



def test_each_run_is_capped_by_the_tightest_budget_left() -> None:
    d = started(budget={"per_batch": 5.0, "healing": 0.5, "total": 50.0})
    assert d.actions("run_agent")[0].max_budget_usd == 5.0
    d.send(AgentFinished, run_n=d.run_n(), result=failed(cost=2.0))
    (heal,) = d.actions("run_agent")
    assert heal.max_budget_usd == 0.5
    d.send(AgentFinished, run_n=heal.n, result=ok(cost=0.2), task_status=DONE_1)
    assert d.state.healing_cost_usd == 0.2 and d.state.batches[0].cost_usd == 2.2


def test_reaching_the_total_budget_stops_with_the_reason_and_retry_is_refused() -> None:
    d = started(budget={"per_batch": 5.0, "total": 3.0})
    d.send(AgentFinished, run_n=d.run_n(), result=ok(cost=2.99), task_status=DONE_1)
    assert d.state.status == "needs_attention" and "budget-stopped" in d.events()
    assert d.state.error.startswith("total budget reached: $0.01 left of $3.00")
    refused = d.send(Recover, choice=RecoverChoice.RETRY).refused
    assert refused and "total budget" in refused


def test_a_spent_batch_budget_stops_and_retry_gives_the_batch_a_fresh_one() -> None:
    d = started(budget={"per_batch": 1.0, "total": 50.0}, auto_heal=False)
    d.send(AgentFinished, run_n=d.run_n(), result=ok(cost=1.5))  # tasks left: follow-up wanted
    assert d.state.status == "needs_attention" and d.state.error.startswith("batch 1 budget reached")
    d.send(Recover, choice=RecoverChoice.RETRY)
    assert d.actions("run_agent")[0].max_budget_usd == 1.0


def test_a_healing_budget_too_small_stops_instead_of_healing() -> None:
    d = started(budget={"healing": 0.0})
    d.send(AgentFinished, run_n=d.run_n(), result=failed())
    assert d.state.status == "needs_attention" and "healing budget" in d.state.error
    assert d.state.next_work.purpose == "work"


def test_a_usage_limit_waits_for_the_reset_then_resumes_the_session() -> None:
    d = started()
    n = d.run_n()
    resets = d.now + timedelta(hours=2)
    d.send(AgentFinished, run_n=n, result=RunResult(ok=False, error_type="rate_limited", session_id="s9",
                                                    resets_at=resets))
    assert (d.state.status, d.state.pause_reason, d.state.waiting_until) == ("paused", "rate_limit", resets)
    assert d.actions("schedule_wake")[0].at == resets and d.events() == ["rate-limited"]
    assert d.send(RateLimitReset).refused.startswith("too early")
    d.now = resets
    d.send(RateLimitReset)
    (run,) = d.actions("run_agent")
    assert (run.resume_session, run.purpose, run.batch) == ("s9", "work", 1)
    assert "batch-started" not in d.events() and d.state.status == "running"


def test_without_a_reset_time_the_wait_backs_off_from_a_minute_to_an_hour() -> None:
    assert [backoff_s(n) for n in (1, 2, 3, 7, 20)] == [60, 120, 240, 3600, 3600]
    d = started()
    d.send(AgentFinished, run_n=d.run_n(), result=RunResult(ok=False, error_type="rate_limited"))
    assert d.state.waiting_until == d.now + timedelta(seconds=60)


def test_pause_lets_the_run_finish_and_starts_nothing_until_resume() -> None:
    d = started()
    n = d.run_n()
    d.send(Pause)
    assert d.actions("stop_agent") == [] and d.state.status == "paused"
    d.send(AgentFinished, run_n=n, result=ok(), task_status=DONE_1)
    assert d.state.batches[0].status == "completed" and d.actions("run_agent") == []
    d.send(Resume)
    assert d.actions("run_agent")[0].batch == 2


def test_pause_that_stops_the_run_resumes_its_session_on_resume() -> None:
    d = started()
    n = d.run_n()
    d.send(Pause, stop_run=True)
    assert d.actions("stop_agent")[0].n == n
    d.send(AgentFinished, run_n=n, result=RunResult(ok=False, error_type="cancelled", session_id="s3"))
    assert d.state.batches[0].heal_attempts == 0 and d.actions("run_agent") == []
    d.send(Resume)
    (run,) = d.actions("run_agent")
    assert (run.resume_session, run.purpose) == ("s3", "work")


def test_cancel_stops_the_run_and_still_counts_its_cost() -> None:
    d = started()
    n = d.run_n()
    d.send(Cancel)
    assert d.actions("stop_agent")[0].n == n and d.state.status == "cancelled"
    d.send(AgentFinished, run_n=n, result=RunResult(ok=False, error_type="cancelled", cost_usd=0.7))
    assert d.state.total_cost_usd == 0.7 and d.actions("run_agent") == []
    assert d.send(Resume).refused


def test_pause_between_batches() -> None:
    d = started(pause_between_batches=True)
    d.send(AgentFinished, run_n=d.run_n(), result=ok(), task_status=DONE_1)
    assert (d.state.status, d.state.pause_reason) == ("paused", "between_batches")
    assert d.actions("run_agent") == []
    d.send(Resume)
    assert d.actions("run_agent")[0].batch == 2
