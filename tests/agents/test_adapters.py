"""The pure core: command lines built from requests, and lines + exit codes turned into results."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from specflowd.agents.registry import adapter_for
from specflowd.agents.result import AgentRequest
from specflowd.agents.stream import Exit, Final, Observation, Transcript, conclude, fold
from specflowd.core.prices import TokenUsage
from specflowd.core.vocab import ErrorType

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
PROMPT = "implement T001 with a secret prompt"


def request(kind: str = "claude", **kw: object) -> AgentRequest:
    return AgentRequest(kind=kind, prompt=PROMPT, cwd=Path("/tmp/wt"), **kw)  # type: ignore[arg-type]


def run(kind: str, lines: list[object], code: int | None = 0, stderr: str = "", stopped: str | None = None):
    adapter = adapter_for(kind)
    texts = [line if isinstance(line, str) else json.dumps(line) for line in lines]
    # What the supervisor's follower hands over: only lines holding one of the adapter's keys.
    texts = [line for line in texts if not adapter.keys or any(key in line for key in adapter.keys)]
    t = fold(Transcript(), filter(None, map(adapter.parse_line, texts)))
    return conclude(adapter, t, Exit(code=code, stderr_tail=stderr, stopped=stopped, duration_s=1.5), NOW)


def claude_result(subtype: str = "success", is_error: bool = False, text: str = "Done", **kw: object) -> dict:
    return {"type": "result", "subtype": subtype, "is_error": is_error, "num_turns": 3, "result": text,
            "session_id": "s-1", "total_cost_usd": 0.0123, **kw}


INIT = {"type": "system", "subtype": "init", "session_id": "s-1", "model": "claude-sonnet-4-5"}


def test_claude_argv_has_every_flag_and_never_the_prompt() -> None:
    argv = adapter_for("claude").argv(request(
        model="sonnet", fallback_model="haiku", allowed_tools=["Read", "Edit"], disallowed_tools=["AskUserQuestion"],
        max_turns=7, max_budget_usd=2.5, resume_session_id="abc", fork_session=True,
        append_system_prompt="be brief", permission_mode="acceptEdits", command="/opt/claude --debug"), Path("p"))
    assert argv[:2] == ["/opt/claude", "--debug"]
    pairs = dict(zip(argv, argv[1:], strict=False))
    assert pairs["--output-format"] == "stream-json" and "--verbose" in argv and "-p" in argv
    assert pairs["--model"] == "sonnet" and pairs["--fallback-model"] == "haiku"
    assert pairs["--disallowedTools"] == "AskUserQuestion"
    assert pairs["--max-turns"] == "7" and pairs["--max-budget-usd"] == "2.5"
    assert pairs["--resume"] == "abc" and "--fork-session" in argv
    assert pairs["--append-system-prompt"] == "be brief" and pairs["--permission-mode"] == "acceptEdits"
    assert not any(PROMPT in a for a in argv)


def test_claude_is_allowed_what_the_prompts_need_and_what_the_project_adds() -> None:
    """Print mode asks nobody: with nothing allowed, every Write and `git commit` is refused."""
    argv = adapter_for("claude").argv(request(allowed_tools=["Bash(npm test:*)"], verify_command="pytest -q",
                                              read_dirs=[Path("/p/.specflow/design-docs")]), Path("p"))
    pairs = dict(zip(argv, argv[1:], strict=False))
    allowed = pairs["--allowedTools"].split(",")
    assert {"Edit", "Write", "Bash(git add:*)", "Bash(git commit:*)", "Bash(specflowd mark:*)"} <= set(allowed)
    assert allowed[-2:] == ["Bash(pytest -q:*)", "Bash(npm test:*)"]
    assert pairs["--permission-mode"] == "acceptEdits"  # specflowd's setting when none is given
    assert pairs["--add-dir"] == "/p/.specflow/design-docs"  # the spec's documents, readable


def test_codex_argv_commits_inside_its_sandbox() -> None:
    """Codex's workspace-write sandbox keeps `.git` read-only: specflowd's profile opens the git
    directories and the inbox, and nothing else besides the worktree and temp folders."""
    git_dir, inbox = Path("/p/.git"), Path("/p/.specflow/requests")
    argv = adapter_for("codex").argv(request("codex", model="gpt-5", write_dirs=[git_dir, inbox]), Path("p"))
    assert argv[:3] == ["codex", "exec", "--json"] and argv[-1] == "-"
    assert "--full-auto" not in argv and "-s" not in argv  # 0.171 rejects --full-auto; -s would win over the profile
    configs = [argv[i + 1] for i, a in enumerate(argv) if a == "-c"]
    assert "allow_login_shell=false" in configs  # a login shell resets PATH, losing specflowd
    assert 'approval_policy="never"' in configs and 'default_permissions="specflowd"' in configs
    profile = next(c for c in configs if c.startswith("permissions.specflowd="))
    assert '"/p/.git"="write"' in profile and '"/p/.specflow/requests"="write"' in profile
    assert '":root"="read"' in profile and '":project_roots"={"."="write"}' in profile
    own = adapter_for("codex").argv(request("codex", permission_mode="danger-full-access"), Path("p"))
    assert own[own.index("-s") + 1] == "danger-full-access" and not any("permissions." in a for a in own)


def test_codex_heals_by_forking_and_follows_up_by_resuming() -> None:
    codex = adapter_for("codex")
    assert codex.argv(request("codex", resume_session_id="t1", fork_session=True), Path("p"))[-3:] == ["fork", "t1", "-"]
    assert codex.argv(request("codex", resume_session_id="t1"), Path("p"))[-3:] == ["resume", "t1", "-"]


def test_gemini_argv_trusts_the_worktree_and_approves_in_headless_mode() -> None:
    argv = adapter_for("gemini").argv(request("gemini", read_dirs=[Path("/p/docs")], allowed_tools=["Bash(x)"]),
                                      Path("p"))
    pairs = dict(zip(argv, argv[1:], strict=False))
    assert pairs["--approval-mode"] == "yolo" and "--skip-trust" in argv
    assert pairs["--include-directories"] == "/p/docs"
    assert "--allowed-tools" not in argv  # Claude Code's tool names mean nothing to Gemini


def test_claude_result_names_refused_calls_and_tokens_per_model() -> None:
    denials = [{"tool_name": "Bash", "tool_use_id": "t1", "tool_input": {"command": "npm   test", "description": "x"}},
               {"tool_name": "Write", "tool_use_id": "t2", "tool_input": {"file_path": "/w/a.py", "content": "x"}},
               {"tool_name": "WebFetch", "tool_use_id": "t3", "tool_input": {}}]
    usage = {"claude-sonnet-4-5": {"inputTokens": 100, "outputTokens": 20, "cacheReadInputTokens": 5,
                                   "cacheCreationInputTokens": 7, "costUSD": 0.01}}
    r = run("claude", [INIT, claude_result(permission_denials=denials, modelUsage=usage)])
    assert r.ok  # the CLI's verdict; the machine judges it with the tasks left
    assert r.refused == ["Bash(npm test)", "Write(/w/a.py)", "WebFetch"]
    assert r.tokens["claude-sonnet-4-5"] == TokenUsage(input=100, output=20, cache_read=5, cache_write=7)
    assert not r.cost_estimated  # Claude Code says its cost


def test_codex_and_gemini_report_tokens_not_money() -> None:
    codex = run("codex", [{"type": "thread.started", "thread_id": "th"},
                          {"type": "turn.completed", "usage": {"input_tokens": 1000, "cached_input_tokens": 400,
                                                               "output_tokens": 50}},
                          {"type": "turn.completed", "usage": {"input_tokens": 10, "output_tokens": 5}}])
    assert codex.cost_estimated and codex.cost_usd == 0.0
    assert codex.tokens[""] == TokenUsage(input=610, output=55, cache_read=400, cache_write=0)
    gemini = run("gemini", [{"type": "init", "session_id": "g"}, {"type": "result", "status": "success", "stats": {
        "models": {"gemini-2.5-pro": {"input_tokens": 900, "output_tokens": 30, "cached": 100, "thoughts": 12}}}}])
    assert gemini.cost_estimated
    assert gemini.tokens["gemini-2.5-pro"] == TokenUsage(input=800, output=42, cache_read=100, cache_write=0)


def test_gemini_success_with_a_failing_exit_code_is_a_failure() -> None:
    """Gemini CLI says `success` whatever happens next: the exit code is judged too."""
    r = run("gemini", [{"type": "init", "session_id": "g"}, {"type": "result", "status": "success", "stats": {}}], 1)
    assert not r.ok and r.error_type is ErrorType.PROCESS_FAILED


def test_a_cli_that_cannot_reach_its_api_is_seen_and_stopped_as_failed() -> None:
    codex = adapter_for("codex")
    waiting = {"type": "error", "message": "Reconnecting... waiting for network (Connection failed: error sending request)"}
    t = fold(Transcript(), filter(None, map(codex.parse_line, [json.dumps(waiting)])))
    assert t.unreachable
    assert not fold(t, [Observation(turn=True)]).unreachable  # it got through again
    r = run("codex", [{"type": "thread.started", "thread_id": "th"}, waiting], None, stopped="unreachable")
    assert r.error_type is ErrorType.PROCESS_FAILED and "could not reach its model API" in (r.error or "")


@pytest.mark.parametrize(("command", "task"), [("specflowd mark '#20' --done", "#20"),
                                                ('specflowd mark "#3" --done', "#3"),
                                                ("specflowd mark T012 --done", "T012")])
def test_quoted_task_ids_are_seen_in_progress(command: str, task: str) -> None:
    obs = adapter_for("claude").parse_line(json.dumps({"type": "assistant", "message": {"content": [
        {"type": "tool_use", "name": "Bash", "input": {"command": command}}]}}))
    assert obs is not None and obs.task_id == task


def test_claude_fresh_session_has_no_resume_or_fork() -> None:
    argv = adapter_for("claude").argv(request(fork_session=True), Path("p"))
    assert argv[0] == "claude" and "--resume" not in argv and "--fork-session" not in argv and "--model" not in argv


@pytest.mark.parametrize("kind", ["codex", "gemini", "aider", "command"])
def test_other_argvs_keep_the_prompt_off_the_command_line(kind: str) -> None:
    req = request(kind, command=["agent"] if kind == "command" else [], model="m1", resume_session_id="sid")
    argv = adapter_for(kind).argv(req, Path("/tmp/prompt.md"))
    assert not any(PROMPT in a for a in argv)
    if kind == "codex":
        assert argv[:3] == ["codex", "exec", "--json"] and argv[-3:] == ["resume", "sid", "-"]
    if kind == "gemini":
        assert "stream-json" in argv and argv[argv.index("--resume") + 1] == "sid"
    if kind == "aider":
        assert argv[argv.index("--message-file") + 1] == "/tmp/prompt.md"
        assert {"--yes-always", "--no-auto-commits"} <= set(argv)
        assert not adapter_for(kind).prompt_on_stdin


def test_claude_success_reads_session_cost_turns_and_text() -> None:
    tool = {"type": "assistant", "session_id": "s-1", "message": {"content": [
        {"type": "tool_use", "name": "Bash", "input": {"command": "specflowd mark T004 --done"}}]}}
    r = run("claude", [INIT, tool, {"type": "user", "message": {"content": []}}, {"type": "weird"}, claude_result()])
    assert r.ok and r.error_type is None
    assert (r.session_id, r.cost_usd, r.turns, r.text, r.duration_s) == ("s-1", 0.0123, 3, "Done", 1.5)


def test_claude_progress_sees_tool_and_task() -> None:
    adapter = adapter_for("claude")
    obs = adapter.parse_line(json.dumps({"type": "assistant", "message": {"content": [
        {"type": "tool_use", "name": "Bash", "input": {"command": "git commit -m x -m 'Specflow-Task: T012'"}}]}}))
    assert obs is not None and (obs.tool, obs.task_id) == ("Bash", "T012")


@pytest.mark.parametrize(("lines", "code", "stderr", "expected"), [
    ([INIT, claude_result("error_max_turns", True, "")], 1, "", ErrorType.MAX_TURNS),
    ([INIT, claude_result("error_max_budget_usd", True, "")], 1, "", ErrorType.BUDGET_EXCEEDED),
    ([INIT, claude_result("success", True, "Claude AI usage limit reached|1767225600")], 1, "", ErrorType.RATE_LIMITED),
    ([INIT, claude_result("error_during_execution", True, "boom")], 1, "", ErrorType.PROCESS_FAILED),
    ([], 1, "No conversation found with session ID: abc", ErrorType.INVALID_SESSION),
    ([], 42, "Error resuming session: No previous sessions found for this project.", ErrorType.INVALID_SESSION),
    ([INIT, "not json at all"], 0, "", ErrorType.BAD_OUTPUT),
    ([INIT, '{"type":"assis'], -9, "", ErrorType.PROCESS_FAILED),
    ([INIT], None, "", ErrorType.TIMEOUT),
])
def test_claude_error_types(lines: list[object], code: int | None, stderr: str, expected: ErrorType) -> None:
    stopped = "timeout" if expected is ErrorType.TIMEOUT else None
    r = run("claude", lines, code, stderr, stopped)
    assert not r.ok and r.error_type is expected


def test_success_subtype_with_is_error_is_not_success() -> None:
    assert not run("claude", [claude_result("success", True, "API Error")], 0).ok


def test_rate_limit_carries_reset_time() -> None:
    r = run("claude", [claude_result("success", True, "Claude AI usage limit reached|1767225600")], 1)
    assert r.resets_at == datetime.fromtimestamp(1767225600, UTC)


def test_cancel_wins_over_a_successful_stream() -> None:
    r = run("claude", [claude_result()], -15, stopped="cancelled")
    assert r.error_type is ErrorType.CANCELLED


def test_codex_stream() -> None:
    ok = run("codex", [{"type": "thread.started", "thread_id": "th-1"}, {"type": "turn.started"},
                       {"type": "item.completed", "item": {"id": "i0", "type": "command_execution",
                                                           "command": "specflowd mark T002 --done"}},
                       {"type": "item.completed", "item": {"id": "i1", "type": "agent_message", "text": "All done"}},
                       {"type": "turn.completed", "usage": {"input_tokens": 10, "output_tokens": 5}}])
    assert ok.ok and (ok.session_id, ok.text, ok.turns) == ("th-1", "All done", 1)
    failed = run("codex", [{"type": "thread.started", "thread_id": "th-1"},
                           {"type": "turn.failed", "error": {"message": "stream disconnected"}}], 1)
    assert failed.error_type is ErrorType.PROCESS_FAILED and failed.text == "stream disconnected"
    limited = run("codex", [{"type": "error", "message": "You've hit your usage limit. Try again in 2 hours 5 minutes."},
                            {"type": "turn.failed", "error": {"message": "usage limit"}}], 1)
    assert limited.error_type is ErrorType.RATE_LIMITED
    assert limited.resets_at == datetime(2026, 1, 1, 14, 5, tzinfo=UTC)
    assert run("codex", [{"type": "thread.started", "thread_id": "x"}], 0).error_type is ErrorType.BAD_OUTPUT


def test_gemini_stream() -> None:
    ok = run("gemini", [{"type": "init", "session_id": "g-1", "model": "gemini-2.5-pro"},
                        {"type": "message", "role": "assistant", "content": "Working", "delta": True},
                        {"type": "tool_use", "tool_name": "write_file", "tool_id": "t1", "parameters": {}},
                        {"type": "tool_result", "tool_id": "t1", "status": "success"},
                        {"type": "result", "status": "success", "stats": {"total_tokens": 10}}])
    assert ok.ok and ok.session_id == "g-1" and ok.text == "Working"
    assert run("gemini", [{"type": "init", "session_id": "g-1"}], 53).error_type is ErrorType.MAX_TURNS
    err = run("gemini", [{"type": "error", "severity": "error", "message": "Quota exceeded for quota metric"},
                         {"type": "result", "status": "error", "error": {"message": "Quota exceeded"}}], 1)
    assert err.error_type is ErrorType.RATE_LIMITED


def test_aider_success_is_the_exit_code() -> None:
    assert run("aider", ["Applied edit to app.py", ""], 0).ok
    assert run("aider", ["oops"], 2).error_type is ErrorType.PROCESS_FAILED


def test_command_json_result_line() -> None:
    r = run("command", ["working", json.dumps({"ok": True, "cost_usd": 0.01, "session_id": "c1", "turns": 2,
                                               "result": "done"})], 0)
    assert r.ok and (r.cost_usd, r.session_id, r.turns, r.text) == (0.01, "c1", 2, "done")
    assert run("command", ["plain output"], 0).ok
    assert run("command", ["plain output"], 3).error_type is ErrorType.PROCESS_FAILED
    declared = run("command", [json.dumps({"ok": False, "error_type": "budget_exceeded"})], 1)
    assert declared.error_type is ErrorType.BUDGET_EXCEEDED


def test_command_kind_requires_a_command() -> None:
    with pytest.raises(ValueError, match="needs a command"):
        request("command")


@pytest.mark.parametrize("bad", [{"timeout_s": 0}, {"max_turns": 0}, {"max_budget_usd": -1}])
def test_requests_refuse_limits_that_cannot_be_met(bad: dict) -> None:
    with pytest.raises(ValueError):
        request(**bad)


observations = st.builds(
    Observation, session_id=st.none() | st.sampled_from(["a", "b"]), tool=st.none() | st.sampled_from(["Read", "Bash"]),
    task_id=st.none() | st.sampled_from(["T001", "T002"]), cost_usd=st.none() | st.floats(0, 5), turn=st.booleans(),
    text=st.none() | st.text(max_size=5), error=st.none() | st.text(min_size=1, max_size=5),
    final=st.none() | st.builds(Final, ok=st.booleans()))


@settings(deadline=None)  # timing is not what is tested
@given(st.lists(observations, max_size=30), st.integers(0, 30))
def test_folding_in_chunks_is_folding_at_once(obs: list[Observation], cut: int) -> None:
    # The supervisor folds one read at a time; where reads happen to split the stream must not matter.
    assert fold(fold(Transcript(), obs[:cut]), obs[cut:]) == fold(Transcript(), obs)
