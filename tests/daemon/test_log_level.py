"""The daemon's log level comes from --log-level, $SPECFLOWD_LOG_LEVEL, or the config."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import configure
from tests.daemon.conftest import make_project


def test_log_level_from_the_project_config(repo: Path, start_daemon) -> None:
    project = make_project(repo)
    configure(project, daemon={"log_level": "debug"})
    d = start_daemon(project)
    d.drop({"id": "probe", "action": "mark", "spec": "demo", "task": "T001", "status": "done"}, "probe.json")
    assert d.answer("probe")["ok"] is True
    assert "DEBUG" in d.log()


def test_the_flag_wins_over_the_config(repo: Path, start_daemon) -> None:
    project = make_project(repo)
    configure(project, daemon={"log_level": "debug"})
    d = start_daemon(project, "--log-level", "warning", ready=False)
    d.drop({"id": "probe", "action": "mark", "spec": "demo", "task": "T001", "status": "done"}, "probe.json")
    assert d.answer("probe")["ok"] is True
    assert "DEBUG" not in d.log() and "INFO" not in d.log()
