"""Shared fixtures: real git repositories, and a `specflowd` on PATH that runs this checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import settings as hypothesis_settings

# A test run must not fail on an example nobody has seen before: by default the property tests draw
# the same examples every run (and keep no database); `--hypothesis-profile=explore` draws new ones,
# which is worth doing whenever the machine or the grammar changes.
hypothesis_settings.register_profile("repeatable", derandomize=True, database=None)
hypothesis_settings.register_profile("explore", derandomize=False, database=None)
hypothesis_settings.load_profile("repeatable")

ROOT = Path(__file__).resolve().parent.parent
# Task lists of every style the grammar accepts, written for these tests; a corpus of real task lists
# beside the checkout (../shared/corpus, as in CI) adds cases when it is there, and is never required.
TASKLISTS = Path(__file__).resolve().parent / "core" / "tasklists"
EXTRA_CORPUS = ROOT.parent / "shared" / "corpus"
CORPUS_FILES = sorted(TASKLISTS.glob("*.md")) + sorted(p for p in EXTRA_CORPUS.glob("*.md") if p.name != "README.md")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="run the long variants too")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="long variant: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def bin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a `specflowd` that runs the checkout under test, made the way pip makes a
    console script (a Python script named `specflowd`), so it knows itself as pip's would."""
    d = tmp_path_factory.mktemp("bin")
    shim = d / "specflowd"
    shim.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(ROOT)!r})\n"
                    "from specflowd.cli import main\nsys.exit(main())\n")
    shim.chmod(0o755)
    return d


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, bin_dir: Path, tmp_path: Path) -> None:
    """Isolate every test from the user's git and specflowd configuration."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test User")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "test@example.com")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test User")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "test@example.com")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    for var in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(var, raising=False)


def git(cwd: Path, *args: str, input: str | None = None) -> str:
    """Run git in `cwd` and return stdout; raises with git's stderr on failure."""
    r = subprocess.run(["git", *args], cwd=cwd, input=input, capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {r.stderr}")
    return r.stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A fresh git repository on branch main with one commit."""
    path = tmp_path / "project"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "README.md").write_text("hello\n")
    git(path, "add", "README.md")
    git(path, "commit", "-q", "-m", "initial")
    return path


def configure(root: Path, **sections: dict[str, Any]) -> None:
    """Set keys in the project's .specflow/config.toml, section by section (comments are not kept)."""
    path = root / ".specflow" / "config.toml"
    data = tomllib.loads(path.read_text())
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    path.write_text(tomli_w.dumps(data))


def run_cli(*args: str, cwd: Path, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `specflowd ARGS` as a user would, in a real subprocess."""
    return subprocess.run(["specflowd", *args], cwd=cwd, input=input, capture_output=True, text=True,
                          timeout=timeout)


def wait_for(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.005,
             message: str = "condition") -> object:
    """Wait until `predicate()` is truthy, polling briefly; fail with `message` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)
