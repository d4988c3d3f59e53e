"""The fake CLIs behave like the real ones where the supervisor depends on it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import git


def cli(*argv: str, cwd: Path, prompt: str = "do it") -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), cwd=cwd, input=prompt, capture_output=True, text=True, timeout=30)


def events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


@pytest.mark.parametrize(("argv", "message", "code"), [
    (["claude", "-p", "--bogus"], "unknown option '--bogus'", 1),
    (["codex", "exec", "--json", "--bogus", "-"], "unexpected argument '--bogus'", 2),
    (["gemini", "-p", "x", "--bogus"], "Unknown argument: bogus", 1),
])
def test_unknown_flags_are_refused(fake_bin: Path, repo: Path, argv: list[str], message: str, code: int) -> None:
    r = cli(*argv, cwd=repo)
    assert r.returncode == code and message in r.stderr and r.stdout == ""


def test_claude_stream_json_needs_verbose(fake_bin: Path, repo: Path) -> None:
    r = cli("claude", "-p", "--output-format", "stream-json", cwd=repo)
    assert r.returncode == 1 and "requires --verbose" in r.stderr


def test_claude_sessions_are_per_directory(fake_bin: Path, repo: Path, tmp_path: Path, scenario) -> None:
    scenario(outcome="success")
    base = ["claude", "-p", "--output-format", "stream-json", "--verbose"]
    first = events(cli(*base, cwd=repo).stdout)
    session = first[0]["session_id"]
    assert first[0]["subtype"] == "init" and first[-1]["session_id"] == session
    resumed = events(cli(*base, "--resume", session, cwd=repo).stdout)
    assert resumed[-1]["session_id"] == session
    forked = events(cli(*base, "--resume", session, "--fork-session", cwd=repo).stdout)
    assert forked[-1]["session_id"] != session
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = cli(*base, "--resume", session, cwd=elsewhere)
    assert r.returncode == 1 and f"No conversation found with session ID: {session}" in r.stderr


def test_fakes_really_commit_with_the_trailer(fake_bin: Path, repo: Path, scenario) -> None:
    for task, argv in (("T001", ["codex", "exec", "--json", "-"]),
                       ("T002", ["gemini", "-p", "go", "--output-format", "stream-json"])):
        scenario(steps=[{"write": f"src/{task}.py", "content": "x = 1\n"}, {"commit": "Add", "task": task}])
        r = cli(*argv, cwd=repo)
        assert r.returncode == 0, r.stderr
        assert f"Specflow-Task: {task}" in git(repo, "log", "-1", "--format=%B")
        assert (repo / "src" / f"{task}.py").read_text() == "x = 1\n"


def test_codex_and_gemini_resume_unknown_sessions_fail(fake_bin: Path, repo: Path) -> None:
    codex = cli("codex", "exec", "--json", "resume", "nope", "-", cwd=repo)
    gemini = cli("gemini", "-p", "x", "--output-format", "stream-json", "--resume", "nope", cwd=repo)
    assert codex.returncode == 1 and "no rollout found" in codex.stderr
    assert gemini.returncode == 1 and "Invalid session identifier" in gemini.stderr


def test_fake_marks_a_task_with_specflowd(fake_bin: Path, repo: Path, scenario, recording_specflowd: Path) -> None:
    scenario(steps=[{"write": "a.py", "content": ""}, {"commit": "Add a", "task": "T001"}, {"mark": "T001"}])
    r = cli("claude", "-p", "--output-format", "stream-json", "--verbose", cwd=repo)
    assert r.returncode == 0, r.stderr
    sha = git(repo, "rev-parse", "HEAD").strip()
    # A request to the daemon, as the prompt says (SPEC section 9).
    assert recording_specflowd.read_text() == f"mark T001 --done --evidence {sha}\n"
    uses = [e["message"]["content"][0] for e in events(r.stdout) if e["type"] == "assistant"]
    assert uses[-1]["input"]["command"] == f"specflowd mark T001 --done --evidence {sha}"


def test_fake_marks_with_now_when_no_daemon_runs(fake_bin: Path, repo: Path, scenario, recording_specflowd: Path
                                                 ) -> None:
    # The shim refuses a mark without --now the way specflowd does when no daemon runs.
    calls = recording_specflowd.read_text() if recording_specflowd.exists() else ""
    shim = next(d / "specflowd" for d in map(Path, os.environ["PATH"].split(os.pathsep))
                if (d / "specflowd").exists())
    shim.write_text(f'#!/bin/sh\necho "$*" >> "{recording_specflowd}"\n'
                    'case "$*" in *--now*) exit 0;; esac\n'
                    'echo "error: no specflowd daemon is running for this project: pass --now" >&2; exit 1\n')
    scenario(steps=[{"mark": "T001"}])
    r = cli("claude", "-p", "--output-format", "stream-json", "--verbose", cwd=repo)
    assert r.returncode == 0, r.stderr
    sha = git(repo, "rev-parse", "HEAD").strip()
    assert recording_specflowd.read_text() == calls + (f"mark T001 --done --evidence {sha}\n"
                                                       f"mark T001 --done --evidence {sha} --now\n")
