"""A short run of the crash test (tests/bench/bench_crash.py runs the long one, 25 kills)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_an_orchestration_survives_repeated_sigkills_of_the_daemon() -> None:
    r = subprocess.run([sys.executable, str(ROOT / "tests" / "bench" / "bench_crash.py"), "--kills", "5",
                        "--task-s", "0.2", "--seed", "7"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "result: PASS" in r.stdout
    assert "SIGKILLs                             5" in r.stdout
