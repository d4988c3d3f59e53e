"""Records (core/records.py): the dataclasses of the config and the state files, loaded and checked
against their type hints without pydantic, and dumped as pydantic wrote them before."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from specflowd.core import records
from specflowd.core.config import Config, OrchestrationConfig, PoolConfig
from specflowd.core.records import RecordError
from specflowd.core.state import AgentRun, BatchState, OrchestrationState
from specflowd.core.vocab import BatchStatus, Phase, Status, TaskStatus

T0 = datetime(2025, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)


def state() -> OrchestrationState:
    return OrchestrationState(id="0123abcd", spec="demo", project="/p", status=Status.NEEDS_ATTENTION, created_at=T0,
                              updated_at=T0, batches=[BatchState(index=1, name="Setup", task_ids=["T001"],
                                                                 status=BatchStatus.FAILED)],
                              runs=[AgentRun(n=1, phase=Phase.IMPLEMENT, batch=1, started_at=T0, cost_usd=0.5)],
                              task_status={"T001": TaskStatus.BLOCKED})


def test_a_state_goes_to_json_and_back_unchanged() -> None:
    s = state()
    text = records.to_json(s)
    data = json.loads(text)
    assert data["status"] == "needs_attention" and data["created_at"] == "2025-01-01T12:00:00.123456Z"
    assert data["config"]["budget"]["total"] == 50.0 and data["runs"][0]["phase"] == "implement"
    back = records.from_json(OrchestrationState, text)
    assert back == s and back.status is Status.NEEDS_ATTENTION and back.task_status["T001"] is TaskStatus.BLOCKED


@pytest.mark.parametrize(("change", "path", "words"), [
    (lambda d: d.update(status="exploded"), "status", "'exploded' is not one of"),
    (lambda d: d.update(surprise=1), "surprise", "unknown field"),
    (lambda d: d.pop("spec"), "spec", "missing"),
    (lambda d: d["runs"][0].update(n="1"), "runs[0].n", "expected an integer, got a string"),
    (lambda d: d["runs"][0].update(n=True), "runs[0].n", "expected an integer, got a boolean"),
    (lambda d: d.update(created_at="yesterday"), "created_at", "expected a time"),
    (lambda d: d["config"]["orchestration"].update(batch_size=0), "config.orchestration.batch_size", "at least 1"),
    (lambda d: d["task_status"].update(T002="finished"), "task_status.T002", "not one of"),
    (lambda d: d.update(batches={}), "batches", "expected a list"),
])
def test_what_does_not_fit_is_named_by_its_path(change, path: str, words: str) -> None:
    data = records.dump(state())
    change(data)
    with pytest.raises(RecordError) as e:
        records.load(OrchestrationState, data)
    assert e.value.path == path and words in e.value.message


def test_an_int_is_a_float_but_no_bool_is_a_number() -> None:
    data = records.dump(state())
    data["total_cost_usd"] = 3
    assert records.load(OrchestrationState, data).total_cost_usd == 3.0
    data["total_cost_usd"] = False
    with pytest.raises(RecordError, match="total_cost_usd: expected a number"):
        records.load(OrchestrationState, data)


def test_given_keeps_only_the_keys_set_checked() -> None:
    assert records.given(OrchestrationConfig, {"auto_merge": True}) == {"auto_merge": True}
    with pytest.raises(RecordError, match="max_heal_attempts: must be at most 20, not 21"):
        records.given(OrchestrationConfig, {"max_heal_attempts": 21})
    with pytest.raises(RecordError, match="max_agents: must be at least 1"):
        records.given(PoolConfig, {"max_agents": 0})


def test_defaults_are_fresh_per_record() -> None:
    a, b = Config(), Config()
    a.agent.allowed_tools.append("Bash")
    assert b.agent.allowed_tools == [] and Config().agent.disallowed_tools == ["AskUserQuestion"]
