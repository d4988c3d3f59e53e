"""Whole orchestrations through a real daemon with the real Claude Code, Codex and Gemini CLIs,
talking to the test's own scripted model server on 127.0.0.1 (tests/realcli/server.py).

The CLIs come from `python3 tests/realcli/install.py` (pinned in tests/realcli/clis.py). Where one
is not installed its tests are skipped with that command as the reason, unless
SPECFLOWD_REAL_CLIS=required (as `.ci/run` sets after installing them), which makes that a failure.
"""

from __future__ import annotations

import os
import tomllib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from tests.conftest import git, run_cli
from tests.daemon.conftest import DaemonProcess, start_daemon  # noqa: F401 - a fixture re-exported
from tests.e2e.orchestration.conftest import feed
from tests.realcli.clis import CLIS, Cli, environment, proxy
from tests.realcli.server import FOLDER, ModelServer

# One model name per CLI (the server answers to any), each priced in the project's config so that
# the cost Codex and Gemini runs are given is checkable from the tokens the server reported.
MODELS = {"claude": "claude-sonnet-4-5", "codex": "gpt-5", "gemini": "gemini-2.5-pro"}
PRICE = {"input": 1.0, "output": 10.0}  # USD per million tokens
KINDS = sorted(CLIS)


def sections(ids: list[str], per: int = 3) -> str:
    """A task list of `ids`, `per` tasks to a `## ` section (a batch each). `#N` ids: a list without ids."""
    lines = ["# Tasks", ""]
    for i, task in enumerate(ids):
        if i % per == 0:
            lines += ["", f"## Part {i // per + 1}"]
        lines.append(f"- [ ] {'' if task.startswith('#') else task + ' '}Make piece {i + 1}")
    return "\n".join(lines) + "\n"


def task_ids(kind: str, n: int) -> list[str]:
    """Codex gets spec-kit ids; Claude Code and Gemini CLI a list without ids, marked as `'#N'`."""
    return [f"T{i:03d}" for i in range(1, n + 1)] if kind == "codex" else [f"#{i}" for i in range(1, n + 1)]


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


def installed(kind: str) -> Cli:
    cli = CLIS[kind]
    if not cli.path.exists():
        why = f"{kind} {cli.version} is not installed: run `python3 tests/realcli/install.py`"
        if os.environ.get("SPECFLOWD_REAL_CLIS") == "required":
            pytest.fail(why)
        pytest.skip(why)
    return cli


class RealProject:
    """A project whose agent is a real CLI, the daemon serving it, and what the tests read back."""

    def __init__(self, root: Path, kind: str, server: ModelServer, env: dict[str, str], launch: Any) -> None:
        self.root, self.kind, self.server, self.env = root, kind, server, env
        self._start_daemon = launch
        self.daemon: DaemonProcess | None = None

    def configure(self, **sections: dict[str, Any]) -> None:
        path = self.root / ".specflow" / "config.toml"
        data = tomllib.loads(path.read_text())
        for name, values in sections.items():
            data.setdefault(name, {}).update(values)
        path.write_text(tomli_w.dumps(data))

    def start_daemon(self) -> DaemonProcess:
        self.daemon = self._start_daemon(self.root, env=self.env)
        return self.daemon

    def done_marks(self) -> Counter[str]:
        return Counter(t["task"] for e in feed(self.root) if not e.get("event") for t in e["tasks"]
                       if t["status"] == "done")

    def merged_files(self) -> list[str]:
        return git(self.root, "ls-tree", "--name-only", "main", f"{FOLDER}/").split()


@pytest.fixture
def real_project(repo: Path, tmp_path: Path, server: ModelServer, start_daemon: Any):  # noqa: F811
    """`make(kind, n_tasks)`: a project with spec `demo` of `n_tasks` tasks in sections of three,
    its agent the real CLI of `kind` talking to the model server; the daemon is not started yet."""
    def make(kind: str, n_tasks: int = 9) -> RealProject:
        cli = installed(kind)
        for args in (("init",), ("new", "demo")):
            r = run_cli(*args, cwd=repo)
            assert r.returncode == 0, r.stderr
        docs = repo / ".specflow" / "design-docs"
        (docs / "specs" / "demo" / "progress.md").write_text(sections(task_ids(kind, n_tasks)))
        git(docs, "commit", "-qam", "task list")
        home = Path(os.environ["HOME"])
        env = {**environment(kind, home, server.url), **proxy(server.url)}
        project = RealProject(repo, kind, server, env, start_daemon)
        agent: dict[str, Any] = {"kind": kind, "command": str(cli.path), "model": MODELS[kind],
                                 "prices": {MODELS[kind]: PRICE}, "timeout_s": 300, "max_turns": 60}
        if kind == "claude":
            agent["fallback_model"] = "claude-haiku-4-5"
        # env_pass stays the default: what each CLI needs must be enough.
        project.configure(agent=agent, orchestration={"skip_analyze": True, "auto_merge": True,
                                                      "verify_command": "git diff --quiet HEAD"})
        return project

    return make
