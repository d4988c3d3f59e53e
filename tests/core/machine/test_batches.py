"""Dual confirmation, the follow-up run, healing, and what `recover` does with a failed batch."""

from __future__ import annotations

from specflowd.core.events import AgentFinished, PlanReady, Recover, Start, TasksMarked, VerifyFinished
from specflowd.core.vocab import RecoverChoice

from .helpers import TASKS, Driver, failed, new_state, ok, plan_of, started

DONE_1 = {"T001": "done", "T002": "done"}



def test_a_batch_completes_only_when_the_run_succeeded_and_every_task_is_done() -> None:
    d = started()
    n = d.run_n()
    d.send(TasksMarked, statuses=DONE_1)
    d.send(AgentFinished, run_n=n, result=failed())
    assert d.state.batches[0].status == "healing"
    d = started()
    d.send(AgentFinished, run_n=d.run_n(), result=ok(), task_status={"T001": "done", "T002": "skipped"})
    assert d.state.batches[0].status == "completed" and "batch-completed" in d.events()


def test_tasks_left_after_a_good_run_get_one_follow_up_in_the_same_session_then_healing() -> None:
    d = started()
    d.send(AgentFinished, run_n=d.run_n(), result=ok(session="sess-a"), task_status={"T001": "done"})
    (follow,) = d.actions("run_agent")
    assert (follow.purpose, follow.resume_session, follow.fork) == ("followup", "sess-a", False)
    assert follow.task_ids == ["T002"] and follow.prompt.template == "followup"
    d.send(AgentFinished, run_n=follow.n, result=ok(session="sess-a"))
    (heal,) = d.actions("run_agent")
    assert heal.purpose == "heal" and heal.fork and "T002 not marked done" in heal.prompt.values["error"]


def test_healing_forks_the_failed_session_with_its_context_up_to_max_attempts() -> None:
    d = started(max_heal_attempts=2)
    d.send(AgentFinished, run_n=d.run_n(), result=failed(session="sess-b"), task_status={"T001": "done"})
    (heal,) = d.actions("run_agent")
    values = heal.prompt.values
    assert (heal.resume_session, heal.fork, heal.prompt.template) == ("sess-b", True, "heal")
    assert len(values["stderr_tail"]) == 2000 and len(values["transcript_tail"]) == 2000
    assert values["tasks_done"] == "T001" and values["tasks_remaining"] == "T002"
    assert "it broke" in values["error"] and values["attempt"] == "1"
    assert "heal-started" in d.events()
    d.send(AgentFinished, run_n=heal.n, result=failed())
    assert d.actions("run_agent")[0].prompt.values["attempt"] == "2"
    d.send(AgentFinished, run_n=d.run_n(), result=failed())
    assert d.state.status == "needs_attention" and d.state.batches[0].status == "failed"
    assert d.events()[:2] == ["batch-failed", "needs-attention"]


def test_no_healing_without_auto_heal() -> None:
    d = started(auto_heal=False)
    d.send(AgentFinished, run_n=d.run_n(), result=failed())
    assert d.state.status == "needs_attention" and d.actions("run_agent") == []


def test_recover_retry_skip_abort() -> None:
    d = started(auto_heal=False)
    d.send(AgentFinished, run_n=d.run_n(), result=failed())
    attention = d.state
    d.send(Recover, choice=RecoverChoice.RETRY)
    (run,) = d.actions("run_agent")
    assert (run.batch, run.purpose, run.resume_session) == (1, "work", None)
    d = Driver(attention)
    d.send(Recover, choice=RecoverChoice.SKIP)
    assert d.state.batches[0].status == "skipped" and d.actions("run_agent")[0].batch == 2
    d = Driver(attention)
    d.send(Recover, choice=RecoverChoice.ABORT)
    assert d.state.status == "failed" and "failed" in d.events()


def test_a_failed_verify_is_healed_from_the_last_session_then_verified_again() -> None:
    d = Driver(new_state(skip_analyze=True, verify_command="pytest -q"))
    d.send(Start, plan=plan_of(b"- [ ] T001 One\n"))
    d.send(AgentFinished, run_n=d.run_n(), result=ok(session="impl"), task_status={"T001": "done"})
    d.send(VerifyFinished, exit_code=1, output_tail="1 failed")
    (heal,) = d.actions("run_agent")
    assert (heal.phase, heal.resume_session, heal.fork) == ("verify", "impl", True)
    assert "1 failed" in heal.prompt.values["verify_note"] and "verify-failed" in d.events()
    d.send(AgentFinished, run_n=heal.n, result=ok())
    assert d.actions("run_verify")
    d.send(VerifyFinished, exit_code=1, output_tail="still")
    assert d.state.status == "needs_attention" and "verify failed" in d.state.error


def test_plan_ready_is_refused_when_no_plan_was_asked_for() -> None:
    d = started()
    assert d.send(PlanReady, plan=plan_of(TASKS)).refused


def test_a_run_refused_the_tools_its_tasks_need_stops_for_attention_naming_them() -> None:
    """Claude Code says `success` after refusing every Write and `git commit`: with tasks left, that
    is a failure with the refused calls named, and no follow-up or healer is refused the same again."""
    d = started(max_heal_attempts=3)
    n = d.run_n()
    d.send(AgentFinished, run_n=n, result=ok(refused=["Bash(git commit -m x)", "Write(/w/a.py)"]),
           task_status={"T001": "done"})
    assert d.actions("run_agent") == []
    assert d.state.status == "needs_attention" and d.state.batches[0].status == "failed"
    run = d.state.runs[0]
    assert (run.ok, run.error_type) == (False, "permission_denied")
    assert d.state.error and "Claude Code was refused `Bash(git commit -m x)`, `Write(/w/a.py)`" in d.state.error
    assert "allowed_tools" in d.state.error and d.events()[:2] == ["batch-failed", "needs-attention"]


def test_refusals_do_not_matter_when_every_task_got_done() -> None:
    d = started()
    d.send(AgentFinished, run_n=d.run_n(), result=ok(refused=["WebFetch"]), task_status=DONE_1)
    assert d.state.batches[0].status == "completed" and d.state.runs[0].refused == ["WebFetch"]


def test_runs_keep_their_tokens_their_start_commit_and_whether_the_cost_is_an_estimate() -> None:
    from specflowd.core.events import AgentStarted
    from specflowd.core.prices import TokenUsage

    d = started()
    n = d.run_n()
    d.send(AgentStarted, run_n=n, pid=10, base_commit="abc123")
    used = {"gpt-5": TokenUsage(input=10, output=2), "gpt-5-mini": TokenUsage(input=1)}
    d.send(AgentFinished, run_n=n, result=ok(cost=0.5, tokens=used, cost_estimated=True, unpriced=["x"]),
           task_status=DONE_1)
    run = d.state.runs[0]
    assert run.base_commit == "abc123" and run.tokens == TokenUsage(input=11, output=2)
    assert run.cost_estimated and run.unpriced == ["x"] and d.state.cost_estimated


def test_a_cli_that_cannot_fork_heals_in_a_fresh_session_with_the_failures_context() -> None:
    from specflowd.core.config import AgentConfig

    state = new_state(skip_analyze=True)
    state.config.agent = AgentConfig(kind="gemini", command="gemini")
    d = Driver(state)
    d.send(Start, plan=plan_of(TASKS))
    d.send(AgentFinished, run_n=d.run_n(), result=ok(session="g-1"), task_status={"T001": "done"})
    (follow,) = d.actions("run_agent")  # Gemini resumes its own session for a follow-up
    assert follow.purpose == "followup" and follow.resume_session == "g-1"
    d.send(AgentFinished, run_n=follow.n, result=failed(session="g-1"), task_status={"T001": "done"})
    (heal,) = d.actions("run_agent")  # but cannot fork it for a healer
    assert (heal.purpose, heal.resume_session, heal.fork) == ("heal", None, False)
    assert "it broke" in heal.prompt.values["error"] and heal.prompt.values["tasks_remaining"] == "T002"
