"""What agents are given and how their runs are judged, through a real daemon: their environment
(no git locations, only what env_pass lets through), this specflowd on their PATH, a run that ended
while no daemon watched, and a session that cannot be resumed."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

from tests.conftest import git, wait_for
from tests.e2e.orchestration.conftest import DEMO_AGENT, FAKE_CLAUDE, configure, start, state, wait_status


def env_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def dumping_agent(project: Path, dump: Path) -> str:
    """The demo agent, after writing its environment to `dump` (appended, one run after another)."""
    script = project.parent / "env-agent.sh"
    script.write_text(f'#!/bin/sh\nenv >> "{dump}"\nexec {DEMO_AGENT}\n')
    script.chmod(0o755)
    return str(script)


def test_git_locations_never_reach_agents_or_the_verify_command(project: Path, start_daemon) -> None:
    """A daemon started with GIT_DIR set (from a hook, by hand) once had agents commit into that
    other repository while the orchestration said `completed`."""
    decoy = project.parent / "decoy"
    git(project.parent, "init", "-q", "-b", "main", str(decoy))
    git(decoy, "commit", "-q", "--allow-empty", "-m", "the decoy's only commit")
    agent_env, verify_env = project.parent / "agent.env", project.parent / "verify.env"
    configure(project, agent={"command": dumping_agent(project, agent_env)},
              orchestration={"verify_command": f"sh -c 'env > {verify_env}'"})
    start_daemon(project, env={"GIT_DIR": str(decoy / ".git"), "GIT_WORK_TREE": str(decoy),
                               "GIT_INDEX_FILE": str(decoy / ".git" / "index")})
    oid = start(project)
    s = wait_status(project, oid, {"completed", "needs_attention"})
    assert s["status"] == "completed", s["error"]
    assert git(decoy, "rev-list", "--count", "--all").strip() == "1"
    assert len(git(project, "ls-tree", "--name-only", "main", "specflow-demo/").split()) == 4
    for env in (env_file(agent_env), env_file(verify_env)):
        assert not {"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"} & set(env)


def test_agents_get_what_their_cli_needs_and_what_env_pass_names(project: Path, start_daemon) -> None:
    agent_env, verify_env = project.parent / "agent.env", project.parent / "verify.env"
    configure(project, agent={"command": dumping_agent(project, agent_env), "env_pass": ["KEEP_*"]},
              orchestration={"verify_command": f"sh -c 'env > {verify_env}'"})
    start_daemon(project, env={"KEEP_ME": "kept", "CLOUD_TOKEN": "secret", "SSH_AUTH_SOCK": "/tmp/agent.sock"})
    oid = start(project)
    s = wait_status(project, oid, {"completed", "needs_attention"})
    assert s["status"] == "completed", s["error"]
    agent, verify = env_file(agent_env), env_file(verify_env)
    assert agent["KEEP_ME"] == "kept" and not {"CLOUD_TOKEN", "SSH_AUTH_SOCK"} & set(agent)
    assert agent["HOME"] == os.environ["HOME"] and agent["SPECFLOW_SPEC"] == "demo"
    assert agent["GIT_AUTHOR_NAME"] == "Test User"  # the repository's identity, given to the agent
    assert verify["CLOUD_TOKEN"] == "secret"  # the project's own verify command keeps the rest


def test_agents_find_this_specflowd_where_path_has_none(project: Path, start_daemon, bin_dir: Path) -> None:
    """As under systemd: the daemon is started by its full path, and PATH has no specflowd."""
    dump = project.parent / "agent.env"
    configure(project, agent={"command": dumping_agent(project, dump)})
    # git and a shell, nothing else: no folder with a specflowd in it.
    bare_path = os.pathsep.join(sorted({str(Path(shutil.which(p) or "/usr/bin/x").parent) for p in ("git", "sh")}))
    assert shutil.which("specflowd", path=bare_path) is None
    start_daemon(project, env={"PATH": bare_path}, program=str(bin_dir / "specflowd"))
    oid = start(project)
    s = wait_status(project, oid, {"completed", "needs_attention"})
    assert s["status"] == "completed", s["error"]  # the demo agent ran `specflowd mark` for each task
    env = env_file(dump)
    assert env["SPECFLOW_BIN"] == str(bin_dir / "specflowd")
    assert env["PATH"].split(os.pathsep)[0] == str(bin_dir)


def test_a_run_that_ended_while_no_daemon_watched_counts_with_its_cost(project: Path, start_daemon,
                                                                       fake_claude) -> None:
    configure(project, agent=FAKE_CLAUDE)
    gate = project.parent / "gate"
    fake_claude(runs=[{"steps": [{"wait_for_file": str(gate)}, {"mark": "T001"}, {"mark": "T002"}], "cost": 0.25},
                      {"steps": [{"mark": "T003"}, {"mark": "T004"}], "cost": 0.5}])
    first = start_daemon(project)
    oid = start(project)
    run = wait_for(lambda: next((r for r in state(project, oid)["runs"] if r["pid"]), None), 30,
                   message="the agent running")
    first.stop(signal.SIGKILL)
    gate.write_text("go\n")
    # The agent finishes and exits with nobody watching (it marks with --now, as told to).
    wait_for(lambda: not Path(f"/proc/{run['pid']}").exists()
             or Path(f"/proc/{run['pid']}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z", 30,
             message="the agent to end")
    start_daemon(project)
    s = wait_status(project, oid, {"completed", "needs_attention"})
    assert s["status"] == "completed", s["error"]
    assert len(s["runs"]) == 2  # read from its log, not run again
    assert (s["runs"][0]["ok"], s["runs"][0]["cost_usd"], s["runs"][0]["error_type"]) == (True, 0.25, None)
    assert s["total_cost_usd"] == 0.75


def test_a_session_that_cannot_be_resumed_is_started_afresh(project: Path, start_daemon, fake_claude) -> None:
    """The follow-up resumes the first run's session, which is gone: the same prompt goes to a fresh
    session instead of spending a failed attempt on "No conversation found"."""
    configure(project, agent=FAKE_CLAUDE)
    fake_claude(runs=[{"steps": [{"mark": "T001"}, {"forget_sessions": True}], "cost": 0.01},
                      {"steps": [{"mark": "T002"}], "cost": 0.01},
                      {"steps": [{"mark": "T003"}, {"mark": "T004"}], "cost": 0.01}])
    daemon = start_daemon(project)
    oid = start(project)
    s = wait_status(project, oid, {"completed", "needs_attention"})
    assert s["status"] == "completed", s["error"]
    work, followup, _ = s["runs"]
    assert followup["purpose"] == "followup" and followup["ok"] and followup["resumed_from"] == work["session_id"]
    assert followup["session_id"] not in (None, work["session_id"])
    assert "cannot be resumed; starting a fresh session" in daemon.log()
