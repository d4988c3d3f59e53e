"""`specflowd demo`: the whole loop in a throw-away project, with the built-in demo agent, a real
verify command, one failing batch that the healer fixes, and the merge, narrated from the feed."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from specflowd import fsio
from specflowd.core.config import Config, render_config
from specflowd.core.vocab import AgentKind
from specflowd.ops.init import initialize
from specflowd.repo import feed, git
from specflowd.repo.follow import follow
from specflowd.repo.project import Project, locate

SPEC = "hello-specflow"
TASKS = """# Tasks: Hello specflow

## Setup
- [ ] T001 [P] Create the greeting module
- [ ] T002 [P] Add the farewell module
- [ ] T003 Write the module index
- [ ] T004 Describe the layout in the notes

## Core
- [ ] T005 Implement greeting in three languages
- [ ] T006 Implement the farewell counterpart
- [ ] T007 [P] Add the shared formatting helper
- [ ] T008 Wire greeting and farewell together (depends on T005, T006)

## Polish
- [ ] T009 [P] Add usage examples
- [ ] T010 [P] Add a changelog entry
- [ ] T011 Review naming across modules
- [ ] T012 Final check of the demo output
"""
# The project's own test: every task left its file. verify_command runs it with unittest.
VERIFY_TEST = '''import pathlib
import unittest


class DemoWork(unittest.TestCase):
    def test_every_task_left_its_file(self):
        done = sorted(p.stem for p in pathlib.Path("specflow-demo").glob("T*.md"))
        self.assertEqual(done, [f"T{i:03d}" for i in range(1, 13)])


if __name__ == "__main__":
    unittest.main()
'''
DEMO_NAME, DEMO_EMAIL = "specflowd demo", "demo@specflowd.invalid"
FAIL_ONCE = "T006"  # the demo agent fails on this task once; a healer run finishes the batch
TERMINAL = {"completed", "failed", "cancelled", "needs_attention"}


def build(folder: Path) -> Path:
    """A repository with one commit, set up for specflowd, with the demo spec committed."""
    project = folder / "project"
    project.mkdir(parents=True)
    git.init_repository(project, "main")
    (project / "README.md").write_text("# A throw-away project for `specflowd demo`\n")
    (project / "test_demo_work.py").write_text(VERIFY_TEST)
    git.commit_everything(project, "initial commit", name=DEMO_NAME, email=DEMO_EMAIL)
    proj = locate(project)
    config = Config()
    config.agent.kind = AgentKind.COMMAND
    config.agent.command = f"{sys.executable} -m specflowd.agents.demo"
    config.orchestration.auto_merge = True
    config.orchestration.verify_command = f"{sys.executable} -m unittest -q test_demo_work"
    config.budget.total = 5.0
    fsio.make_private_dirs(proj.specflow_dir)
    fsio.atomic_write(proj.config_path, render_config(config).encode())
    initialize(locate(project))
    spec_dir = proj.design_docs / "specs" / SPEC
    spec_dir.mkdir(parents=True)
    (spec_dir / "requirements.md").write_text("# Requirements: Hello specflow\n\nGreet, then say goodbye.\n")
    (spec_dir / "design.md").write_text("# Design: Hello specflow\n\nOne small module per task.\n")
    (spec_dir / "progress.md").write_text(TASKS)
    git.commit_everything(proj.design_docs, f"spec {SPEC}: requirements, design and 12 tasks", name=DEMO_NAME,
                          email=DEMO_EMAIL)
    return project


def shim(folder: Path) -> Path:
    """A `specflowd` on PATH for the agent, running this very installation."""
    bin_dir = folder / "bin"
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / "specflowd"
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m specflowd "$@"\n')
    path.chmod(0o755)
    return bin_dir


def run(folder: Path, say: Callable[[str], None], timeout_s: float = 120.0) -> int:
    """Build the project, run a daemon, start the orchestration, narrate the feed until it ends."""
    started = time.monotonic()
    project = build(folder)
    proj = locate(project)
    say(f"project: {project}")
    env = dict(os.environ, PATH=f"{shim(folder)}{os.pathsep}{os.environ.get('PATH', '')}",
               SPECFLOWD_DEMO_FAIL_ONCE=FAIL_ONCE, GIT_AUTHOR_NAME=DEMO_NAME,
               GIT_AUTHOR_EMAIL=DEMO_EMAIL, GIT_COMMITTER_NAME=DEMO_NAME, GIT_COMMITTER_EMAIL=DEMO_EMAIL)
    for var in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        env.pop(var, None)
    log = open(folder / "daemon.log", "wb")  # noqa: SIM115 - closed below, after the daemon
    daemon = subprocess.Popen([sys.executable, "-m", "specflowd", "run", "--project", str(project)], cwd=project,
                              env=env, stdout=log, stderr=log, preexec_fn=_die_with_parent)
    try:
        answer = subprocess.run([sys.executable, "-m", "specflowd", "start", SPEC, "--wait", "30", "--json"],
                                cwd=project, env=env, capture_output=True, text=True)
        if answer.returncode != 0:
            say(f"start failed: {answer.stderr.strip() or answer.stdout.strip()}")
            return 1
        oid = json.loads(answer.stdout)["result"]["orchestration"]
        say(f"orchestration {oid} started; the feed (git log of {proj.branch}):")
        shown = _narrate(proj, oid, say, started + timeout_s)
        state = json.loads((proj.workflows / f"orchestration-{oid}.json").read_text())
        say("")
        say(f"{shown} feed entries; status {state['status']}, ${state['total_cost_usd']:.4f} spent, "
            f"{time.monotonic() - started:.1f} s")
        say(f"merged into main: {git.log(project, 'main', '%h %s', limit=1).strip()}")
        say(f"look around: cd {project} && git log --oneline --graph --all")
        return 0 if state["status"] == "completed" else 1
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=10)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()


def _die_with_parent() -> None:
    """In the daemon's child process: SIGTERM it when the demo itself is killed, so an interrupted
    demo leaves no daemon behind."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _narrate(proj: Project, oid: str, say: Callable[[str], None], deadline: float) -> int:
    """Print feed entries as the branch moves (inotify on the ref, no polling) until the
    orchestration's state says it ended."""
    state_file = proj.workflows / f"orchestration-{oid}.json"
    shown = 0
    for entry in feed.read(proj, spec=SPEC, limit=50):
        say(f"  {entry['time'][11:19]}  {entry['subject']}")
        shown += 1
    for entries in follow(proj, None, git.read_ref(proj.common_dir, proj.branch_ref), idle_s=0.5):
        for entry in entries:
            say(f"  {entry['time'][11:19]}  {entry['subject']}")
            shown += 1
        try:
            status = json.loads(state_file.read_text())["status"]
        except (OSError, ValueError):
            status = "running"
        if status in TERMINAL or time.monotonic() > deadline:
            return shown
    return shown
