"""The phases (SPEC §6): design only without tasks, analyze unless skipped, implement per batch,
verify unless empty, merge by request or auto_merge."""

from __future__ import annotations

from specflowd.core.events import AgentFinished, Merge, MergeFinished, PlanReady, Start, VerifyFinished

from .helpers import TASKS, Driver, new_state, ok, plan_of

EMPTY = plan_of(b"# Tasks\n")
ALL_DONE = plan_of(b"- [x] T001 One\n- [-] T002 Two\n")


def test_design_runs_when_the_task_list_has_no_tasks_then_analyze_then_implement() -> None:
    d = Driver(new_state())
    d.send(Start, plan=EMPTY, design_prompt="a todo app")
    (run,) = d.actions("run_agent")
    assert (run.phase, run.purpose, run.prompt.template) == ("design", "design", "design")
    assert run.prompt.values["design_prompt"] == "a todo app"
    d.send(AgentFinished, run_n=run.n, result=ok())
    assert d.actions("read_plan") and d.state.awaiting == "plan"
    d.send(PlanReady, plan=plan_of(TASKS))
    (run,) = d.actions("run_agent")
    assert (d.state.phase, run.prompt.template) == ("analyze", "analyze")
    d.send(AgentFinished, run_n=run.n, result=ok())
    d.send(PlanReady, plan=plan_of(TASKS))
    (run,) = d.actions("run_agent")
    assert (d.state.phase, run.batch, run.task_ids) == ("implement", 1, ["T001", "T002"])


def test_design_is_skipped_when_the_task_list_has_tasks() -> None:
    d = Driver(new_state(skip_analyze=True))
    d.send(Start, plan=plan_of(TASKS))
    assert "design skipped (the task list has 4 tasks)" in [x.decision for x in d.state.decisions]
    assert [r.phase for r in d.state.runs] == ["implement"]


def test_no_tasks_with_skip_design_needs_attention_with_the_reason() -> None:
    d = Driver(new_state(skip_design=True))
    d.send(Start, plan=EMPTY)
    assert d.state.status == "needs_attention"
    assert "no tasks" in d.state.error and "skip_design" in d.state.error
    assert d.actions("run_agent") == []


def test_a_design_that_writes_no_tasks_needs_attention() -> None:
    d = Driver(new_state())
    d.send(Start, plan=EMPTY)
    d.send(AgentFinished, run_n=d.run_n(), result=ok())
    d.send(PlanReady, plan=EMPTY)
    assert d.state.status == "needs_attention" and "has no tasks" in d.state.error


def test_nothing_left_to_do_goes_straight_to_verify() -> None:
    d = Driver(new_state(verify_command="pytest -q"))
    d.send(Start, plan=ALL_DONE)
    assert d.state.phase == "verify" and d.actions("run_verify")[0].command == "pytest -q"
    assert d.state.runs == []


def test_skip_analyze() -> None:
    d = Driver(new_state(skip_analyze=True))
    d.send(Start, plan=plan_of(TASKS))
    assert "analyze" not in [r.phase for r in d.state.runs]


def test_an_empty_verify_command_passes_and_merge_waits_for_a_request() -> None:
    d = Driver(new_state())
    d.send(Start, plan=ALL_DONE)
    assert "skipped" in d.events() and d.state.status == "waiting_merge"
    assert d.actions("merge_branch") == []
    d.send(Merge)
    (merge,) = d.actions("merge_branch")
    assert (merge.branch, merge.base_branch) == ("specflow/demo", "main")
    d.send(MergeFinished, outcome="merged")
    assert d.state.status == "completed" and d.events() == ["merged", "completed"]


def test_auto_merge_merges_without_a_request() -> None:
    d = Driver(new_state(auto_merge=True, verify_command="make test"))
    d.send(Start, plan=ALL_DONE)
    d.send(VerifyFinished, exit_code=0)
    assert d.actions("merge_branch") and d.state.status == "running"


def test_merge_conflict_and_dirty_base_need_attention_with_why() -> None:
    for outcome, words in (("conflict", "a.py, b.py"), ("dirty", "uncommitted changes"), ("failed", "boom")):
        d = Driver(new_state(auto_merge=True))
        d.send(Start, plan=ALL_DONE)
        d.send(MergeFinished, outcome=outcome, files=["a.py", "b.py"], detail="boom")
        assert d.state.status == "needs_attention" and words in d.state.error
        assert "needs-attention" in d.events()
