"""The daemon's command line: which projects `run` serves, `schema`, and marks that name no spec."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli
from tests.daemon.conftest import make_project
from tests.daemon.test_inbox import branch_log


def test_schema_prints_request_response_and_state_schemas(tmp_path: Path) -> None:
    r = run_cli("schema", cwd=tmp_path)
    assert r.returncode == 0
    schemas = json.loads(r.stdout)
    assert set(schemas) == {"request", "response", "state"}
    r = run_cli("schema", "state", cwd=tmp_path)
    assert json.loads(r.stdout)["title"] == "OrchestrationState"


def test_run_serves_the_projects_of_the_user_config(repo: Path, tmp_path: Path, start_daemon) -> None:
    project = make_project(repo)
    config = Path(tmp_path / "home/.config/specflowd/config.toml")
    config.parent.mkdir(parents=True)
    config.write_text(f'projects = ["{project}"]\n')
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    d = start_daemon(outside)
    assert str(project) in d.log()
    d.specflow = project / ".specflow"
    d.drop({"action": "mark", "task": "T001", "status": "done"}, "m.json")
    assert d.answer("m")["ok"]


def test_run_with_nothing_to_serve_says_what_to_do(tmp_path: Path) -> None:
    r = run_cli("run", cwd=tmp_path, timeout=20)
    assert r.returncode == 1
    assert "--project" in r.stderr and "Traceback" not in r.stderr


def test_a_mark_naming_no_spec_goes_to_the_running_orchestration(project: Path, start_daemon) -> None:
    assert run_cli("new", "other", cwd=project).returncode == 0
    d = start_daemon(project)
    oid = run_cli("start", "demo", "--wait", "10", cwd=project).stdout.strip()
    d.drop({"action": "mark", "task": "T001", "status": "done"}, "m.json")
    answer = d.answer("m")
    assert answer["ok"] and answer["result"]["spec"] == "demo"
    assert f"Specflow-Orchestration: {oid}" in branch_log(project).split("\0")[0]
