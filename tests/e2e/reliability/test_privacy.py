"""What specflowd keeps is its user's alone: agent output (which may quote a key) never reaches the
feed, which is pushed and read by everyone; everything under `.specflow/` is 0700 / 0600 whatever
the umask; and a link planted where specflowd writes is replaced, never written through."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import git, run_cli, wait_for
from tests.daemon.conftest import make_project
from tests.e2e.orchestration.conftest import DEMO_AGENT, configure, start, state, wait_status

SECRET = "sk-SPECFLOWD-TEST-0123456789abcdef"
LEAKY_AGENT = f"""import json, sys
sys.stdin.read()
print("debug: using ANTHROPIC_API_KEY={SECRET}", file=sys.stderr)
print(json.dumps({{"ok": False, "result": "gave up; my key {SECRET} was refused"}}))
sys.exit(1)
"""


def test_agent_output_never_reaches_the_feed(repo: Path, start_daemon, tmp_path: Path) -> None:
    project = make_project(repo)
    agent = tmp_path / "leaky_agent.py"
    agent.write_text(LEAKY_AGENT)
    configure(project, agent={"kind": "command", "command": f"{sys.executable} {agent}"},
              orchestration={"max_heal_attempts": 1, "skip_analyze": True})
    start_daemon(project)
    oid = start(project)
    s = wait_status(project, oid, {"needs_attention"})
    assert "process_failed" in s["error"]
    assert SECRET in s["error"]  # the person sees why, in their own state file...
    state_file = project / ".specflow" / "workflows" / f"orchestration-{oid}.json"
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600  # ...which nobody else can read
    for ref in git(project, "for-each-ref", "--format=%(refname)").split():
        assert SECRET not in git(project, "log", "--format=%B", ref), ref
    assert SECRET not in run_cli("log", "-n", "200", cwd=project).stdout
    logs = project / ".specflow" / "logs" / oid
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in logs.iterdir())


def private(project: Path) -> list[str]:
    """Everything under .specflow/ that is not 0700 (folders) or 0600 (files); the checkouts inside
    (the design-docs worktree, code worktrees) are the person's files and keep git's modes."""
    specflow = project / ".specflow"
    checkouts = [specflow / "design-docs", *(specflow / "worktrees").iterdir()]
    wrong = []
    for path in [specflow, *specflow.rglob("*")]:
        if any(path.is_relative_to(c) for c in checkouts):
            continue
        mode = stat.S_IMODE(path.lstat().st_mode)
        if mode != (0o700 if path.is_dir() else 0o600):
            wrong.append(f"{path.relative_to(project)} {mode:o}")
    return wrong


def test_everything_under_specflow_is_private_whatever_the_umask(repo: Path, start_daemon) -> None:
    old = os.umask(0o002)  # a shared group's umask: files 0664, folders 0775
    try:
        for args in (("init",), ("new", "demo")):
            assert run_cli(*args, cwd=repo).returncode == 0
        docs = repo / ".specflow" / "design-docs"
        (docs / "specs" / "demo" / "progress.md").write_text("## A\n- [ ] T001 one\n- [ ] T002 two\n")
        git(docs, "commit", "-qam", "tasks")
        configure(repo, agent={"kind": "command", "command": DEMO_AGENT},
                  orchestration={"skip_analyze": True, "auto_merge": True})
        d = start_daemon(repo)
        oid = start(repo)
        wait_status(repo, oid, {"completed"})
        # A request dropped by hand, with the group's umask.
        (repo / ".specflow" / "requests" / "tmp" / "byhand.json").write_text(
            '{"action": "mark", "spec": "demo", "task": "T001", "status": "done"}')
        os.rename(repo / ".specflow/requests/tmp/byhand.json", repo / ".specflow/requests/byhand.json")
        assert d.answer("byhand")["ok"] is True
        d.filed("byhand.json")
    finally:
        os.umask(old)
    assert state(repo, oid)["status"] == "completed"
    assert private(repo) == []


@pytest.mark.parametrize("where", ["responses/.tmp", "responses/planted.json"])
def test_a_planted_link_is_replaced_never_written_through(repo: Path, start_daemon, tmp_path: Path,
                                                         where: str) -> None:
    project = make_project(repo)
    victim = tmp_path / "victim"
    victim.mkdir()
    bashrc = victim / ".bashrc"
    bashrc.write_text("# mine\n")
    link = project / ".specflow" / where
    if link.exists():
        subprocess.run(["rm", "-rf", str(link)], check=True)
    link.symlink_to(victim if where.endswith(".tmp") else bashrc)
    d = start_daemon(project)
    d.drop({"id": "planted", "action": "fly"}, "planted.json")
    answer = project / ".specflow" / "responses" / "planted.json"
    wait_for(lambda: answer.exists() and not answer.is_symlink(), 15, message="the answer, as a file of its own")
    assert json.loads(answer.read_text())["ok"] is False
    assert bashrc.read_text() == "# mine\n" and sorted(p.name for p in victim.iterdir()) == [".bashrc"]
    assert not (project / ".specflow" / where).is_symlink()
