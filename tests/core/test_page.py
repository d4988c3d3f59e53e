"""The live page's documents (core/page.py): an orchestration with its batches, tasks and budgets,
and an agent's card with the task it is on and the two before and after it, described."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from specflowd.core import page
from specflowd.core.overview import window
from specflowd.core.state import AgentRun, BatchState, OrchestrationState
from specflowd.core.vocab import BatchStatus, Phase, TaskStatus

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
TITLES = {f"T00{i}": f"Task number {i}" for i in range(1, 8)}


def state() -> OrchestrationState:
    s = OrchestrationState(id="7f3c9a21", spec="demo", project="/p", created_at=T0, updated_at=T0, started_at=T0,
                           phase=Phase.IMPLEMENT, current_batch=2, total_cost_usd=1.5, healing_cost_usd=0.25)
    s.batches = [BatchState(index=1, name="Setup", task_ids=["T001", "T002"], status=BatchStatus.COMPLETED, cost_usd=1.0),
                 BatchState(index=2, name="Core", task_ids=["T003", "T004", "T005", "T006", "T007"],
                            status=BatchStatus.RUNNING, cost_usd=0.5, cost_at_retry=0.2, runs=[2])]
    s.task_status = {"T001": TaskStatus.DONE, "T002": TaskStatus.DONE, "T003": TaskStatus.DONE,
                     "T004": TaskStatus.SKIPPED, "T005": TaskStatus.PENDING, "T006": TaskStatus.BLOCKED,
                     "T007": TaskStatus.PENDING, "T008": TaskStatus.DONE}
    s.runs = [AgentRun(n=1, phase=Phase.IMPLEMENT, batch=1, started_at=T0, ended_at=T0 + timedelta(minutes=1)),
              AgentRun(n=2, phase=Phase.IMPLEMENT, batch=2, pid=4242, started_at=T0 + timedelta(minutes=2))]
    return s


def test_a_long_title_is_cut_on_a_card() -> None:
    s = state()
    row = {"orchestration": s.id, "run": 2, "around": window(["T005"], "T005", {"T005": "x" * 5000}, s.task_status)}
    got = page.card(row, "build-7", s)["around"]
    assert len(got[0]["title"]) == page.TITLE_CHARS and got[0]["title"].endswith("…")


def test_the_orchestration_document_has_batches_tasks_and_budgets() -> None:
    doc = page.orchestration(state(), TITLES, T0 + timedelta(minutes=5))
    assert doc["orchestration"] == "7f3c9a21" and doc["batch"] == "2/2 Core"
    assert doc["elapsed_s"] == 300.0
    assert [(b["index"], b["status"], b["tasks_done"], b["tasks_total"]) for b in doc["batches"]] == [
        (1, "completed", 2, 2), (2, "running", 2, 5)]
    # The plan's tasks, with titles; T008 was done before the plan and is in no batch.
    assert list(doc["tasks"]) == ["T001", "T002", "T003", "T004", "T005", "T006", "T007"]
    assert doc["tasks"]["T006"] == {"status": "blocked", "title": "Task number 6"}
    assert doc["budgets"] == [
        {"name": "batch", "spent_usd": 0.3, "limit_usd": 5.0},  # since `recover retry` reset it
        {"name": "healing", "spent_usd": 0.25, "limit_usd": 2.0},
        {"name": "total", "spent_usd": 1.5, "limit_usd": 50.0},
    ]
    assert doc["started_at"] == T0.isoformat()


def test_a_card_is_the_fleet_row_with_host_start_and_described_neighbours() -> None:
    s = state()
    tasks = s.batches[1].task_ids
    row = {"project": "/p", "spec": "demo", "orchestration": s.id, "run": 2, "task": "T005", "state": "running",
           "around": window(tasks, "T005", TITLES, s.task_status)}
    c = page.card(row, "build-7", s)
    assert c["id"] == "7f3c9a21-2" and c["host"] == "build-7"
    assert c["started_at"] == (T0 + timedelta(minutes=2)).isoformat()
    assert [(t["task"], t["title"], t["status"], t["current"]) for t in c["around"]] == [
        ("T003", "Task number 3", "done", False),
        ("T004", "Task number 4", "skipped", False),
        ("T005", "Task number 5", "pending", True),
        ("T006", "Task number 6", "blocked", False),
        ("T007", "Task number 7", "pending", False),
    ]
    assert {k: c[k] for k in row if k != "around"} == {k: v for k, v in row.items() if k != "around"}
