"""The real Claude Code, Codex and Gemini CLIs, through whole orchestrations run by a real daemon,
offline: the scripted model server plays the model, the CLIs do the rest for real (tool calls in
the worktree, `git commit` with trailers, `specflowd mark`, sessions resumed and forked). The three
CLIs work at once, one project each.

Each scenario asserts, for every CLI, the feed (each task done exactly once), the merge, the cost,
and what the adapter read from the real stream (sessions, results, error types); the server's log
says what the CLIs sent (the model, a resumed session's history) and that nothing went elsewhere.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from specflowd.agents.registry import adapter_for
from specflowd.agents.result import AgentRequest
from specflowd.agents.supervisor import Supervisor
from specflowd.core.vocab import FORKS, ErrorType
from tests.agents.conftest import Harness, log_path
from tests.conftest import git, run_cli, wait_for
from tests.e2e.orchestration.conftest import events, start, state, wait_status
from tests.e2e.real.conftest import FALLBACK, MODELS, PRICE, Fleet, RealProject, each, installed_clis
from tests.realcli.clis import CLIS, environment
from tests.realcli.server import Fault, ModelServer

ENDED = {"completed", "needs_attention", "failed", "cancelled"}


def run_all(fleet: Fleet, timeout: float = 300) -> dict[str, dict[str, Any]]:
    """Start the daemon and an orchestration in every project; their final states, by CLI."""
    fleet.start_daemon()
    oids = {kind: start(p.root) for kind, p in fleet.projects.items()}
    return {kind: wait_status(fleet.projects[kind].root, oid, ENDED, timeout=timeout) | {"oid": oid}
            for kind, oid in oids.items()}


def assert_only_the_model_api(project: RealProject) -> None:
    assert project.server.stray == [], f"something tried to reach {project.server.stray}"
    fallback = {FALLBACK} if any(e.fault == "overload" for e in project.requests()) else set()
    assert {e.model for e in project.requests()} <= {MODELS[project.kind]} | fallback


def assert_cost(project: RealProject, s: dict[str, Any]) -> None:
    """Claude Code's cost is its own (its session's running total: a resumed or forked run counts
    what it added); Codex's and Gemini's are the tokens the server reported, priced."""
    runs = s["runs"]
    if project.kind == "claude":
        assert s["total_cost_usd"] > 0 and not any(r["cost_estimated"] for r in runs)
        for r in runs:
            before = next((p["session_cost_usd"] for p in reversed(runs[:r["n"] - 1])
                           if r["resumed_from"] and p["session_id"] == r["resumed_from"]), 0.0)
            assert r["cost_usd"] == pytest.approx(r["session_cost_usd"] - before, abs=1e-6)
        return
    reported_in = sum(e.usage[0] for e in project.server.log if e.api == project.api)
    reported_out = sum(e.usage[1] for e in project.server.log if e.api == project.api)
    seen = [r["tokens"] for r in runs if r["tokens"]]
    assert sum(t["input"] + t["cache_read"] for t in seen) == reported_in
    assert sum(t["output"] for t in seen) == reported_out
    expected = (reported_in * PRICE["input"] + reported_out * PRICE["output"]) / 1_000_000
    assert s["total_cost_usd"] == pytest.approx(expected, abs=1e-5) and s["total_cost_usd"] > 0
    assert all(r["cost_estimated"] for r in runs if r["tokens"])
    assert "(estimated from tokens)" in run_cli("status", s["oid"], cwd=project.root).stdout


def test_three_batches_with_a_follow_up_and_a_heal(real_fleet, server: ModelServer) -> None:
    """Batch 1 straight through; batch 2's run stops after one task (a follow-up resumes its
    session); batch 3's requests are refused (a healer forks the failed session where the CLI can,
    else starts afresh with the failure's context). Then verify, merge, completed. Claude Code is
    also overloaded once and retries, then goes on with its fallback model."""
    fleet = real_fleet(6, 2)
    for p in fleet.projects.values():
        # Claude Code tries a 400 six times with fewer beta headers, then its fallback model: all refused.
        server.script.add(Fault("stop", at=p.ids[3], during="implement", api=p.api),
                          Fault("http_400", at=p.ids[5], during="implement", api=p.api, times=30))
    claude = fleet.projects["claude"]
    server.script.add(Fault("overload", at=claude.ids[1], api=claude.api, times=4))
    final = run_all(fleet)

    def check(p: RealProject) -> None:
        s = final[p.kind]
        assert s["status"] == "completed", (s["error"], [r["error"] for r in s["runs"]])
        assert p.done_marks() == dict.fromkeys(p.ids, 1)
        assert len(p.merged_files()) == 6
        happened = events(p.root, s["oid"])
        assert happened.count("batch-completed") == 3 and "followup-started" in happened and "heal-started" in happened
        assert [r["purpose"] for r in s["runs"]] == ["work", "work", "followup", "work", "heal"]
        _, work2, followup, work3, heal = s["runs"]
        assert all(r["session_id"] for r in s["runs"]) and all(r["ok"] for r in s["runs"] if r is not work3)
        assert (work3["ok"], work3["error_type"]) == (False, "process_failed")
        assert "scripted failure" in work3["error"]  # what the CLI said of the refused request
        # The follow-up continued batch 2's session: the server saw its history.
        fresh = p.requests("implement")[0].history  # what a CLI puts before a new session's prompt
        assert followup["resumed_from"] == work2["session_id"] == followup["session_id"]
        assert p.requests("followup")[0].history > fresh
        first_heal = p.requests("heal")[0]
        assert "scripted failure" in first_heal.prompt  # the failure's context, in the prompt
        if p.kind in FORKS:  # a new session holding the failed one's history
            assert heal["resumed_from"] == work3["session_id"] != heal["session_id"]
            assert first_heal.history > fresh
        else:  # Gemini CLI cannot fork: a fresh session
            assert heal["resumed_from"] is None and heal["session_id"] != work3["session_id"]
            assert first_heal.history == fresh
        if p.kind == "claude":
            assert [e.model for e in p.requests() if e.fault == "overload"][-1] == FALLBACK
        assert_only_the_model_api(p)
        assert_cost(p, s)

    each(fleet, check)


def test_a_usage_limit_is_waited_out_then_a_budget_stops_it(real_fleet, server: ModelServer) -> None:
    """The first request meets a usage limit that lifts in seconds: paused until then, then resumed
    by itself. Batch 2's model reports a huge prompt: over budget. Claude Code stops its own run at
    --max-budget-usd (the per-batch budget left) and the batch cannot be healed within it; Codex and
    Gemini CLI report tokens only at the end, so their batch completes, priced by specflowd, and
    batch 3 is not started: the total budget is spent."""
    fleet = real_fleet(6, 2)
    # A run of the scripted agent costs Claude Code ~$0.5 at its own prices, Codex and Gemini ~$0.1 at
    # ours; Gemini CLI gives up a turn whose prompt outgrows its 1M-token context window.
    budgets = {"claude": ({"per_batch": 5.0, "total": 50.0}, 2_000_000),
               "codex": ({"per_batch": 3.0, "total": 2.0}, 2_000_000),
               "gemini": ({"per_batch": 3.0, "total": 1.0}, 900_000)}
    for kind, p in fleet.projects.items():
        p.configure(budget=budgets[kind][0])
        server.script.add(Fault("usage_limit", at=p.ids[0], during="implement", api=p.api, reset_in_s=3),
                          Fault("expensive", at=p.ids[2], api=p.api, tokens=budgets[kind][1]))
    final = run_all(fleet)

    def check(p: RealProject) -> None:
        s = final[p.kind]
        assert s["status"] == "needs_attention" and "budget" in s["error"], s["error"]
        happened = events(p.root, s["oid"])
        assert "rate-limited" in happened and "resumed" in happened and "budget-stopped" in happened
        limited, resumed = s["runs"][:2]
        assert limited["error_type"] == "rate_limited" and resumed["ok"]
        # The wait ended when the CLI said (Codex says it to the minute), not after the 60 s back-off.
        wait = next(d for d in s["decisions"] if d["reason"] == "rate-limited")
        found = re.search(r"waiting until (\S+)", wait["decision"])
        assert found is not None
        until, noted = datetime.fromisoformat(found.group(1)), datetime.fromisoformat(wait["at"])
        # Counted from when the daemon heard of the limit (a loaded machine may take seconds to get
        # there); Codex's "in 1 minute" is a minute from when it said so, which was before.
        assert (until - noted).total_seconds() <= (60 if p.kind == "codex" else 30)
        assert s["batches"][0]["status"] == "completed"
        if p.kind == "claude":
            assert s["runs"][-1]["error_type"] == "budget_exceeded"  # Claude Code's own stop
            assert s["batches"][1]["cost_usd"] > 5.0 and p.done_marks() == dict.fromkeys(p.ids[:2], 1)
        else:
            assert s["batches"][1]["status"] == "completed" and len(s["runs"]) == 3
            assert s["total_cost_usd"] > budgets[p.kind][0]["total"]
            assert p.done_marks() == dict.fromkeys(p.ids[:4], 1)
        assert_only_the_model_api(p)
        assert_cost(p, s)

    each(fleet, check)


def test_cancel_stops_a_run_waiting_on_its_model(real_fleet, server: ModelServer) -> None:
    fleet = real_fleet(2, 2)
    for p in fleet.projects.values():
        server.script.add(Fault("hang", at=p.ids[0], api=p.api, times=5))
    fleet.start_daemon()
    oids = {kind: start(p.root) for kind, p in fleet.projects.items()}
    wait_for(lambda: all(any(e.fault == "hang" for e in p.requests()) for p in fleet.projects.values()), 60,
             message="every CLI waiting on the model")

    def check(p: RealProject) -> None:
        oid = oids[p.kind]
        pid = state(p.root, oid)["runs"][0]["pid"]
        assert run_cli("cancel", oid, "--wait", "20", cwd=p.root).returncode == 0
        wait_status(p.root, oid, {"cancelled"}, timeout=60)
        run = wait_for(lambda: state(p.root, oid)["runs"][0]["ended_at"] and state(p.root, oid)["runs"][0], 30,
                       message="the run to end")
        assert isinstance(run, dict) and run["error_type"] == "cancelled" and not run["ok"]
        wait_for(lambda: not Path(f"/proc/{pid}").exists()
                 or Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z", 30,
                 message="the CLI's process to be gone")
        assert "cancelled" in events(p.root, oid)

    each(fleet, check)


def test_claude_refusals_are_named_instead_of_looking_like_a_success(real_fleet, server: ModelServer) -> None:
    """Claude Code in print mode refuses what is not allowed and still says `success`: a run that
    left tasks undone that way stops for attention, naming what was refused and what to change."""
    fleet = real_fleet(1, 1, kinds=["claude"])
    p = fleet.projects["claude"]
    p.configure(agent={"disallowed_tools": ["AskUserQuestion", "Bash(git commit:*)", "Bash(specflowd mark:*)"]})
    s = run_all(fleet)["claude"]
    assert s["status"] == "needs_attention"
    assert s["runs"][0]["error_type"] == "permission_denied" and len(s["runs"]) == 1  # no follow-up, no healer
    assert "Claude Code was refused `Bash(git add -- specflow-real/task-1.md && git commit -q -m" in s["error"]
    assert "`Bash(specflowd mark '#1' --done)`" in s["error"] and "allowed_tools" in s["error"]
    assert "batch-failed" in events(p.root, s["oid"])
    doctor = json.loads(run_cli("doctor", "--json", cwd=p.root).stdout)
    assert next(c for c in doctor if c["name"] == "permissions")["level"] == "warn"


def test_codex_with_its_model_server_down_fails_in_bounded_time(repo: Path, tmp_path: Path) -> None:
    """Codex waits for the network forever; the supervisor stops it and says why."""
    installed_clis()
    dead = ModelServer()  # bound, never served: connections are refused
    dead.httpd.server_close()
    env = environment("codex", tmp_path / "home", dead.url)
    h = Harness()
    h.supervisor = Supervisor(h.events.put, grace_s=1.0, unreachable_s=3.0)
    try:
        h.supervisor.start("r1", AgentRequest(kind="codex", command=[str(CLIS["codex"].path)], prompt="hello",
                                              cwd=repo, model=MODELS["codex"], env=env),
                           log_path(repo, "o1", 1, "implement"))
        result = h.result("r1", timeout=120)
    finally:
        h.supervisor.close()
    assert result.error_type is ErrorType.PROCESS_FAILED and "could not reach its model API" in (result.error or "")
    assert result.session_id  # the stream was read: the thread had started


def test_codex_commits_in_its_sandbox_with_specflowds_profile_and_not_in_workspace_write(repo: Path) -> None:
    """Codex's own sandbox (bubblewrap), run with the very `-c` options the adapter builds: its
    workspace-write mode keeps a worktree's git directory read-only; specflowd's profile does not."""
    installed_clis()
    worktree = repo.parent / "wt"
    git(repo, "worktree", "add", "-q", str(worktree), "-b", "work")
    git_dir, common_dir = (Path(p) for p in git(worktree, "rev-parse", "--path-format=absolute", "--git-dir",
                                                   "--git-common-dir").split())
    env = dict(os.environ, CODEX_HOME=str(repo.parent / "codex-home"))
    Path(env["CODEX_HOME"]).mkdir()
    probe = "echo x > f && git add f && git commit -qm probe && echo > /tmp/specflowd-probe-$$ && echo ok"

    def sandboxed(options: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(CLIS["codex"].path), "sandbox", *options, "--", "sh", "-c", probe], cwd=worktree,
                              env=env, capture_output=True, text=True, timeout=60)

    argv = adapter_for("codex").argv(AgentRequest(kind="codex", prompt="p", cwd=worktree,
                                                  write_dirs=[common_dir, git_dir]), Path("p"))
    profile = [a for i, a in enumerate(argv) if argv[i - 1] == "-c" and "permission" in a]
    assert sandboxed([opt for c in profile for opt in ("-c", c)]).stdout.strip() == "ok"
    refused = sandboxed(["-c", 'sandbox_mode="workspace-write"'])
    assert "Read-only file system" in refused.stderr and "index.lock" in refused.stderr
