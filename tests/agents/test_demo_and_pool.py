"""The demo agent through the supervisor, and the daemon-wide pool of agent slots."""

from __future__ import annotations

import sys
from pathlib import Path

from specflowd.agents.demo import tasks_in
from specflowd.agents.pool import Pool
from specflowd.agents.result import AgentRequest, RunFinished, RunStarted
from specflowd.core.vocab import ErrorType
from tests.agents.conftest import Harness, log_path
from tests.conftest import git, wait_for

TASKS = """Implement these tasks:
- [ ] T001 [P] [US1] Create the model (mark: specflowd mark T001 --done)
- [x] T002 Already done (mark: specflowd mark T002 --done)
- [ ] T003 [depends: T001] Wire it up (mark: specflowd mark T003 --done)
"""


def test_demo_agent_does_each_open_task_in_git(repo: Path, harness: Harness) -> None:
    request = AgentRequest(kind="command", command=[sys.executable, "-m", "specflowd.agents.demo", "--no-mark"],
                           prompt=TASKS, cwd=repo, env={"SPECFLOW_TASKS": "T001 T002 T003"})
    result = harness.run(request, log_path(repo, "o1", 1, "implement"))
    assert result.ok and result.turns == 2 and result.cost_usd == 0.025, result
    assert result.session_id and result.session_id.startswith("demo-")
    log = git(repo, "log", "--format=%s|%(trailers:key=Specflow-Task,valueonly)", "-2").split()
    assert log == ["T003:", "Wire", "it", "up|T003", "T001:", "Create", "the", "model|T001"]
    assert (repo / "specflow-demo" / "T001.md").read_text() == "# T001\n\nCreate the model\n"


def test_demo_marks_each_task_with_its_commit(repo: Path, harness: Harness, recording_specflowd: Path) -> None:
    request = AgentRequest(kind="command", command=[sys.executable, "-m", "specflowd.agents.demo"], prompt=TASKS,
                           cwd=repo)
    assert harness.run(request, log_path(repo, "o1", 1, "implement")).ok
    shas = git(repo, "log", "--format=%H", "-2").split()[::-1]
    assert recording_specflowd.read_text().splitlines() == [
        f"mark T001 --done --evidence {shas[0]} --wait 30", f"mark T003 --done --evidence {shas[1]} --wait 30"]


def test_demo_reports_a_failed_step(repo: Path, harness: Harness) -> None:
    (repo / ".git" / "hooks" / "pre-commit").write_text("#!/bin/sh\necho refused >&2\nexit 1\n")
    (repo / ".git" / "hooks" / "pre-commit").chmod(0o755)
    request = AgentRequest(kind="command", command=[sys.executable, "-m", "specflowd.agents.demo", "--no-mark"],
                           prompt=TASKS, cwd=repo)
    result = harness.run(request, log_path(repo, "o1", 1, "implement"))
    assert result.error_type is ErrorType.PROCESS_FAILED and "refused" in result.text


def test_tasks_in_prompt_respect_specflow_tasks() -> None:
    assert tasks_in(TASKS, ["T003"]) == [("T003", "Wire it up")]
    assert tasks_in("- [ ] 2.1 Kiro style (mark: specflowd mark 2.1 --done)\n", []) == [("2.1", "Kiro style")]
    # A task list without ids: the id is the one the mark command names, quoted for the shell.
    assert tasks_in("- [ ] Write the docs (mark: specflowd mark '#4' --done)\n", []) == [("#4", "Write the docs")]


def waiter(repo: Path, gate: Path) -> AgentRequest:
    return AgentRequest(kind="command", command=["sh", "-c", f'while [ ! -e "{gate}" ]; do sleep 0.01; done'],
                        prompt="wait", cwd=repo)


def test_pool_runs_at_most_max_agents_first_come_first_served(repo: Path, tmp_path: Path) -> None:
    pool = Pool(2)
    harness = Harness(pool=pool)
    gates = {n: tmp_path / f"gate{n}" for n in range(4)}
    for n in range(4):
        harness.supervisor.start(f"r{n}", waiter(repo, gates[n]), log_path(repo, f"o{n}", 1, "implement"),
                                 orchestration=f"o{n}")
    wait_for(lambda: len(pool.state().waiting) == 2 and len(pool.state().running) == 2, message="two waiting")
    state = pool.state()
    assert [s.orchestration for s in state.waiting] == ["o2", "o3"]
    assert {s.run_id for s in state.running} == {"r0", "r1"}
    assert harness.supervisor.cancel("r3")  # a waiting run can be cancelled before it starts
    assert harness.result("r3").error_type is ErrorType.CANCELLED
    gates[1].touch()
    assert harness.result("r1").ok
    assert harness.next(RunStarted, "r2").run_id == "r2"
    for n in (0, 2):
        gates[n].touch()
        assert harness.result(f"r{n}").ok
    assert not [e for e in harness.seen if isinstance(e, RunStarted) and e.run_id == "r3"]
    assert pool.state().running == [] and pool.state().waiting == []
    assert sum(isinstance(e, RunFinished) for e in harness.seen) == 4
    harness.supervisor.close()
