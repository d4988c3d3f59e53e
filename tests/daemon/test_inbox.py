"""The inbox end to end: a real `specflowd run`, requests as files, answers as files."""

from __future__ import annotations

import json
import os
import pwd
import signal
from pathlib import Path

from tests.conftest import configure, git, run_cli, wait_for


def branch_log(project: Path) -> str:
    return git(project, "log", "--format=%B%x00", "helix-design-docs")


def test_mark_through_the_daemon_commits_with_trailers(project: Path, start_daemon) -> None:
    start_daemon(project)
    r = run_cli("mark", "T001", "--done", "--wait", "10", cwd=project)
    assert r.returncode == 0, r.stderr
    assert "T001 pending -> done" in r.stdout
    message = branch_log(project).split("\0")[0]
    assert "Specflow-Task: T001" in message and "Specflow-Status: done" in message
    assert "- [x] T001" in (project / ".specflow/design-docs/specs/demo/progress.md").read_text()


def test_a_refused_mark_exits_1_with_the_reason(project: Path, start_daemon) -> None:
    d = start_daemon(project)
    r = run_cli("mark", "T999", "--done", "--wait", "10", "--json", cwd=project)
    assert r.returncode == 1
    answer = json.loads(r.stdout)
    assert answer["ok"] is False and answer["error"]["code"] == "unknown_task"
    assert d.filed(f"{answer['id']}.json").parent.name == "failed"
    r = run_cli("mark", "T999", "--done", "--wait", "10", cwd=project)
    assert r.returncode == 1 and "T999" in r.stderr


def test_mark_without_a_daemon_says_so_and_suggests_now(project: Path) -> None:
    r = run_cli("mark", "T001", "--done", cwd=project)
    assert r.returncode == 1 and "--now" in r.stderr
    assert not list((project / ".specflow/requests").glob("*.json"))


def test_requests_dropped_while_down_are_answered_on_start(project: Path, start_daemon) -> None:
    requests = project / ".specflow/requests"
    (requests / "early.json").write_text(json.dumps({"action": "mark", "task": "T002", "status": "done"}))
    d = start_daemon(project)
    assert d.answer("early")["ok"] is True
    assert (requests / "done/early.json").exists()


def test_a_second_daemon_refuses_naming_the_first(project: Path, start_daemon) -> None:
    d = start_daemon(project)
    r = run_cli("run", cwd=project, timeout=20)
    assert r.returncode == 1
    assert f"pid {d.proc.pid}" in r.stderr


def test_bad_requests_are_answered_and_filed_with_their_bytes(project: Path, start_daemon, tmp_path: Path) -> None:
    d = start_daemon(project)
    requests = project / ".specflow/requests"
    cases = {
        "garbage.json": (b"{oops", "invalid_json"),
        "latin1.json": (b'{"action": "mark", "reason": "caf\xe9"}', "invalid_json"),
        "bad.toml": (b"action = ", "invalid_toml"),
        "what.json": (b'{"action": "fly"}', "unknown_action"),
        "extra.json": (b'{"action": "mark", "task": "T001", "status": "done", "colour": 1}', "invalid_field"),
        "escape.json": (b'{"action": "start", "spec": "../../../etc"}', "invalid_field"),
        "nospec.json": (b'{"action": "start", "spec": "nope"}', "unknown_spec"),
        "noorch.json": (b'{"action": "cancel", "orchestration": "0badc0de"}', "unknown_orchestration"),
        "big.json": (b'{"action": "mark", "reason": "' + b"x" * 70_000 + b'"}', "too_large"),
    }
    for name, (data, _) in cases.items():
        d.drop(data, name)
    for name, (data, code) in cases.items():
        answer = d.answer(name.rsplit(".", 1)[0])
        assert answer["ok"] is False and answer["error"]["code"] == code, (name, answer)
        assert answer["error"]["message"]
        assert d.filed(name).read_bytes() == data
    # Not regular files, and a file owned by someone else.
    outside = tmp_path / "target.json"
    outside.write_text('{"action": "mark", "task": "T001", "status": "done"}')
    os.symlink(outside, requests / "link.json")
    (requests / "folder.json").mkdir()
    theirs = requests / "tmp" / "theirs.json"
    theirs.write_text('{"action": "mark", "task": "T001", "status": "done"}')
    nobody = pwd.getpwnam("nobody")
    os.chown(theirs, nobody.pw_uid, nobody.pw_gid)
    os.rename(theirs, requests / "theirs.json")
    assert d.answer("link")["error"]["code"] == "not_regular_file"
    assert d.answer("folder")["error"]["code"] == "not_regular_file"
    assert d.answer("theirs")["error"]["code"] == "wrong_owner"
    assert d.filed("link.json").is_symlink()
    assert "- [ ] T001" in (project / ".specflow/design-docs/specs/demo/progress.md").read_text()


def test_files_being_written_are_not_read(project: Path, start_daemon) -> None:
    d = start_daemon(project)
    requests = project / ".specflow/requests"
    (requests / "tmp/wip.json").write_text('{"action": "fly"}')
    (requests / ".hidden.json").write_text('{"action": "fly"}')
    (requests / "half.json.tmp").write_text('{"action": "fly"}')
    # Written in place by hand: read only once the writer closes it.
    with open(requests / "byhand.json", "w") as f:
        f.write('{"action": "mark", "task": "T003",')
        f.flush()
        d.drop({"action": "fly"}, "marker.json")
        d.answer("marker")
        assert not (project / ".specflow/responses/byhand.json").exists()
        f.write(' "status": "done"}')
    assert d.answer("byhand")["ok"] is True
    responses = {p.stem for p in (project / ".specflow/responses").glob("*.json")}
    assert responses == {"marker", "byhand"}


def test_a_repeated_id_gets_the_first_answer_and_no_second_effect(project: Path, start_daemon) -> None:
    d = start_daemon(project)
    d.drop({"id": "once", "action": "mark", "task": "T001", "status": "done"}, "a.json")
    first = d.answer("once")
    before = branch_log(project)
    run_cli("mark", "T001", "--todo", "--now", cwd=project)
    d.drop({"id": "once", "action": "mark", "task": "T001", "status": "done"}, "b.json")
    d.filed("b.json")
    assert d.answer("once") == first
    assert "- [ ] T001" in (project / ".specflow/design-docs/specs/demo/progress.md").read_text()
    assert branch_log(project).count("Specflow-Status: done") == before.count("Specflow-Status: done")


def test_orchestration_requests_through_the_client(project: Path, start_daemon) -> None:
    # An agent that works until it is stopped: the orchestration stays running meanwhile.
    configure(project, agent={"kind": "command", "command": "sleep 600"})
    start_daemon(project)
    r = run_cli("start", "demo", "--no-auto-merge", "--set", "max_heal_attempts=3", "--wait", "10", cwd=project)
    assert r.returncode == 0, r.stderr
    oid = r.stdout.strip()
    state = json.loads((project / f".specflow/workflows/orchestration-{oid}.json").read_text())
    assert state["status"] == "running" and state["schema_version"] == 1
    assert state["config"]["orchestration"]["max_heal_attempts"] == 3
    again = run_cli("start", "demo", "--wait", "10", cwd=project)
    assert again.returncode == 1 and oid in again.stderr
    for command, status in (("pause", "paused"), ("resume", "running"), ("cancel", "cancelled")):
        r = run_cli(command, oid, "--wait", "10", "--json", cwd=project)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["result"]["status"] == status
    r = run_cli("recover", oid, "--retry", "--wait", "10", cwd=project)
    assert r.returncode == 1 and "nothing to recover" in r.stderr


def test_without_wait_the_request_is_queued_and_exit_3_when_no_answer(project: Path) -> None:
    r = run_cli("pause", "0123abcd", cwd=project)
    assert r.returncode == 0 and "queued" in r.stdout and "no specflowd daemon" in r.stderr
    r = run_cli("pause", "0123abcd", "--wait", "0.5", cwd=project)
    assert r.returncode == 3 and "no answer to request" in r.stderr
    assert len(list((project / ".specflow/requests").glob("pause-*.json"))) == 2


def test_a_corrupt_state_file_is_moved_aside_and_the_daemon_carries_on(project: Path, start_daemon) -> None:
    workflows = project / ".specflow/workflows"
    (workflows / "orchestration-0badc0de.json").write_text('{"schema_version": 1, "id": "0ba')
    d = start_daemon(project)
    assert "orchestration-0badc0de.json" in d.log()
    assert (workflows / "orchestration-0badc0de.json.corrupt").exists()
    assert run_cli("mark", "T001", "--done", "--wait", "10", cwd=project).returncode == 0


def test_sigterm_stops_it_with_exit_0(project: Path, start_daemon) -> None:
    d = start_daemon(project)
    assert d.stop(signal.SIGTERM, timeout=30) == 0  # a deadline: a daemon that hangs fails here
    assert "stopping" in d.log()
    d2 = start_daemon(project)  # the lock was released
    assert d2.stop(signal.SIGINT) == 0


def test_sigkill_at_any_moment_loses_no_request_and_answers_none_twice(project: Path, start_daemon) -> None:
    d = start_daemon(project)
    names = [f"r{i:03d}" for i in range(120)]
    for i, name in enumerate(names):
        payload = {"action": "mark", "task": f"T00{1 + i % 3}", "status": "done" if i % 2 else "pending"}
        d.drop(payload if i % 5 else {"action": "fly"}, f"{name}.json")
    wait_for(lambda: len(list((project / ".specflow/responses").glob("r*.json"))) >= 20, 20, message="progress")
    d.stop(signal.SIGKILL)
    d2 = start_daemon(project)
    for name in names:
        d2.answer(name)
        d2.filed(f"{name}.json")
    log = d.log() + d2.log()
    for name in names:
        # Killed between writing an answer and logging it, a request shows no answer line at all (the
        # restarted daemon then logs "answered before"): at most one, never two.
        assert log.count(f"request {name}: ") + log.count(f"request {name} refused") <= 1, name
    assert "answered before" in d2.log() or all(f"request {n}" in log for n in names)
    assert not list((project / ".specflow/requests").glob("*.json"))


def test_an_answered_request_left_in_the_inbox_is_only_filed_away(project: Path, start_daemon) -> None:
    # As if the daemon died between writing the answer and moving the request.
    specflow = project / ".specflow"
    (specflow / "requests/crash.json").write_text('{"action": "mark", "task": "T001", "status": "done"}')
    answer = {"id": "crash", "ok": True, "action": "mark", "result": {}, "at": "2026-01-01T00:00:00Z"}
    (specflow / "responses/crash.json").write_text(json.dumps(answer))
    d = start_daemon(project)
    assert d.filed("crash.json").parent.name == "done"
    assert json.loads((specflow / "responses/crash.json").read_text()) == answer
    assert "- [ ] T001" in (specflow / "design-docs/specs/demo/progress.md").read_text()


def test_killed_between_linking_and_unlinking_a_request_it_is_filed_once(project: Path, start_daemon) -> None:
    specflow = project / ".specflow"
    request = specflow / "requests/half.json"
    request.write_text('{"action": "fly"}')
    os.link(request, specflow / "requests/failed/half.json")
    answer = {"id": "half", "ok": False, "error": {"code": "unknown_action", "message": "m", "field": "action"},
              "at": "2026-01-01T00:00:00Z"}
    (specflow / "responses/half.json").write_text(json.dumps(answer))
    d = start_daemon(project)
    wait_for(lambda: not request.exists(), 15, message="the request unlinked")
    assert [p.name for p in (specflow / "requests/failed").iterdir()] == ["half.json"]
    assert "answered before" in d.log()
