"""The daemon's command line: which projects `run` serves, `schema`, and marks that name no spec."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from tests.conftest import run_cli, wait_for
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
    # 78 (EX_CONFIG) tells systemd not to restart: nothing changes until someone edits the config.
    assert r.returncode == 78
    assert "--project" in r.stderr and "config.toml" in r.stderr and "Traceback" not in r.stderr


def test_a_mark_naming_no_spec_goes_to_the_running_orchestration(project: Path, start_daemon) -> None:
    assert run_cli("new", "other", cwd=project).returncode == 0
    d = start_daemon(project)
    oid = run_cli("start", "demo", "--wait", "10", cwd=project).stdout.strip()
    d.drop({"action": "mark", "task": "T001", "status": "done"}, "m.json")
    answer = d.answer("m")
    assert answer["ok"] and answer["result"]["spec"] == "demo"
    assert f"Specflow-Orchestration: {oid}" in branch_log(project).split("\0")[0]


def test_status_watch_waits_for_changes_instead_of_spinning(project: Path) -> None:
    """`status --watch` reads the state files of the folder it watches: waking on its own reads,
    it would redraw without end. Idle, it must use next to no CPU."""
    from specflowd.core.state import OrchestrationState
    from specflowd.daemon.statefile import save
    from specflowd.repo.project import locate

    now = datetime.now(UTC)
    save(locate(project), OrchestrationState(id="0123abcd", spec="demo", project=str(project), created_at=now,
                                             updated_at=now))
    proc = subprocess.Popen(["specflowd", "status", "--watch"], cwd=project, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: watching(proc.pid), timeout=30, message="the watch to be set up")
        before = cpu_s(proc.pid)
        time.sleep(2)  # a measuring window, not synchronisation: CPU used while nothing changes
        assert cpu_s(proc.pid) - before < 0.5
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)


def watching(pid: int) -> bool:
    """Whether the process holds an inotify descriptor: its watch is set up."""
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd) == "anon_inode:inotify":
                return True
        except OSError:  # closed meanwhile
            continue
    return False


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
