"""The supervisor with real processes, groups and signals, driven by the fake CLIs."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from specflowd.agents import registry, supervisor
from specflowd.agents.process import AGENT_NICE, autogroup_nice, lower_priority, specflow_env
from specflowd.agents.result import AgentRequest, RunFinished, RunProgress, RunStarted
from specflowd.agents.supervisor import THREAD_NAME
from specflowd.core.vocab import FORKS, ErrorType
from tests.agents.conftest import Harness, log_path
from tests.conftest import git, wait_for

PROMPT = "Implement T001.\nThis sentence is the prompt and must never be in argv."


def live_group_members(pgid: int) -> list[int]:
    """Processes of the group that still run (zombies of init do not count)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != b"Z":
                members.append(int(entry.name))
    return members


def assert_reaped(pid: int) -> None:
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def req(repo: Path, kind: str = "claude", **kw: object) -> AgentRequest:
    return AgentRequest(kind=kind, prompt=PROMPT, cwd=repo, **kw)  # type: ignore[arg-type]


def test_claude_run_edits_commits_and_reports(fake_bin: Path, repo: Path, scenario, harness: Harness,
                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record = tmp_path / "invocation.json"
    scenario(steps=[{"record": str(record)}, {"write": "src/t001.py", "content": "ok = True\n"},
                    {"commit": "Implement T001", "task": "T001"}], cost=0.042, text="Implemented T001")
    monkeypatch.setenv("NOTIFY_SOCKET", "/run/systemd/notify")
    monkeypatch.setenv("WATCHDOG_USEC", "1000")
    env = specflow_env(project=repo, spec="001-demo", orchestration="7f3c9a21", tasks=["T001", "T002"],
                       inbox=repo / ".specflow" / "requests")
    log = log_path(repo, "7f3c9a21", 1, "implement")
    harness.supervisor.start("r1", req(repo, model="sonnet", env=env), log, orchestration="7f3c9a21")
    started = harness.next(RunStarted, "r1")
    assert harness.supervisor.record("r1") is not None
    result = harness.result("r1")

    assert result.ok and result.error_type is None, result
    assert (result.cost_usd, result.text, result.exit_code) == (0.042, "Implemented T001", 0)
    assert "Specflow-Task: T001" in git(repo, "log", "-1", "--format=%B")
    seen = json.loads(record.read_text())
    assert seen["prompt"] == PROMPT and not any(PROMPT in a for a in seen["argv"])
    assert seen["cwd"] == str(repo) and seen["pid"] == started.pid
    assert seen["pgid"] == seen["sid"] == started.pid  # its own session and process group
    assert {k: seen["env"].get(k) for k in env} == env
    assert not {"NOTIFY_SOCKET", "WATCHDOG_USEC"} & set(seen["env"])
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines[0]["type"] == "system" and lines[-1]["type"] == "result"
    assert result.session_id == lines[0]["session_id"]
    progress = [e for e in harness.seen if isinstance(e, RunProgress)]
    assert any(p.task_id == "T001" and p.tool == "Bash" for p in progress)
    assert started.start_time > 0 and started.log_path == log
    assert harness.supervisor.record("r1") is None  # finished runs leave the table
    assert_reaped(started.pid)


@pytest.mark.parametrize(("play", "extra", "expected"), [
    ({"steps": [{"tool": "Read"}, {"tool": "Edit"}, {"tool": "Bash"}]}, {"max_turns": 2}, ErrorType.MAX_TURNS),
    ({"cost": 3.0}, {"max_budget_usd": 1.0}, ErrorType.BUDGET_EXCEEDED),
    ({"outcome": "error", "text": "tool crashed"}, {}, ErrorType.PROCESS_FAILED),
    ({"steps": [{"tool": "Read"}, {"crash": True}]}, {}, ErrorType.PROCESS_FAILED),
    ({"steps": [{"garbage": "<html>502 Bad Gateway</html>"}], "outcome": "none"}, {}, ErrorType.BAD_OUTPUT),
    ({}, {"resume_session_id": "5f0c0c57-0000-0000-0000-000000000000"}, ErrorType.INVALID_SESSION),
])
def test_claude_error_types(fake_bin: Path, repo: Path, scenario, harness: Harness, play: dict, extra: dict,
                            expected: ErrorType) -> None:
    scenario(**play)
    result = harness.run(req(repo, **extra), log_path(repo, "o1", 1, "implement"))
    assert not result.ok and result.error_type is expected, result


@pytest.mark.parametrize(("kind", "options"), [
    ("claude", {"model": "sonnet", "fallback_model": "haiku", "allowed_tools": ["Read", "Edit"],
                "disallowed_tools": ["AskUserQuestion"], "max_turns": 50, "max_budget_usd": 5.0,
                "append_system_prompt": "Mark tasks as you go.", "permission_mode": "acceptEdits"}),
    ("codex", {"model": "gpt-5-codex", "write_dirs": [Path("/tmp/x/.git")]}),
    ("codex", {"model": "gpt-5-codex", "permission_mode": "danger-full-access"}),
    ("gemini", {"model": "gemini-2.5-pro", "read_dirs": [Path("/tmp/docs")]}),
])
def test_every_flag_the_adapters_pass_is_one_the_cli_knows(fake_bin: Path, repo: Path, scenario, harness: Harness,
                                                            kind: str, options: dict) -> None:
    scenario()
    result = harness.run(req(repo, kind, **options), log_path(repo, "o1", 1, "implement"))
    assert result.ok, result.stderr_tail


def test_usage_limit_gives_reset_time(fake_bin: Path, repo: Path, scenario, harness: Harness) -> None:
    scenario(outcome="usage_limit", reset=1767225600)
    result = harness.run(req(repo), log_path(repo, "o1", 1, "implement"))
    assert result.error_type is ErrorType.RATE_LIMITED
    assert result.resets_at == datetime.fromtimestamp(1767225600, UTC)


def test_crash_mid_stream_keeps_every_whole_line(fake_bin: Path, repo: Path, scenario, harness: Harness) -> None:
    scenario(steps=[{"tool": "Read"}, {"crash": True}])
    log = log_path(repo, "o1", 1, "implement")
    result = harness.run(req(repo), log)
    *whole, partial = log.read_text().split("\n")
    assert [json.loads(line)["type"] for line in whole] == ["system", "assistant", "user"]
    assert partial.startswith('{"type":"assistant"') and result.exit_code == -9


@pytest.mark.parametrize("how", ["timeout", "cancel"])
def test_timeout_and_cancel_kill_the_whole_group(fake_bin: Path, repo: Path, scenario, harness: Harness,
                                                 how: str) -> None:
    # The agent ignores SIGTERM and has a helper in its group that does too.
    scenario(steps=[{"tool": "Bash"}, {"hang": True, "ignore_term": True, "grandchild": True}])
    run = harness.supervisor
    run.start("r1", req(repo, timeout_s=1.0 if how == "timeout" else 60), log_path(repo, "o1", 1, "implement"))
    started = harness.next(RunStarted, "r1")
    if how == "cancel":
        # Without a deadline to race, the helper surely exists before the cancel.
        wait_for(lambda: len(live_group_members(started.pid)) == 2, message="the helper process")
        assert run.cancel("r1")
    result = harness.result("r1")
    assert result.error_type is (ErrorType.TIMEOUT if how == "timeout" else ErrorType.CANCELLED)
    assert_reaped(started.pid)
    # SIGKILL is sent before the result; the helper (not our child) dies a moment later.
    wait_for(lambda: live_group_members(started.pid) == [], message="the whole group to be gone")
    assert not run.cancel("r1")


def test_a_run_that_cannot_be_set_up_still_ends_with_a_result(repo: Path, harness: Harness) -> None:
    result = harness.run(req(repo), repo / "README.md" / "1-implement.jsonl")
    assert result.error_type is ErrorType.PROCESS_FAILED and "could not supervise" in result.stderr_tail
    assert harness.supervisor.record("r1") is None


def test_a_run_that_fails_after_its_spawn_leaves_nothing_running(repo: Path, harness: Harness,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    spawned: list[int] = []

    def broken(pid: int) -> int:
        spawned.append(pid)
        raise RuntimeError("no start time")

    monkeypatch.setattr(supervisor, "process_start_time", broken)
    result = harness.run(req(repo, "command", command=["sh", "-c", "exec sleep 60"]), log_path(repo, "o1", 1, "x"))
    assert result.error_type is ErrorType.PROCESS_FAILED and "no start time" in result.stderr_tail
    [pid] = spawned
    assert_reaped(pid)
    assert live_group_members(pid) == []


def test_missing_program_is_a_failed_process(repo: Path, harness: Harness) -> None:
    result = harness.run(req(repo, command=["/nonexistent/claude"]), log_path(repo, "o1", 1, "implement"))
    assert result.error_type is ErrorType.PROCESS_FAILED and "nonexistent" in result.stderr_tail


@pytest.mark.parametrize(("kind", "play", "expected"), [
    ("codex", {"steps": [{"write": "a.txt", "content": "a"}], "text": "done"}, None),
    ("codex", {"outcome": "usage_limit"}, ErrorType.RATE_LIMITED),
    ("codex", {"outcome": "error"}, ErrorType.PROCESS_FAILED),
    ("gemini", {"steps": [{"write": "a.txt", "content": "a"}]}, None),
    ("gemini", {"outcome": "max_turns"}, ErrorType.MAX_TURNS),
    ("gemini", {"outcome": "usage_limit"}, ErrorType.RATE_LIMITED),
])
def test_codex_and_gemini_runs(fake_bin: Path, repo: Path, scenario, harness: Harness, kind: str, play: dict,
                               expected: ErrorType | None) -> None:
    scenario(**play)
    result = harness.run(req(repo, kind), log_path(repo, "o1", 1, "implement"))
    assert result.error_type is expected, result
    assert result.session_id


def test_resume_of_a_session_from_the_same_worktree(fake_bin: Path, repo: Path, scenario, harness: Harness) -> None:
    scenario()
    first = harness.run(req(repo), log_path(repo, "o1", 1, "implement"), run_id="a")
    again = harness.run(req(repo, resume_session_id=first.session_id), log_path(repo, "o1", 2, "implement"),
                        run_id="b")
    forked = harness.run(req(repo, resume_session_id=first.session_id, fork_session=True),
                         log_path(repo, "o1", 3, "heal"), run_id="c")
    assert again.ok and again.session_id == first.session_id
    assert forked.ok and forked.session_id not in (None, first.session_id)


def test_command_kind_with_aider_style_exit_code(repo: Path, harness: Harness) -> None:
    ok = harness.run(req(repo, "command", command=["sh", "-c", "cat >prompt.txt; echo working"]),
                     log_path(repo, "o1", 1, "implement"), run_id="a")
    failed = harness.run(req(repo, "command", command=["sh", "-c", "echo nope >&2; exit 3"]),
                         log_path(repo, "o1", 2, "implement"), run_id="b")
    assert ok.ok and (repo / "prompt.txt").read_text() == PROMPT
    assert failed.error_type is ErrorType.PROCESS_FAILED and failed.stderr_tail == "nope\n"
    assert failed.exit_code == 3
    assert not any(isinstance(e, RunFinished) and e.run_id not in ("a", "b") for e in harness.seen)


def test_a_failing_run_does_not_disturb_the_others(repo: Path, harness: Harness,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    command = registry.ADAPTERS["command"]

    def parse_line(line: str):
        if "boom" in line:
            raise RuntimeError("adapter bug")
        return command.parse_line(line)

    monkeypatch.setitem(registry.ADAPTERS, "command", dataclasses.replace(command, parse_line=parse_line))
    slow = req(repo, "command", command=["sh", "-c", "sleep 0.3; echo fine"])
    bad = req(repo, "command", command=["sh", "-c", "echo boom; sleep 60"])
    harness.supervisor.start("slow", slow, log_path(repo, "o1", 1, "implement"))
    harness.supervisor.start("bad", bad, log_path(repo, "o2", 1, "implement"))
    bad_started = harness.next(RunStarted, "bad")
    failed = harness.result("bad")
    assert failed.error_type is ErrorType.PROCESS_FAILED and "adapter bug" in failed.stderr_tail
    assert_reaped(bad_started.pid)
    wait_for(lambda: live_group_members(bad_started.pid) == [], message="the failed run's group to be gone")
    assert harness.result("slow").ok


@pytest.mark.parametrize("kind", ["codex", "gemini"])
def test_codex_and_gemini_resume_their_sessions(fake_bin: Path, repo: Path, scenario, harness: Harness,
                                                kind: str) -> None:
    scenario()
    first = harness.run(req(repo, kind), log_path(repo, "o1", 1, "implement"), run_id="a")
    again = harness.run(req(repo, kind, resume_session_id=first.session_id), log_path(repo, "o1", 2, "implement"),
                        run_id="b")
    unknown = harness.run(req(repo, kind, resume_session_id="0000-gone"), log_path(repo, "o1", 3, "implement"),
                          run_id="c")
    assert again.ok and again.session_id == first.session_id
    assert unknown.error_type is ErrorType.INVALID_SESSION
    if kind in FORKS:  # Codex: `exec fork ID`, a new thread with the history
        forked = harness.run(req(repo, kind, resume_session_id=first.session_id, fork_session=True),
                             log_path(repo, "o1", 4, "implement"), run_id="d")
        assert forked.ok and forked.session_id not in (None, first.session_id)


def test_agents_run_below_the_daemon_and_so_does_their_session(repo: Path, harness: Harness) -> None:
    run = harness.supervisor
    run.start("r1", req(repo, "command", command=["sh", "-c", "cat >/dev/null; exec sleep 60"]),
              log_path(repo, "o1", 1, "implement"))
    pid = harness.next(RunStarted, "r1").pid
    assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + AGENT_NICE)
    # The kernel schedules sessions as groups: the agent's group is lowered too. A test process in
    # no autogroup (CI starts it from a session-less init) counts as nice 0.
    own = autogroup_nice(Path("/proc/self/autogroup").read_text())
    assert autogroup_nice(Path(f"/proc/{pid}/autogroup").read_text()) == min(19, (own or 0) + AGENT_NICE)
    # The thread that follows agents is named, for `top -H` and the benchmarks.
    names = {p.read_text().strip() for p in Path("/proc/self/task").glob("*/comm")}
    assert THREAD_NAME in names
    assert run.cancel("r1")
    assert harness.result("r1").error_type is ErrorType.CANCELLED


def no_autogroup_process() -> int:
    """A process in no autogroup, as a daemon started by a session-less init is: a kernel thread."""
    for entry in sorted(Path("/proc").iterdir(), key=lambda e: int(e.name) if e.name.isdigit() else 0):
        if entry.name.isdigit() and (entry / "autogroup").exists() and (entry / "autogroup").read_text() == "":
            return int(entry.name)
    raise AssertionError("no process in no autogroup: kernel threads should be")


def test_agents_go_below_a_daemon_that_is_in_no_autogroup() -> None:
    # CI failed here once: the daemon's own /proc/<pid>/autogroup was empty, and every run failed.
    daemon = no_autogroup_process()
    agent = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        lower_priority(agent.pid, below=daemon)
        assert autogroup_nice(Path(f"/proc/{agent.pid}/autogroup").read_text()) == AGENT_NICE
        assert os.getpriority(os.PRIO_PROCESS, agent.pid) == min(19, os.getpriority(os.PRIO_PROCESS, daemon)
                                                                  + AGENT_NICE)
    finally:
        agent.kill()
        agent.wait()


def test_autogroup_files_read_as_their_nice_value() -> None:
    assert autogroup_nice("/autogroup-12 nice -5\n") == -5
    assert autogroup_nice("/autogroup-7 nice 19\n") == 19
    assert autogroup_nice("") is None


def test_a_cli_waiting_forever_for_its_api_is_stopped_in_bounded_time(repo: Path, tmp_path: Path) -> None:
    """Codex 0.171 with its model server down prints "Reconnecting... waiting for network" with
    growing pauses and never gives up: the supervisor stops it and says why."""
    script = tmp_path / "codex"
    waiting = json.dumps({"type": "error", "message": "Reconnecting... waiting for network "
                                                      "(Connection failed: error sending request)"})
    script.write_text(f"#!/bin/sh\ncat >/dev/null\necho '{json.dumps({'type': 'thread.started', 'thread_id': 't'})}'\n"
                      f"echo '{waiting}'\nexec sleep 600\n")
    script.chmod(0o755)
    h = Harness()
    h.supervisor = supervisor.Supervisor(h.events.put, grace_s=0.3, unreachable_s=0.5)
    try:
        result = h.run(req(repo, "codex", command=[str(script)]), log_path(repo, "o1", 1, "implement"))
    finally:
        h.supervisor.close()
    assert result.error_type is ErrorType.PROCESS_FAILED and result.session_id == "t"
    assert "could not reach its model API" in (result.error or "")
