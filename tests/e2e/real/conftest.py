"""Whole orchestrations through a real daemon with the real Claude Code, Codex and Gemini CLIs,
talking to the test's own scripted model server on 127.0.0.1 (tests/realcli/server.py).

The three CLIs work at once, one project each, served by one daemon (as one daemon serves several
projects), against one server: a test takes as long as its slowest CLI, not all three.

The CLIs come from `python3 tests/realcli/install.py` (pinned in tests/realcli/clis.py, and run by
README's test command before the tests). A CLI that is not installed fails these tests, naming that
command: they are what judges the adapters, and a silent skip would let a broken adapter pass.
SPECFLOWD_REAL_CLIS=skip (said out loud, on a machine without npm) skips them instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tomllib
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from tests.conftest import git, run_cli
from tests.daemon.conftest import DaemonProcess
from tests.e2e.orchestration.conftest import feed
from tests.realcli.clis import CLIS, environment, proxy
from tests.realcli.server import FOLDER, Logged, ModelServer

# One model name per CLI (the server answers to any), each priced in its project's config so that
# the cost of Codex and Gemini runs is checkable from the tokens the server reported.
MODELS = {"claude": "claude-sonnet-4-5", "codex": "gpt-5", "gemini": "gemini-2.5-pro"}
FALLBACK = "claude-haiku-4-5"
PRICE = {"input": 1.0, "output": 10.0}  # USD per million tokens
API = {"claude": "anthropic", "codex": "responses", "gemini": "gemini"}  # the protocol each CLI speaks
KINDS = sorted(CLIS)


def task_ids(kind: str, n: int) -> list[str]:
    """Codex gets spec-kit ids; Claude Code and Gemini CLI a list without ids, marked as `'#N'`."""
    return [f"T{i:03d}" for i in range(1, n + 1)] if kind == "codex" else [f"#{i}" for i in range(1, n + 1)]


def sections(ids: list[str], per: int) -> str:
    """A task list of `ids`, `per` tasks to a `## ` section (a batch each)."""
    lines = ["# Tasks", ""]
    for i, task in enumerate(ids):
        if i % per == 0:
            lines += ["", f"## Part {i // per + 1}"]
        lines.append(f"- [ ] {'' if task.startswith('#') else task + ' '}Make piece {i + 1}")
    return "\n".join(lines) + "\n"


def installed_clis() -> None:
    missing = [f"{cli.kind} {cli.version}" for cli in CLIS.values() if not cli.path.exists()]
    if missing:
        why = f"not installed: {', '.join(missing)}: run `python3 tests/realcli/install.py`"
        if os.environ.get("SPECFLOWD_REAL_CLIS") == "skip":
            pytest.skip(f"{why} (SPECFLOWD_REAL_CLIS=skip)")
        pytest.fail(f"{why}; or set SPECFLOWD_REAL_CLIS=skip to skip the real-CLI tests")


@pytest.fixture(scope="session")
def model_server() -> Iterator[ModelServer]:
    server = ModelServer().start()
    yield server
    server.stop()


@pytest.fixture
def server(model_server: ModelServer) -> Iterator[ModelServer]:
    model_server.reset()
    yield model_server
    model_server.release_hangs()


class RealProject:
    """A project whose agent is one real CLI, and what the tests read back from it."""

    def __init__(self, root: Path, kind: str, server: ModelServer, ids: list[str]) -> None:
        self.root, self.kind, self.server, self.ids = root, kind, server, ids
        self.api = API[kind]

    def configure(self, **sections: dict[str, Any]) -> None:
        path = self.root / ".specflow" / "config.toml"
        data = tomllib.loads(path.read_text())
        for name, values in sections.items():
            data.setdefault(name, {}).update(values)
        path.write_text(tomli_w.dumps(data))

    def requests(self, prompt_kind: str | None = None) -> list[Logged]:
        """The agent requests this CLI sent (its side requests left out)."""
        return [e for e in self.server.log if e.api == self.api and e.prompt_kind != "other"
                and (prompt_kind is None or e.prompt_kind == prompt_kind)]

    def done_marks(self) -> Counter[str]:
        return Counter(t["task"] for e in feed(self.root) if not e.get("event") for t in e["tasks"]
                       if t["status"] == "done")

    def merged_files(self) -> list[str]:
        return git(self.root, "ls-tree", "--name-only", "main", f"{FOLDER}/").split()


class Fleet:
    """One project per CLI and the one daemon serving them all."""

    def __init__(self, projects: dict[str, RealProject], env: dict[str, str], log: Path) -> None:
        self.projects, self.env, self.log = projects, env, log
        self.daemon: DaemonProcess | None = None

    def start_daemon(self) -> DaemonProcess:
        roots = [p.root for p in self.projects.values()]
        args = tuple(a for root in roots for a in ("--project", str(root)))
        self.daemon = DaemonProcess(roots[0], self.log, args, self.env).wait_ready()
        return self.daemon

    def stop(self) -> None:
        """Stop the daemon, and any CLI still running (a daemon that stops leaves its agents running)."""
        if self.daemon is not None:
            self.daemon.stop()
        for project in self.projects.values():
            for path in (project.root / ".specflow" / "workflows").glob("orchestration-*.json"):
                for run in json.loads(path.read_text())["runs"]:
                    if run["pid"] and not run["ended_at"]:
                        with contextlib.suppress(ProcessLookupError, PermissionError):
                            os.killpg(run["pid"], signal.SIGKILL)


@pytest.fixture
def real_fleet(tmp_path: Path, server: ModelServer) -> Iterator[Callable[..., Fleet]]:
    """`make(n_tasks, per_batch)`: a project per real CLI (spec `demo`, `n_tasks` tasks, `per_batch`
    to a section), its agent that CLI talking to the model server; the daemon not started yet."""
    fleets: list[Fleet] = []

    def make(n_tasks: int, per_batch: int, kinds: list[str] = KINDS) -> Fleet:
        installed_clis()
        home = Path(os.environ["HOME"])
        # The CLIs' temporary files (Claude Code's per-project folders, Gemini's error reports) go
        # into the test's own folder, not /tmp.
        temp = tmp_path / "tmp"
        temp.mkdir()
        env = {**proxy(server.url), "TMPDIR": str(temp)}
        projects = {}
        for kind in kinds:
            root = tmp_path / f"project-{kind}"
            root.mkdir()
            git(root, "init", "-q", "-b", "main")
            (root / "README.md").write_text(f"{kind}\n")
            git(root, "add", "README.md")
            git(root, "commit", "-q", "-m", "initial")
            for args in (("init",), ("new", "demo")):
                r = run_cli(*args, cwd=root)
                assert r.returncode == 0, r.stderr
            ids = task_ids(kind, n_tasks)
            docs = root / ".specflow" / "design-docs"
            (docs / "specs" / "demo" / "progress.md").write_text(sections(ids, per_batch))
            git(docs, "commit", "-qam", "task list")
            project = RealProject(root, kind, server, ids)
            agent: dict[str, Any] = {"kind": kind, "command": str(CLIS[kind].path), "model": MODELS[kind],
                                     "prices": {MODELS[kind]: PRICE}, "timeout_s": 300, "max_turns": 60}
            if kind == "claude":
                agent["fallback_model"] = FALLBACK
            # env_pass stays the default: what each CLI needs must be enough.
            project.configure(agent=agent, orchestration={"skip_analyze": True, "auto_merge": True,
                                                          "verify_command": "git diff --quiet HEAD"})
            env.update(environment(kind, home, server.url))
            projects[kind] = project
        fleet = Fleet(projects, env, tmp_path / "daemon.log")
        fleets.append(fleet)
        return fleet

    yield make
    for fleet in fleets:
        fleet.stop()


def each(fleet: Fleet, check: Callable[[RealProject], None]) -> None:
    """Run `check` for every CLI's project and report every CLI that failed it, not only the first."""
    failures = []
    for kind, project in fleet.projects.items():
        try:
            check(project)
        except AssertionError as e:
            failures.append(f"{kind}: {e}")
    assert not failures, "\n\n".join(failures)
