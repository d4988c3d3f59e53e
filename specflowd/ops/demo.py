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
from dataclasses import dataclass
from pathlib import Path

from specflowd import fsio
from specflowd.core.config import Config, render_config
from specflowd.core.vocab import AgentKind
from specflowd.daemon.statefile import read_one
from specflowd.ops.init import initialize
from specflowd.repo import git
from specflowd.repo.project import locate
from specflowd.views.progress import follow_orchestration


@dataclass(frozen=True)
class Scenario:
    """An example `specflowd demo NAME` runs: a spec, its task list, and the task that fails once."""

    name: str
    about: str
    spec: str
    tasks: str
    ids: tuple[str, ...]  # the tasks the demo agent does, each leaving specflow-demo/<id>.md
    fail_once: str | None


HELLO = Scenario(
    "hello", "12 spec-kit tasks in 3 sections; one fails once and a healer finishes its batch",
    "hello-specflow", """# Tasks: Hello specflow

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
""", tuple(f"T{i:03d}" for i in range(1, 13)), "T006")
KIRO = Scenario(
    "kiro", "a Kiro-style plan: dotted ids, nested tasks whose parents close with their children",
    "kiro-plan", """# Implementation Plan

## Foundations
- [ ] 1. Set up the project structure
  - [ ] 1.1 Create the package folders
  - [ ] 1.2 Add the configuration loader

## Features
- [ ] 2. Implement the greeting service
  - [ ] 2.1 Write the greeting function
  - [ ] 2.2 Write its tests
- [ ] 3. Document the service
""", ("1", "1.1", "1.2", "2", "2.1", "2.2", "3"), None)
SCENARIOS = {s.name: s for s in (HELLO, KIRO)}
DEMO_NAME, DEMO_EMAIL = "specflowd demo", "demo@specflowd.invalid"
# The project's own test: every task left its file. verify_command runs it with unittest.
VERIFY_TEST = '''import pathlib
import unittest

EXPECTED = @IDS@


class DemoWork(unittest.TestCase):
    def test_every_task_left_its_file(self):
        done = sorted(p.stem for p in pathlib.Path("specflow-demo").glob("*.md"))
        self.assertEqual(done, sorted(EXPECTED))


if __name__ == "__main__":
    unittest.main()
'''


def build(folder: Path, scenario: Scenario = HELLO) -> Path:
    """A repository with one commit, set up for specflowd, with the scenario's spec committed."""
    project = folder / "project"
    project.mkdir(parents=True)
    git.init_repository(project, "main")
    (project / "README.md").write_text("# A throw-away project for `specflowd demo`\n")
    (project / "test_demo_work.py").write_text(VERIFY_TEST.replace("@IDS@", repr(list(scenario.ids))))
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
    spec_dir = proj.design_docs / "specs" / scenario.spec
    spec_dir.mkdir(parents=True)
    (spec_dir / "requirements.md").write_text(f"# Requirements: {scenario.spec}\n\n{scenario.about}.\n")
    (spec_dir / "design.md").write_text(f"# Design: {scenario.spec}\n\nOne small file per task.\n")
    (spec_dir / "progress.md").write_text(scenario.tasks)
    git.commit_everything(proj.design_docs, f"spec {scenario.spec}: requirements, design and "
                          f"{len(scenario.ids)} tasks", name=DEMO_NAME, email=DEMO_EMAIL)
    return project


def shim(folder: Path) -> Path:
    """A `specflowd` on PATH for the agent, running this very installation."""
    bin_dir = folder / "bin"
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / "specflowd"
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m specflowd "$@"\n')
    path.chmod(0o755)
    return bin_dir


def run(folder: Path, say: Callable[[str], None], scenario: Scenario = HELLO, timeout_s: float = 300.0) -> int:
    """Build the project, run a daemon, start the orchestration, narrate the feed until it ends."""
    started = time.monotonic()
    project = build(folder, scenario)
    proj = locate(project)
    say(f"project: {project}")
    env = dict(os.environ, PATH=f"{shim(folder)}{os.pathsep}{os.environ.get('PATH', '')}",
               SPECFLOWD_DEMO_FAIL_ONCE=scenario.fail_once or "", GIT_AUTHOR_NAME=DEMO_NAME,
               GIT_AUTHOR_EMAIL=DEMO_EMAIL, GIT_COMMITTER_NAME=DEMO_NAME, GIT_COMMITTER_EMAIL=DEMO_EMAIL)
    for var in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        env.pop(var, None)
    log = open(folder / "daemon.log", "wb")  # noqa: SIM115 - closed below, after the daemon
    daemon = subprocess.Popen([sys.executable, "-m", "specflowd", "run", "--project", str(project)], cwd=project,
                              env=env, stdout=log, stderr=log, preexec_fn=_die_with_parent)
    try:
        before = git.read_ref(proj.common_dir, proj.branch_ref)
        answer = subprocess.run([sys.executable, "-m", "specflowd", "start", scenario.spec, "--wait", "30",
                                 "--json"], cwd=project, env=env, capture_output=True, text=True)
        if answer.returncode != 0:
            say(f"start failed: {answer.stderr.strip() or answer.stdout.strip()}")
            return 1
        oid = json.loads(answer.stdout)["result"]["orchestration"]
        say(f"orchestration {oid} started; the feed (git log of {proj.branch}):")
        _, shown = follow_orchestration(proj, oid, say, timeout_s, since=before)
        state = read_one(proj, oid)
        status = state.status.value if state else "unknown"
        say("")
        say(f"{shown} feed entries; status {status}, ${state.total_cost_usd if state else 0:.4f} spent, "
            f"{time.monotonic() - started:.1f} s")
        say(f"merged into main: {git.log(project, 'main', '%h %s', limit=1).strip()}")
        say(f"look around: cd {project} && git log --oneline --graph --all")
        return 0 if status == "completed" else 1
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
