"""The real Claude Code, Codex and Gemini CLIs, each through whole orchestrations run by a real daemon,
offline: the scripted model server plays the model, the CLIs do the rest for real (tool calls in
the worktree, `git commit` with trailers, `specflowd mark`, sessions resumed and forked).

Each test asserts the feed (each task done exactly once), the merge, the cost, and what the
adapter read from the real stream (sessions, results, error types); the server's log says what
the CLIs sent (the model, a resumed session's history) and that nothing went anywhere else.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from specflowd.agents.registry import adapter_for
from specflowd.agents.result import AgentRequest
from specflowd.agents.supervisor import Supervisor
from specflowd.core.vocab import FORKS, ErrorType
from tests.agents.conftest import Harness, log_path
from tests.conftest import run_cli, wait_for
from tests.e2e.orchestration.conftest import events, start, state, wait_status
from tests.e2e.real.conftest import KINDS, MODELS, PRICE, RealProject, installed, task_ids
from tests.realcli.clis import environment
from tests.realcli.server import Fault, ModelServer


def agent_requests(server: ModelServer, kind: str | None = None) -> list:
    return [e for e in server.log if e.prompt_kind != "other" and (kind is None or e.prompt_kind == kind)]


def assert_only_the_model_api(server: ModelServer, kind: str) -> None:
    assert server.stray == [], f"{kind} tried to reach {server.stray}"
    assert {e.model for e in agent_requests(server)} == {MODELS[kind]} | (
        {"claude-haiku-4-5"} if any(e.fault == "overload" for e in server.log) else set())


def assert_cost(project: RealProject, s: dict) -> None:
    """Claude Code's cost is its own; Codex's and Gemini's are the tokens the server reported, priced."""
    runs = s["runs"]
    if project.kind == "claude":
        assert s["total_cost_usd"] > 0 and not any(r["cost_estimated"] for r in runs)
        # Claude Code's total_cost_usd is its session's: a resumed or forked run's own is what it added.
        for r in runs:
            before = next((p["session_cost_usd"] for p in reversed(runs[:r["n"] - 1])
                           if r["resumed_from"] and p["session_id"] == r["resumed_from"]), 0.0)
            assert r["cost_usd"] == pytest.approx(r["session_cost_usd"] - before, abs=1e-6)
        return
    reported_in = sum(e.usage[0] for e in project.server.log)
    reported_out = sum(e.usage[1] for e in project.server.log)
    seen = [r["tokens"] for r in runs if r["tokens"]]
    assert sum(t["input"] + t["cache_read"] for t in seen) == reported_in
    assert sum(t["output"] for t in seen) == reported_out
    expected = (reported_in * PRICE["input"] + reported_out * PRICE["output"]) / 1_000_000
    assert s["total_cost_usd"] == pytest.approx(expected, abs=1e-5) and s["total_cost_usd"] > 0
    assert all(r["cost_estimated"] for r in runs if r["tokens"])
    status = run_cli("status", s["id"], cwd=project.root)
    assert "(estimated from tokens)" in status.stdout


@pytest.mark.parametrize("kind", KINDS)
def test_three_batches_with_a_follow_up_and_a_heal(kind: str, real_project, server: ModelServer) -> None:
    """Batch 1 straight through; batch 2's run stops after one task (a follow-up resumes its session);
    batch 3's run fails on a refused request (a healer forks its session where the CLI can, else
    starts afresh with the failure's context). Then verify, merge, completed."""
    project = real_project(kind)
    ids = task_ids(kind, 9)
    # Refused requests fail the run (Claude Code tries a 400 six times with fewer beta headers, then its
    # fallback model: it is refused whatever it tries).
    server.script.add(Fault("stop", at=ids[4], during="implement"),
                      Fault("http_400", at=ids[7], during="implement", times=30))
    if kind == "claude":  # overloaded twice: Claude Code retries, then takes its fallback model
        server.script.add(Fault("overload", at=ids[1], times=4))
    project.start_daemon()
    oid = start(project.root)
    s = wait_status(project.root, oid, {"completed", "needs_attention", "failed"}, timeout=240)
    assert s["status"] == "completed", (s["error"], [r["error"] for r in s["runs"]])

    assert project.done_marks() == dict.fromkeys(ids, 1)
    assert len(project.merged_files()) == 9
    happened = events(project.root, oid)
    assert happened.count("batch-completed") == 3 and "followup-started" in happened and "heal-started" in happened
    work1, work2, followup, work3, heal = s["runs"]
    assert [r["purpose"] for r in s["runs"]] == ["work", "work", "followup", "work", "heal"]
    assert all(r["session_id"] for r in s["runs"]) and all(r["ok"] for r in s["runs"] if r is not work3)
    assert (work3["ok"], work3["error_type"]) == (False, "process_failed")
    assert "scripted failure" in work3["error"]  # what the CLI said of the refused request
    # The follow-up continued batch 2's session; the server saw its history.
    fresh = agent_requests(server, "implement")[0].history  # what a CLI puts before a new session's prompt
    assert followup["resumed_from"] == work2["session_id"] == followup["session_id"]
    assert agent_requests(server, "followup")[0].history > fresh
    first_heal = agent_requests(server, "heal")[0]
    assert "scripted failure" in first_heal.prompt  # the failure's context, in the prompt
    if kind in FORKS:  # a new session holding the failed one's history
        assert heal["resumed_from"] == work3["session_id"] != heal["session_id"]
        assert first_heal.history > fresh
    else:  # Gemini CLI cannot fork: a fresh session
        assert heal["resumed_from"] is None and heal["session_id"] != work3["session_id"]
        assert first_heal.history == fresh
    if kind == "claude":
        assert server.log[-1].model == MODELS["claude"] or any(e.model == "claude-haiku-4-5" for e in server.log)
    assert_only_the_model_api(server, kind)
    assert_cost(project, s)


@pytest.mark.parametrize("kind", KINDS)
def test_a_usage_limit_is_waited_out_then_a_budget_stops_it(kind: str, real_project, server: ModelServer) -> None:
    """The first request meets a usage limit that lifts in seconds: paused until then, then resumed
    by itself. Batch 2's model reports two million input tokens: over budget. Claude Code stops its
    own run at --max-budget-usd (the per-batch budget left) and the batch cannot be healed within
    it; Codex and Gemini CLI report tokens only at the end, so their batch completes, priced by
    specflowd, and batch 3 is not started: the total budget is spent."""
    project = real_project(kind)
    ids = task_ids(kind, 9)
    # A run of the scripted agent costs Claude Code ~$1 at its own prices, Codex and Gemini ~$0.2 at
    # ours; Gemini CLI gives up a turn whose prompt outgrows its 1M-token context window.
    budget, tokens = {"claude": ({"per_batch": 5.0, "total": 50.0}, 2_000_000),
                      "codex": ({"per_batch": 3.0, "total": 2.0}, 2_000_000),
                      "gemini": ({"per_batch": 3.0, "total": 1.0}, 900_000)}[kind]
    project.configure(budget=budget)
    server.script.add(Fault("usage_limit", at=ids[0], during="implement", reset_in_s=3),
                      Fault("expensive", at=ids[3], tokens=tokens))
    project.start_daemon()
    began = datetime.now(UTC)
    oid = start(project.root)
    s = wait_status(project.root, oid, {"completed", "needs_attention", "failed"}, timeout=240)
    assert s["status"] == "needs_attention" and "budget" in s["error"], s["error"]
    happened = events(project.root, oid)
    assert "rate-limited" in happened and "resumed" in happened and "budget-stopped" in happened
    limited, resumed = s["runs"][:2]
    assert limited["error_type"] == "rate_limited" and resumed["ok"]
    # The wait ended when the CLI said (Codex says it to the minute), not after the 60 s back-off.
    wait = next(d for d in s["decisions"] if d["reason"] == "rate-limited")
    until = datetime.fromisoformat(re.search(r"waiting until (\S+)", wait["decision"]).group(1))
    assert (until - began).total_seconds() < (61 if kind == "codex" else 30)
    assert s["batches"][0]["status"] == "completed"
    if kind == "claude":
        assert s["runs"][-1]["error_type"] == "budget_exceeded"  # Claude Code's own stop
        assert s["batches"][1]["cost_usd"] > 5.0 and project.done_marks() == dict.fromkeys(ids[:3], 1)
    else:
        assert s["batches"][1]["status"] == "completed" and s["total_cost_usd"] > budget["total"]
        assert project.done_marks() == dict.fromkeys(ids[:6], 1) and len(s["runs"]) == 3
    assert_only_the_model_api(server, kind)
    assert_cost(project, s)


@pytest.mark.parametrize("kind", KINDS)
def test_cancel_stops_a_run_waiting_on_its_model(kind: str, real_project, server: ModelServer) -> None:
    project = real_project(kind, 3)
    server.script.add(Fault("hang", at=task_ids(kind, 1)[0], times=5))
    project.start_daemon()
    oid = start(project.root)
    wait_for(lambda: any(e.fault == "hang" for e in server.log), 60, message="the CLI waiting on the model")
    pid = state(project.root, oid)["runs"][0]["pid"]
    assert run_cli("cancel", oid, "--wait", "20", cwd=project.root).returncode == 0
    wait_status(project.root, oid, {"cancelled"}, timeout=60)
    run = wait_for(lambda: state(project.root, oid)["runs"][0]["ended_at"] and state(project.root, oid)["runs"][0],
                   30, message="the run to end")
    assert run["error_type"] == "cancelled" and not run["ok"]
    wait_for(lambda: not Path(f"/proc/{pid}").exists()
             or Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z", 30,
             message="the CLI's process to be gone")
    assert "cancelled" in events(project.root, oid)


def test_claude_refusals_are_named_instead_of_looking_like_a_success(real_project, server: ModelServer) -> None:
    """Claude Code in print mode refuses what is not allowed and still says `success`: a run that
    left tasks undone that way stops for attention, naming what was refused and what to change."""
    project = real_project("claude", 2)
    project.configure(agent={"disallowed_tools": ["AskUserQuestion", "Bash(git commit:*)", "Bash(specflowd mark:*)"]})
    project.start_daemon()
    oid = start(project.root)
    s = wait_status(project.root, oid, {"completed", "needs_attention"}, timeout=120)
    assert s["status"] == "needs_attention"
    run = s["runs"][0]
    assert run["error_type"] == "permission_denied" and len(s["runs"]) == 1  # no follow-up, no healer
    assert "Claude Code was refused `Bash(git commit -q -m" in s["error"]
    assert "`Bash(specflowd mark '#1' --done)`" in s["error"] and "allowed_tools" in s["error"]
    assert "batch-failed" in events(project.root, oid)
    doctor = json.loads(run_cli("doctor", "--json", cwd=project.root).stdout)
    assert next(c for c in doctor if c["name"] == "permissions")["level"] == "warn"


def test_codex_with_its_model_server_down_fails_in_bounded_time(repo: Path, tmp_path: Path) -> None:
    """Codex waits for the network forever; the supervisor stops it and says why."""
    cli = installed("codex")
    dead = ModelServer()  # bound, never served: connections are refused
    dead.httpd.server_close()
    env = environment("codex", tmp_path / "home", dead.url)
    h = Harness()
    h.supervisor = Supervisor(h.events.put, grace_s=1.0, unreachable_s=3.0)
    began = time.monotonic()
    try:
        h.supervisor.start("r1", AgentRequest(kind="codex", command=[str(cli.path)], prompt="hello", cwd=repo,
                                              model=MODELS["codex"], env=env), log_path(repo, "o1", 1, "implement"))
        result = h.result("r1", timeout=120)
    finally:
        h.supervisor.close()
    assert result.error_type is ErrorType.PROCESS_FAILED and "could not reach its model API" in (result.error or "")
    assert result.session_id  # the stream was read: the thread had started
    assert time.monotonic() - began < 60
    assert adapter_for("codex").parse_line('{"type":"thread.started","thread_id":"x"}') is not None
