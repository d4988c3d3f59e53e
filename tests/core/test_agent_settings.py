"""The pure rules around agents: what environment they get, what their tokens cost, what their
permission settings allow, and the settings' validation."""

from __future__ import annotations

import pytest

from specflowd.core.config import Config, layered, parse_settings
from specflowd.core.environment import agent_env, child_env, needed, path_with
from specflowd.core.permissions import cannot_commit, claude_allowed_tools, refusal, refused_tool
from specflowd.core.prices import DEFAULT_PRICES, Price, TokenUsage, estimate, price_for, price_table
from specflowd.core.prompts import mark_word, task_line
from specflowd.core.tasklist import TaskListError, parse
from specflowd.core.vocab import AgentKind
from specflowd.errors import UserError


def parse_config(text: str) -> Config:
    return layered({}, parse_settings(text, Config, "c"), "c")


DAEMON = {
    "PATH": "/usr/bin", "HOME": "/home/u", "LANG": "C.UTF-8", "LC_CTYPE": "C.UTF-8", "TERM": "xterm",
    "HTTPS_PROXY": "http://proxy:3128", "no_proxy": "localhost",
    "ANTHROPIC_API_KEY": "sk-ant", "OPENAI_API_KEY": "sk-oai", "GEMINI_API_KEY": "g", "MY_PROVIDER_KEY": "k",
    "AWS_SECRET_ACCESS_KEY": "aws", "GITHUB_TOKEN": "ghp", "SSH_AUTH_SOCK": "/tmp/ssh",
    "GIT_DIR": "/elsewhere/.git", "GIT_WORK_TREE": "/elsewhere", "GIT_INDEX_FILE": "/elsewhere/index",
    "GIT_AUTHOR_NAME": "Ann", "NOTIFY_SOCKET": "/run/notify", "WATCHDOG_USEC": "1",
}


@pytest.mark.parametrize("kind", list(AgentKind))
def test_agents_get_what_their_cli_needs_and_no_more(kind: AgentKind) -> None:
    env = agent_env(DAEMON, kind, [])
    assert {"PATH", "HOME", "LANG", "LC_CTYPE", "TERM", "HTTPS_PROXY", "no_proxy", "GIT_AUTHOR_NAME"} <= set(env)
    assert not {"GITHUB_TOKEN", "SSH_AUTH_SOCK", "AWS_SECRET_ACCESS_KEY", "MY_PROVIDER_KEY"} & set(env)
    keys = {AgentKind.CLAUDE: "ANTHROPIC_API_KEY", AgentKind.CODEX: "OPENAI_API_KEY", AgentKind.GEMINI: "GEMINI_API_KEY"}
    for other_kind, key in keys.items():
        assert (key in env) == (other_kind == kind or kind == AgentKind.AIDER)


def test_no_child_ever_gets_git_locations_or_the_systemd_handshake() -> None:
    for env in (child_env(DAEMON), agent_env(DAEMON, AgentKind.CLAUDE, ["*"]),
                agent_env(DAEMON, AgentKind.CODEX, ["GIT_*", "NOTIFY_SOCKET"])):
        assert not {"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "NOTIFY_SOCKET", "WATCHDOG_USEC"} & set(env)
    assert child_env(DAEMON)["GITHUB_TOKEN"] == "ghp"  # the verify command keeps the rest


def test_env_pass_adds_names_and_globs_and_star_restores_everything() -> None:
    env = agent_env(DAEMON, AgentKind.CODEX, ["GITHUB_TOKEN", "AWS_*"], also=["MY_PROVIDER_KEY"])
    assert {"GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY", "MY_PROVIDER_KEY", "OPENAI_API_KEY"} <= set(env)
    assert "SSH_AUTH_SOCK" not in env
    assert set(agent_env(DAEMON, AgentKind.COMMAND, ["*"])) == set(child_env(DAEMON))


def test_what_specflowd_gives_wins_and_its_folder_comes_first_on_path() -> None:
    env = agent_env(DAEMON, AgentKind.CLAUDE, [], given={"PATH": path_with("/venv/bin", "/usr/bin:/venv/bin"),
                                                         "SPECFLOW_SPEC": "demo"})
    assert env["PATH"] == "/venv/bin:/usr/bin" and env["SPECFLOW_SPEC"] == "demo"
    assert path_with(None, "/a::/b") == "/a:/b"


def test_claude_on_bedrock_gets_the_cloud_credentials() -> None:
    assert "AWS_*" not in needed(AgentKind.CLAUDE, DAEMON)
    env = agent_env(DAEMON | {"CLAUDE_CODE_USE_BEDROCK": "1"}, AgentKind.CLAUDE, [])
    assert env["AWS_SECRET_ACCESS_KEY"] == "aws"


def test_prices_by_name_or_longest_prefix_and_overrides_win() -> None:
    assert price_for("gpt-5-codex", DEFAULT_PRICES) == DEFAULT_PRICES["gpt-5"]
    assert price_for("gpt-5-mini-2025", DEFAULT_PRICES) == DEFAULT_PRICES["gpt-5-mini"]
    assert price_for("GEMINI-2.5-PRO", DEFAULT_PRICES) == DEFAULT_PRICES["gemini-2.5-pro"]
    assert price_for("llama-3", DEFAULT_PRICES) is None
    table = price_table({"gpt-5": Price(input=2.0, output=4.0)})
    assert table["gpt-5"].input == 2.0 and table["o3"] == DEFAULT_PRICES["o3"]


def test_estimates_price_each_kind_of_token_and_name_what_has_no_price() -> None:
    prices = {"m": Price(input=1.0, output=10.0, cache_read=0.1), "w": Price(input=2.0, output=2.0)}
    tokens = {"m": TokenUsage(input=1_000_000, output=100_000, cache_read=1_000_000),
              "w": TokenUsage(cache_write=500_000), "x": TokenUsage(input=5), "empty": TokenUsage()}
    e = estimate(tokens, prices)
    assert e.usd == pytest.approx(1.0 + 1.0 + 0.1 + 1.0)  # cache writes cost the input price when not given
    assert e.unpriced == ["x"]


def test_claude_is_allowed_the_prompts_needs_the_verify_command_and_more() -> None:
    tools = claude_allowed_tools("npm test", ["Bash(make:*)", "Edit"])
    assert tools[-2:] == ["Bash(npm test:*)", "Bash(make:*)"] and tools.count("Edit") == 1
    assert refused_tool("Bash", {"command": "npm\n test"}) == "Bash(npm test)"
    msg = refusal(AgentKind.CLAUDE, ["Bash(npm test)", "Bash(npm test)", "Write(/a)"])
    assert msg == "Claude Code was refused `Bash(npm test)`, `Write(/a)`: add them to [agent] allowed_tools"


@pytest.mark.parametrize(("kind", "mode", "disallowed", "own", "blocked"), [
    (AgentKind.CLAUDE, "", ["AskUserQuestion"], None, False),
    (AgentKind.CLAUDE, "plan", [], None, True),
    (AgentKind.CLAUDE, "", ["Bash"], None, True),
    (AgentKind.CODEX, "", [], None, False),
    (AgentKind.CODEX, "workspace-write", [], None, True),  # `.git` stays read-only in it
    (AgentKind.CODEX, "", [], "workspace-write", True),  # the Codex config's own mode wins over the profile
    (AgentKind.CODEX, "read-only", [], None, True),
    (AgentKind.CODEX, "danger-full-access", [], None, False),
    (AgentKind.GEMINI, "", [], None, False),
    (AgentKind.GEMINI, "auto_edit", [], None, True),
    (AgentKind.COMMAND, "", [], None, False),
])
def test_settings_that_cannot_commit_are_named(kind: AgentKind, mode: str, disallowed: list[str], own: str | None,
                                               blocked: bool) -> None:
    assert (cannot_commit(kind, mode, disallowed, own) is not None) == blocked


def test_permission_modes_are_checked_per_cli() -> None:
    assert parse_config('[agent]\nkind = "gemini"\npermission_mode = "plan"\n').agent.permission_mode
    with pytest.raises(UserError, match="agent.permission_mode: .yolo. is not one of codex.s"):
        parse_config('[agent]\nkind = "codex"\npermission_mode = "yolo"\n')
    prices = parse_config('[agent.prices."gpt-5"]\ninput = 1.0\noutput = 8.0\n').agent.prices
    assert prices["gpt-5"].output == 8.0


def test_prompts_show_the_exact_id_to_pass_quoted_for_a_shell() -> None:
    assert task_line("#20", " ", "Write the docs") == "- [ ] Write the docs (mark: specflowd mark '#20' --done)"
    assert task_line("T001", "~", "T001 Build it") == "- [~] T001 Build it (mark: specflowd mark T001 --done)"
    assert mark_word("2.1") == "2.1"


def test_a_task_list_without_ids_takes_the_number_for_the_hash_id() -> None:
    doc = parse(b"- [ ] first\n- [ ] second\n")
    assert doc.find("2").id == "#2" and doc.find("#1").id == "#1"
    kiro = parse(b"- [ ] 1. one\n- [ ] 3. three\n")
    assert kiro.find("3").id == "3"  # a real id "3" is that task, not the third one
    with pytest.raises(TaskListError):
        kiro.find("2")


def test_a_resumed_or_forked_run_counts_only_what_it_added_to_its_session() -> None:
    """Claude Code's total_cost_usd and Codex's usage are the session's running totals."""
    from datetime import UTC, datetime

    from specflowd.core.costs import own_share, session_end
    from specflowd.core.events import RunResult
    from specflowd.core.state import AgentRun, OrchestrationState

    now = datetime(2026, 1, 1, tzinfo=UTC)
    first = AgentRun(n=1, phase="implement", session_id="s", ended_at=now, cost_usd=0.3, session_cost_usd=0.3,
                     session_tokens={"m": TokenUsage(input=100, output=10)})
    state = OrchestrationState(id="o", spec="x", project="/p", created_at=now, updated_at=now, runs=[
        first, AgentRun(n=2, phase="implement", session_id="s", resumed_from="s")])
    assert session_end(state, "s", 2) is first and session_end(state, "other", 2) is None
    said = RunResult(ok=True, cost_usd=0.5, tokens={"m": TokenUsage(input=250, output=30)})
    mine = own_share(said, first)
    assert mine.cost_usd == pytest.approx(0.2) and mine.tokens["m"] == TokenUsage(input=150, output=20)
    assert mine.session_cost_usd == 0.5 and mine.session_tokens == said.tokens  # the next run's baseline
    assert own_share(said, None).cost_usd == 0.5  # a fresh session's totals are its own


def test_tokens_without_a_price_say_so_and_a_cost_said_by_the_cli_stands() -> None:
    from specflowd.core.config import AgentConfig
    from specflowd.core.costs import priced
    from specflowd.core.events import RunResult

    cfg = AgentConfig(kind=AgentKind.CODEX, command="codex", model="gpt-5", prices={"house-model": Price(input=2, output=2)})
    unnamed = priced(RunResult(ok=True, tokens={"": TokenUsage(input=1_000_000)}, cost_estimated=True), cfg)
    assert unnamed.cost_usd == pytest.approx(1.25) and set(unnamed.tokens) == {"gpt-5"} and unnamed.cost_estimated
    odd = priced(RunResult(ok=True, tokens={"llama": TokenUsage(input=10)}, cost_estimated=True), cfg)
    assert odd.cost_usd == 0 and odd.unpriced == ["llama"]
    nothing = priced(RunResult(ok=True, cost_estimated=True), cfg)  # no tokens said either: nothing to price
    assert not nothing.cost_estimated and nothing.cost_usd == 0
    said = RunResult(ok=True, cost_usd=0.7, tokens={"x": TokenUsage(input=1)})
    assert priced(said, cfg) == said
