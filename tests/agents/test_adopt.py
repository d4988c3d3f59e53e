"""A restarted daemon adopts runs the dead one started: alive ones are followed, dead ones reported."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from specflowd.agents.process import is_alive
from specflowd.agents.result import AgentRequest, RunFinished, RunInterrupted, RunRecord, RunStarted
from tests.agents.conftest import Harness, log_path
from tests.conftest import git, wait_for

# A daemon that starts one run, hands its record over (as the state file would), and is killed.
DAEMON = """
import os, queue, signal, sys
from pathlib import Path
from specflowd.agents.result import AgentRequest, RunProgress
from specflowd.agents.supervisor import Supervisor
events = queue.Queue()
supervisor = Supervisor(events.put)
supervisor.start("r1", AgentRequest.model_validate_json(sys.argv[1]), Path(sys.argv[2]), orchestration="o1")
while not (isinstance(e := events.get(timeout=20), RunProgress) and e.session_id):
    pass
print(supervisor.record("r1").model_dump_json(), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def crashed_daemon(repo: Path, log: Path) -> RunRecord:
    request = AgentRequest(kind="claude", prompt="Implement T002", cwd=repo)
    daemon = subprocess.run([sys.executable, "-c", DAEMON, request.model_dump_json(), str(log)],
                            capture_output=True, text=True, timeout=30)
    assert daemon.returncode == -signal.SIGKILL, daemon.stderr
    return RunRecord.model_validate_json(daemon.stdout.splitlines()[-1])


def session_in(log: Path) -> str:
    return json.loads(log.read_text().splitlines()[0])["session_id"]


def test_a_live_run_is_adopted_and_its_result_read_from_the_log(fake_bin: Path, repo: Path, scenario,
                                                                harness: Harness, tmp_path: Path) -> None:
    go = tmp_path / "go"
    scenario(steps=[{"tool": "Read"}, {"wait_for_file": str(go)}, {"write": "b.txt", "content": "b"},
                    {"commit": "Add b", "task": "T002"}], cost=0.5, text="T002 done")
    log = log_path(repo, "o1", 1, "implement")
    record = crashed_daemon(repo, log)
    assert is_alive(record.pid, record.start_time)
    assert record.session_id == session_in(log)

    harness.supervisor.adopt(record)
    started = harness.next(RunStarted, "r1")
    assert started.adopted and started.pid == record.pid
    go.touch()  # the agent goes on writing into the log after its daemon died
    result = harness.result("r1")
    assert result.ok and (result.cost_usd, result.text, result.exit_code) == (0.5, "T002 done", None)
    assert result.session_id == record.session_id
    assert "Specflow-Task: T002" in git(repo, "log", "-1", "--format=%B")


def test_a_run_that_died_with_the_daemon_is_interrupted_with_its_session(
        fake_bin: Path, repo: Path, scenario, harness: Harness) -> None:
    scenario(steps=[{"tool": "Read"}, {"hang": True}])
    log = log_path(repo, "o1", 1, "implement")
    record = crashed_daemon(repo, log)
    os.killpg(record.pid, signal.SIGKILL)
    wait_for(lambda: not is_alive(record.pid, record.start_time), message="the agent to die")

    harness.supervisor.adopt(record)
    interrupted = harness.next(RunInterrupted, "r1")
    assert interrupted.session_id == session_in(log) and interrupted.log_path == log
    assert not any(isinstance(e, RunStarted | RunFinished) for e in harness.seen)


def test_a_run_that_finished_while_the_daemon_was_down_keeps_its_result(
        fake_bin: Path, repo: Path, scenario, harness: Harness, tmp_path: Path) -> None:
    go = tmp_path / "go"
    scenario(steps=[{"tool": "Read"}, {"wait_for_file": str(go)}], outcome="max_turns")
    log = log_path(repo, "o1", 1, "implement")
    record = crashed_daemon(repo, log)
    go.touch()
    wait_for(lambda: not is_alive(record.pid, record.start_time), message="the agent to finish")

    harness.supervisor.adopt(record)
    result = harness.result("r1")
    assert result.error_type == "max_turns" and result.session_id == record.session_id


def test_a_reused_pid_is_not_mistaken_for_the_run(repo: Path, harness: Harness) -> None:
    log = log_path(repo, "o1", 1, "implement")
    log.parent.mkdir(parents=True)
    log.write_text('{"type":"system","subtype":"init","session_id":"s-9"}\n')
    record = RunRecord(run_id="r1", kind="claude", pid=os.getpid(), start_time=1, log_path=log,
                       stderr_path=log.with_suffix(".stderr"), started_at=0, timeout_s=60)
    harness.supervisor.adopt(record)
    assert harness.next(RunInterrupted, "r1").session_id == "s-9"


def test_an_adopted_run_can_be_cancelled(fake_bin: Path, repo: Path, scenario, harness: Harness) -> None:
    scenario(steps=[{"tool": "Read"}, {"hang": True, "ignore_term": True}])
    record = crashed_daemon(repo, log_path(repo, "o1", 1, "implement"))
    harness.supervisor.adopt(record)
    harness.next(RunStarted, "r1")
    assert harness.supervisor.cancel("r1")
    result = harness.result("r1")
    assert result.error_type == "cancelled" and result.session_id == record.session_id
    wait_for(lambda: not is_alive(record.pid, record.start_time), message="the adopted agent to die")


def test_a_run_without_a_log_is_interrupted(repo: Path, harness: Harness) -> None:
    log = log_path(repo, "o1", 1, "implement")
    record = RunRecord(run_id="r1", kind="claude", pid=os.getpid(), start_time=1, log_path=log,
                       stderr_path=log.with_suffix(".stderr"), started_at=0, timeout_s=60, session_id="s-1")
    harness.supervisor.adopt(record)
    assert harness.next(RunInterrupted, "r1").session_id == "s-1"
