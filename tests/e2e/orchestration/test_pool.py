"""A short run of the pool load test (tests/bench/bench_pool.py runs 20 orchestrations in 4 projects)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_orchestrations_share_the_pool_without_exceeding_it() -> None:
    r = subprocess.run([sys.executable, str(ROOT / "tests" / "bench" / "bench_pool.py"), "--projects", "2",
                        "--specs", "3", "--max-agents", "2"], capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "result: PASS" in r.stdout
    assert "/ 2" in r.stdout and "6 (2 x 3)" in r.stdout
