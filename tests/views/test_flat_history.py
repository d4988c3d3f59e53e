"""The read commands cost the same on a long history as on a short one: nothing they do may grow
with the number of commits (nor of past orchestrations). The same commands, on a project of 1,000
commits and 5 past orchestrations and on one of 20,000 commits and 100, compared by the CPU they
use (the command and its git children), run alternately so that both see the same machine.

A ratio, not a time limit: a read of the whole history at every call, or of every past
orchestration's state file, costs 1.8x and more here (it did before the daemon kept an index);
work that does not grow stays near 1.0x, and the 1.5x bound leaves the noise of a loaded machine
room. tests/bench/bench_cli.py measures the same on 100,000 commits, with figures.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

from specflowd.daemon import statefile
from specflowd.repo.project import locate

COMMANDS = [("status",), ("list",), ("fleet",), ("log", "-n", "50", "--json"), ("plan", "big", "--json")]
RUNS = 5
BOUND = 1.5


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("history")
    # The benchmarks' fixture builder sets git's identity in os.environ when imported: kept to it.
    with mock.patch.dict(os.environ):
        from tests.bench.history import long_project

        small = long_project(base, "short", 1_000, 5, big=2_000)
        large = long_project(base, "long", 20_000, 100, big=2_000)
    for root in (small, large):  # the index the daemon keeps of the ended orchestrations
        p = locate(root)
        statefile.save_index(p, statefile.ended_rows(statefile.load_all(p)))
    return small, large


def cpu(cwd: Path, args: tuple[str, ...]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run([sys.executable, "-m", "specflowd", *args], cwd=cwd, capture_output=True, timeout=120)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert r.returncode == 0, r.stderr
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_read_command_costs_the_same_on_twenty_times_the_history(projects: tuple[Path, Path],
                                                                   args: tuple[str, ...]) -> None:
    small, large = projects
    cpu(small, args), cpu(large, args)  # the page cache warmed for both
    short, long = [], []
    for _ in range(RUNS):
        short.append(cpu(small, args))
        long.append(cpu(large, args))
    ratio = statistics.median(long) / statistics.median(short)
    assert ratio <= BOUND, (f"{' '.join(args)}: {statistics.median(long) * 1000:.0f} ms CPU on 20,000 commits vs "
                            f"{statistics.median(short) * 1000:.0f} ms on 1,000 ({ratio:.2f}x)")
