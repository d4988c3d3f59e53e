"""Pure orchestration transitions and the state files they are kept in."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from specflowd.core import orchestrations, records
from specflowd.core.config import Config, OrchestrationConfig
from specflowd.core.state import OrchestrationState
from specflowd.core.vocab import Status
from specflowd.daemon import statefile
from specflowd.errors import UserError
from specflowd.repo.project import Project


def start(existing=(), request_id: str = "r1", overrides: dict | None = None) -> OrchestrationState:
    return orchestrations.start(existing, new_id="0123abcd", spec="demo", project="/p", config=Config(),
                                overrides=overrides or {}, request_id=request_id, now=datetime.now(UTC))


def test_start_applies_only_the_overrides_given() -> None:
    state = start(overrides=records.given(OrchestrationConfig, {"auto_merge": True}))
    assert state.status is Status.RUNNING and state.phase.value == "design"
    assert state.config.orchestration.auto_merge is True
    assert state.config.orchestration.batch_size == 15


def test_a_second_start_is_refused_naming_the_running_one_unless_it_is_the_same_request() -> None:
    first = start()
    with pytest.raises(UserError) as e:
        start([first], request_id="r2")
    assert e.value.code == "conflict" and first.id in e.value.message
    assert start([first], request_id="r1") is first


def test_state_files_round_trip_and_corrupt_ones_are_moved_aside(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    state = start()
    project = Project(root=tmp_path, common_dir=tmp_path / ".git")
    statefile.save(project, state)
    (project.workflows / "orchestration-deadbeef.json").write_text('{"schema_version": 1, "id": "dead')
    with caplog.at_level(logging.WARNING):
        loaded = statefile.load_all(project)
    assert loaded == {state.id: state}
    assert (project.workflows / "orchestration-deadbeef.json.corrupt").exists()
    assert "orchestration-deadbeef.json" in caplog.text
    assert not list(project.workflows.glob(".*tmp"))
