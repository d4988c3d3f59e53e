"""The commands people and agents run all the time start only what they need: no read command, and
no `mark --wait`, imports pydantic (the request protocol's models), watchdog (the daemon's watcher)
or rich (the live screen). Each of them is a large share of a command that should cost about what
a git command costs (issue: "fast at every size"; tests/bench/bench_cli.py has the figures).
`inbox` judges waiting requests with the daemon's own parser, pydantic and all; `log -f` and
`status --watch` watch, and draw: they are not here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.daemon.conftest import (
    make_project,
    start_daemon,  # noqa: F401 - a fixture, found by pytest by name
)

HEAVY = ("pydantic", "watchdog", "rich")
# Runs a command as the `specflowd` entry point does, then says which modules it had imported.
PROBE = """
import json, sys
from specflowd.cli import main
sys.argv = ["specflowd", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
sys.stderr.write("\\nMODULES " + json.dumps(sorted({m.split(".")[0] for m in sys.modules})) + "\\n")
"""


def imported(cwd: Path, *args: str) -> set[str]:
    r = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    line = next(ln for ln in r.stderr.splitlines() if ln.startswith("MODULES "))
    return set(json.loads(line.removeprefix("MODULES ")))


@pytest.fixture
def project(repo: Path) -> Path:
    return make_project(repo)


@pytest.mark.parametrize("args", [("status",), ("list",), ("fleet",), ("log", "-n", "5"), ("log", "--json"),
                                  ("plan", "demo"), ("plan", "demo", "--json")])
def test_read_commands_import_no_pydantic_watchdog_or_rich(project: Path, args: tuple[str, ...]) -> None:
    assert "specflowd" in imported(project, *args)
    assert imported(project, *args).isdisjoint(HEAVY), args


def test_mark_wait_imports_none_of_them_either(project: Path, start_daemon) -> None:  # noqa: F811
    start_daemon(project)
    modules = imported(project, "mark", "T001", "--done", "--wait", "30")
    assert "specflowd" in modules and modules.isdisjoint(HEAVY), sorted(modules & set(HEAVY))
    # The answer came: the mark was made (through the daemon, not by the probe).
    assert "- [x] T001" in (project / ".specflow" / "design-docs" / "specs" / "demo" / "progress.md").read_text()
