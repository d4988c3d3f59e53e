"""What a new user meets first (issue 16): a repository on `master`, `-C`, one check of ids, the
status a person reads and what to run next, waiting for an orchestration, the inbox, budgets set at
start and raised to go on, the first failures, the hooks, systemd's bare start, the user config."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import git, run_cli, wait_for
from tests.daemon.conftest import make_project
from tests.e2e.orchestration.conftest import (
    DEMO_AGENT,
    FAKES,
    TASKS,
    configure,
    feed,
    start,
    state,
    wait_status,
)


def demo_project(repo: Path, tasks: str = TASKS, **orchestration: object) -> Path:
    project = make_project(repo, tasks=tasks)
    configure(project, agent={"kind": "command", "command": DEMO_AGENT},
              orchestration={"skip_analyze": True, "auto_merge": True, **orchestration})
    return project


# -- the first project -------------------------------------------------------------------------

def test_a_master_repository_merges_into_master(tmp_path: Path, start_daemon) -> None:
    repo = tmp_path / "legacy"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "master")
    git(repo, "commit", "-q", "--allow-empty", "-m", "initial")
    project = demo_project(repo)
    assert tomllib.loads((project / ".specflow/config.toml").read_text())["orchestration"]["base_branch"] == "master"
    doctor = json.loads(run_cli("doctor", "--json", cwd=project).stdout)
    assert next(c for c in doctor if c["name"] == "base")["level"] == "ok"
    start_daemon(project)
    wait_status(project, start(project), {"completed"})
    assert "specflow-demo/T004.md" in git(project, "ls-tree", "-r", "--name-only", "master")


def test_doctor_names_a_base_branch_that_is_not_there(repo: Path) -> None:
    project = make_project(repo)
    configure(project, orchestration={"base_branch": "trunk"})
    doctor = json.loads(run_cli("doctor", "--json", cwd=project).stdout)
    base = next(c for c in doctor if c["name"] == "base")
    assert base["level"] == "fail" and "'trunk' does not exist" in base["detail"] and "main" in base["detail"]


def test_every_command_takes_dash_c(repo: Path, tmp_path: Path) -> None:
    project = make_project(repo)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for args in (("-C", str(project), "plan", "demo"), ("plan", "demo", "-C", str(project)),
                 ("log", "-C", str(project)), ("status", "-C", str(project)), ("list", "-C", str(project)),
                 ("mark", "T001", "--done", "--now", "-C", str(project)), ("hooks", "install", "-C", str(project)),
                 ("doctor", "-C", str(project))):
        r = run_cli(*args, cwd=elsewhere)
        assert r.returncode in (0, 1) and "not inside a git repository" not in r.stderr + r.stdout, (args, r)
    assert "T001 done" in git(project, "log", "-1", "--format=%s", "helix-design-docs")
    bad = run_cli("-C", str(tmp_path / "nowhere"), "status", cwd=elsewhere)
    assert bad.returncode == 2 and "nowhere" in bad.stderr


def test_one_check_of_ids_one_wording_exit_1(repo: Path) -> None:
    project = make_project(repo)
    log = run_cli("log", "nosuchspec", cwd=project)
    assert log.returncode == 1 and "no spec 'nosuchspec'" in log.stderr and "demo" in log.stderr
    plan = run_cli("plan", "nosuchspec", cwd=project)
    assert plan.returncode == 1 and "no spec 'nosuchspec'" in plan.stderr
    status, cancel = (run_cli(cmd, "nothere1", cwd=project) for cmd in ("status", "cancel"))
    assert status.returncode == cancel.returncode == 1
    assert status.stderr == cancel.stderr and "invalid orchestration id 'nothere1'" in status.stderr


# -- reading progress ----------------------------------------------------------------------------

LONG = "A section whose name is far too long for any column of the list, which must not break"
SLOW_TASKS = f"# Tasks\n\n## {LONG}\n- [ ] T001 Create the greeting\n- [ ] T002 Add the farewell\n" \
             "- [ ] T003 Wire them together\n- [ ] T004 Document it\n- [ ] T005 Ship it\n"


def test_status_fleet_and_list_as_a_person_reads_them(repo: Path, start_daemon) -> None:
    project = demo_project(repo, tasks=SLOW_TASKS)
    start_daemon(project, env={"SPECFLOWD_DEMO_TASK_S": "1.0"})
    oid = start(project)
    wait_for(lambda: state(project, oid)["task_status"].get("T002") == "done", 60, message="T002 done")
    fleet = run_cli("fleet", cwd=project).stdout.splitlines()
    assert fleet[0].split()[:3] == ["project", "spec", "orchestr."]  # a header row
    assert any("T003 Wire them together" in line for line in fleet[1:]), fleet
    status = run_cli("status", oid, cwd=project).stdout
    assert "now on T003 Wire them together" in status
    for around in ("T001", "T002", "> T003", "T004", "T005"):
        assert around in status
    doc = json.loads(run_cli("status", oid, "--json", cwd=project).stdout)
    assert [t["task"] for t in doc["around"]] == ["T001", "T002", "T003", "T004", "T005"]
    assert doc["current_title"] == "Wire them together"
    assert run_cli("pause", oid, "--wait", "10", cwd=project).returncode == 0
    wait_status(project, oid, {"paused"})
    paused = run_cli("status", oid, cwd=project).stdout
    assert "now on" not in paused and f"next: specflowd resume {oid}" in paused
    line = run_cli("list", cwd=project).stdout.splitlines()[0]
    assert line.index(" tasks ") < 130 and "…" in line  # the long batch name is cut, the columns hold
    assert run_cli("resume", oid, "--wait", "10", cwd=project).returncode == 0
    wait_status(project, oid, {"completed"}, timeout=120)


def test_status_watch_piped_prints_a_snapshot_per_change(project_with_daemon: tuple[Path, object]) -> None:
    project, _ = project_with_daemon
    watch = subprocess.Popen(["specflowd", "status", "--watch"], cwd=project, stdout=subprocess.PIPE, text=True)
    try:
        assert watch.stdout is not None
        first = watch.stdout.readline()
        assert "no orchestrations yet" in first or first.startswith("orchestration")
        oid = start(project)
        lines: list[str] = []
        wait_for(lambda: lines.append(watch.stdout.readline()) or f"orchestration {oid}" in "".join(lines), 30,
                 message="a snapshot after the start")
        assert "\x1b" not in "".join(lines)  # plain text, no screen control
    finally:
        watch.send_signal(signal.SIGINT)
        watch.wait(timeout=10)


@pytest.fixture
def project_with_daemon(repo: Path, start_daemon) -> tuple[Path, object]:
    project = demo_project(repo)
    return project, start_daemon(project)


def test_an_already_finished_list_shows_its_tasks(repo: Path, start_daemon) -> None:
    project = demo_project(repo, tasks=TASKS.replace("[ ]", "[x]"))
    start_daemon(project)
    oid = start(project)
    wait_status(project, oid, {"completed"})
    doc = json.loads(run_cli("status", oid, "--json", cwd=project).stdout)
    assert (doc["tasks_done"], doc["tasks_total"]) == (4, 4)


def test_a_rebuilt_state_has_its_batches_tasks_and_costs(repo: Path, start_daemon) -> None:
    project = demo_project(repo)
    d = start_daemon(project)
    oid = start(project)
    wait_status(project, oid, {"completed"})
    d.stop()
    (project / ".specflow" / "workflows" / f"orchestration-{oid}.json").unlink()
    doc = json.loads(run_cli("status", oid, "--json", cwd=project).stdout)["state"]
    assert [len(b["task_ids"]) for b in doc["batches"]] == [2, 2]
    assert all(b["cost_usd"] > 0 for b in doc["batches"])
    assert not (project / ".specflow" / "workflows" / f"orchestration-{oid}.json").exists()  # read-only


# -- the first orchestration --------------------------------------------------------------------

def test_start_follow_prints_the_feed_and_exits_as_it_ended(project_with_daemon: tuple[Path, object]) -> None:
    project, _ = project_with_daemon
    r = run_cli("start", "demo", "--follow", cwd=project, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "started" in lines[1] and lines[-1].endswith(": completed")
    oid = lines[0].strip()
    assert run_cli("wait", oid, cwd=project).returncode == 0  # already ended: says so at once


def test_wait_exits_4_when_a_person_is_needed(repo: Path, start_daemon, tmp_path: Path) -> None:
    project = demo_project(repo, verify_command=f"{sys.executable} -c \"print('3 tests failed'); raise SystemExit(3)\"",
                           max_heal_attempts=0)
    start_daemon(project)
    oid = start(project)
    r = run_cli("wait", oid, "--timeout", "120", cwd=project, timeout=150)
    assert r.returncode == 4, (r.stdout, r.stderr)
    assert "verify failed" in r.stdout
    status = run_cli("status", oid, cwd=project).stdout
    assert f"next: specflowd recover {oid} --retry" in status and "verify's last output" in status
    timeout = run_cli("wait", oid, "--timeout", "0", cwd=project)
    assert timeout.returncode == 4  # it waits for a person already: no need to wait


def test_mark_waits_for_the_answer_unless_told_not_to(project_with_daemon: tuple[Path, object]) -> None:
    project, _ = project_with_daemon
    r = run_cli("mark", "T999", "--done", cwd=project)
    assert r.returncode == 1 and "T999" in r.stderr  # refused, and the caller hears it
    queued = run_cli("mark", "T001", "--done", "--no-wait", cwd=project)
    assert queued.returncode == 0 and "queued" in queued.stdout


def test_the_inbox_lists_and_drops_waiting_requests(repo: Path) -> None:
    project = demo_project(repo)
    assert run_cli("start", "demo", cwd=project).returncode == 0  # no daemon: it waits
    listed = json.loads(run_cli("inbox", "--json", cwd=project).stdout)
    assert [(r["action"], r["fields"]) for r in listed] == [("start", {"spec": "demo"})]
    assert run_cli("inbox", "drop", listed[0]["id"], cwd=project).returncode == 0
    assert json.loads(run_cli("inbox", "--json", cwd=project).stdout) == []
    assert run_cli("inbox", "drop", "nope", cwd=project).returncode == 1


def test_a_budget_set_at_start_and_raised_to_go_on(repo: Path, start_daemon) -> None:
    project = demo_project(repo)
    start_daemon(project)
    r = run_cli("start", "demo", "--set", "budget.total=0.03", "--wait", "30", "--json", cwd=project)
    assert r.returncode == 0, r.stderr
    oid = json.loads(r.stdout)["result"]["orchestration"]
    s = wait_status(project, oid, {"needs_attention"})
    assert s["config"]["budget"]["total"] == 0.03 and "budget" in s["error"]
    r = run_cli("recover", oid, "--retry", "--budget-total", "80", "--wait", "10", cwd=project)
    assert r.returncode == 0, r.stderr
    s = wait_status(project, oid, {"completed"})
    assert s["config"]["budget"]["total"] == 80


def test_a_retried_batch_that_is_already_done_needs_no_agent(repo: Path, start_daemon, tmp_path: Path) -> None:
    failing = tmp_path / "fails.py"
    failing.write_text("import sys\nsys.stdin.read()\nprint('{\"ok\": false, \"result\": \"no\"}')\nsys.exit(1)\n")
    project = demo_project(repo, max_heal_attempts=0)
    configure(project, agent={"command": f"{sys.executable} {failing}"})
    start_daemon(project)
    oid = start(project)
    wait_status(project, oid, {"needs_attention"})
    runs = len(state(project, oid)["runs"])
    assert run_cli("mark", "T001", "T002", "--done", "--wait", "10", cwd=project).returncode == 0
    assert run_cli("recover", oid, "--retry", "--wait", "10", cwd=project).returncode == 0
    wait_for(lambda: state(project, oid)["batches"][0]["status"] == "completed", 30, message="batch 1 completed")
    s = state(project, oid)
    assert len(s["runs"]) <= runs + 1 and all(r["batch"] != 1 for r in s["runs"][runs:])


def test_marks_during_an_orchestration_name_it_and_their_batch(project_with_daemon: tuple[Path, object]) -> None:
    project, d = project_with_daemon
    oid = start(project)
    wait_status(project, oid, {"completed"})
    marks = [e for e in feed(project) if not e.get("event") and e.get("orchestration") == oid]
    assert marks and all(e["batch"] for e in marks)
    assert {e["batch"] for e in marks} == {"1/2 Setup", "2/2 Core"}
    log = d.log()  # type: ignore[attr-defined]
    for line in ("batch 1/2 completed", "batch 2/2 completed", "merged specflow/demo into main"):
        assert line in log


def test_the_healer_runs_with_its_own_model_and_turns(repo: Path, start_daemon, tmp_path: Path) -> None:
    project = make_project(repo)
    argv_log = tmp_path / "argv.jsonl"
    shim = tmp_path / "bin" / "claude"
    shim.parent.mkdir()
    shim.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$*\" >> {argv_log}\nexec {sys.executable} {FAKES / 'fake_claude.py'} \"$@\"\n")
    shim.chmod(0o755)
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps({"runs": [{"steps": [], "outcome": "error"},
                                             {"steps": [{"mark": "T001"}, {"mark": "T002"}, {"mark": "T003"}],
                                              "outcome": "success"}]}))
    configure(project, agent={"kind": "claude", "command": str(shim), "model": "worker-model",
                                    "env_pass": ["FAKE_AGENT_SCENARIO"]},
              heal={"model": "healer-model", "max_turns": 7}, orchestration={"skip_analyze": True})
    start_daemon(project, env={"FAKE_AGENT_SCENARIO": str(scenario)})
    oid = start(project)
    wait_for(lambda: len(argv_log.read_text().splitlines()) >= 2 if argv_log.exists() else False, 60,
             message="the healer started")
    work, heal = argv_log.read_text().splitlines()[:2]
    assert "--model worker-model" in work and "--max-turns 50" in work
    assert "--model healer-model" in heal and "--max-turns 7" in heal
    runs = wait_for(lambda: state(project, oid)["runs"][1:], 30, message="the healer's run in the state")
    assert runs[0]["purpose"] == "heal"


# -- hooks, systemd and the user config -------------------------------------------------------

def test_pre_commit_checks_what_commit_a_commits(repo: Path) -> None:
    project = make_project(repo)
    assert run_cli("hooks", "install", cwd=project).returncode == 0
    docs = project / ".specflow" / "design-docs"
    tasks = docs / "specs" / "demo" / "progress.md"
    tasks.write_text(tasks.read_text() + "- [ ] T001 The same id again\n")
    r = subprocess.run(["git", "commit", "-qam", "dup"], cwd=docs, capture_output=True, text=True)
    assert r.returncode != 0 and "T001" in r.stderr, r.stderr
    assert "T001 The same id again" not in git(project, "show", "helix-design-docs:specs/demo/progress.md")


def test_post_commit_outside_a_code_worktree_says_when_it_cannot_tell_the_spec(repo: Path) -> None:
    project = make_project(repo)
    assert run_cli("new", "other", cwd=project).returncode == 0
    assert run_cli("hooks", "install", cwd=project).returncode == 0
    (project / "x.txt").write_text("x\n")
    git(project, "add", "x.txt")
    r = subprocess.run(["git", "commit", "-qm", "work", "-m", "Specflow-Task: T001"], cwd=project,
                       capture_output=True, text=True)
    assert r.returncode == 0 and "Specflow-Spec" in r.stderr, r.stderr
    assert not list((project / ".specflow" / "requests").glob("*.json"))
    (project / "y.txt").write_text("y\n")
    git(project, "add", "y.txt")
    r = subprocess.run(["git", "commit", "-qm", "work", "-m", "Specflow-Task: T001\nSpecflow-Spec: demo"],
                       cwd=project, capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr == ""
    request = json.loads(next((project / ".specflow" / "requests").glob("commit-*.json")).read_text())
    assert (request["spec"], request["tasks"]) == ("demo", ["T001"])


def test_run_with_nothing_to_serve_names_the_file_and_exits_78(tmp_path: Path) -> None:
    r = subprocess.run(["specflowd", "run"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    config = Path(os.environ["XDG_CONFIG_HOME"]) / "specflowd" / "config.toml"
    assert r.returncode == 78 and str(config) in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_the_user_config_is_the_default_under_each_project(repo: Path, start_daemon) -> None:
    project = make_project(repo)
    user = Path(os.environ["XDG_CONFIG_HOME"]) / "specflowd" / "config.toml"
    user.parent.mkdir(parents=True, exist_ok=True)
    user.write_text("# mine\n[budget]\ntotal = 12.5\n\n[pool]\nmax_agents = 3\n")
    configure(project, budget={"per_batch": 2.0})
    r = subprocess.run([sys.executable, "-c", "from specflowd.repo.project import locate; "
                        "from specflowd.repo.settings import load_config; "
                        "c = load_config(locate()); print(c.budget.total, c.budget.per_batch, c.pool.max_agents)"],
                       cwd=project, capture_output=True, text=True)
    assert r.stdout.split() == ["12.5", "2.0", "3"], r.stderr
    assert run_cli("systemd", "install", "--dir", str(project / "units"), "--project", str(project),
                   cwd=project).returncode == 0
    text = user.read_text()
    assert text.startswith("projects = [") and "# mine" in text and "max_agents = 3" in text
