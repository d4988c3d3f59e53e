"""The record: every event a commit with its trailers and a decision; the state rebuilt from the
feed those commits make."""

from __future__ import annotations

from datetime import timedelta

import pytest

from specflowd.core.events import AgentFinished, Merge, MergeFinished, Pause, Resume, RunResult, Start
from specflowd.core.rebuild import rebuild
from specflowd.core.trailers import event_message
from specflowd.repo.feed import entry_from

from .helpers import T0, TASKS, Driver, failed, new_state, ok, plan_of


def test_events_are_commits_with_subject_trailers_and_a_decision() -> None:
    d = Driver(new_state(skip_analyze=True))
    d.send(Start, plan=plan_of(TASKS))
    started = d.actions("commit_event")[-1]
    assert started.subject == "orchestration 7f3c9a21: batch 1/2 started"
    assert started.trailers == {"Spec": "demo", "Orchestration": "7f3c9a21", "Phase": "implement",
                                "Batch": "1/2 Setup"}
    d.send(AgentFinished, run_n=d.run_n(), result=ok(cost=1.25), task_status={"T001": "done", "T002": "done"})
    completed = d.actions("commit_event")[0]
    assert completed.subject == "orchestration 7f3c9a21: batch 1/2 completed"
    assert completed.trailers["Cost-USD"] == "1.2500"
    assert d.state.decisions[-1].at == d.now


def feed_of(d: Driver, events: list) -> list[dict]:
    """Drive the events and turn every CommitEvent into a feed entry, as git log would give it."""
    entries = []
    for make, fields in events:
        t = d.send(make, **fields)
        assert t.refused is None, t.refused
        for c in d.actions("commit_event"):
            message = event_message(c.subject, c.event, c.trailers)
            entries.append(entry_from("0" * 40, int((d.now - T0).total_seconds()) + 1_700_000_000, "specflowd", message))
    return entries


def test_rebuild_from_the_feed_gives_status_phase_batches_cost_and_decisions() -> None:
    d = Driver(new_state(skip_analyze=True, max_heal_attempts=1))
    entries = feed_of(d, [
        (Start, {"plan": plan_of(TASKS)}),
        (AgentFinished, {"run_n": 1, "result": ok(cost=1.0), "task_status": {"T001": "done", "T002": "done"}}),
        (AgentFinished, {"run_n": 2, "result": failed(cost=0.5)}),
        (AgentFinished, {"run_n": 3, "result": ok(cost=0.25), "task_status": {"T003": "done", "T004": "done"}}),
    ])
    s = rebuild(entries, project="/p")
    assert (s.id, s.spec, s.status, s.phase) == ("7f3c9a21", "demo", "waiting_merge", "merge")
    assert [(b.name, b.status, b.heal_attempts) for b in s.batches] == [
        ("Setup", "completed", 0), ("Core Services", "completed", 1)]
    assert s.total_cost_usd == pytest.approx(1.75)
    assert [x.decision for x in s.decisions] == [x.decision for x in d.state.decisions]


def test_rebuild_keeps_needs_attention_reasons_and_usage_limit_waits() -> None:
    d = Driver(new_state(skip_analyze=True, auto_heal=False))
    entries = feed_of(d, [(Start, {"plan": plan_of(TASKS)}), (AgentFinished, {"run_n": 1, "result": failed()})])
    s = rebuild(entries)
    assert s.status == "needs_attention" and s.batches[0].status == "failed" and s.error.startswith("batch 1 failed")
    d = Driver(new_state(skip_analyze=True))
    resets = T0 + timedelta(hours=3)
    entries = feed_of(d, [(Start, {"plan": plan_of(TASKS)}), (AgentFinished, {"run_n": 1, "result": RunResult(
        ok=False, error_type="rate_limited", resets_at=resets)})])
    s = rebuild(entries)
    assert (s.status, s.waiting_until) == ("paused", resets)


def test_rebuild_follows_pause_resume_and_merge() -> None:
    d = Driver(new_state(skip_analyze=True))
    entries = feed_of(d, [
        (Start, {"plan": plan_of(b"- [x] T001 Done\n")}), (Merge, {}), (MergeFinished, {"outcome": "merged"})])
    assert rebuild(entries).status == "completed"
    d = Driver(new_state(skip_analyze=True))
    entries = feed_of(d, [(Start, {"plan": plan_of(TASKS)}), (Pause, {})])
    assert rebuild(entries).status == "paused"
    entries += feed_of(d, [(Resume, {})])
    assert rebuild(entries).status == "running"


def test_rebuild_needs_events() -> None:
    with pytest.raises(ValueError):
        rebuild([])
