"""Issue 7's load figure: one daemon serving 50 projects with 200 orchestrations in their state
folders. Time from start to READY=1 (a real notify socket), resident memory, idle CPU.

Run: python3 tests/bench/bench_load.py [--projects 50] [--orchestrations 200] [--idle 30]
"""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from common import ENV, ROOT, cpu_s, rss_mb, run, settle, table


def make(base: Path, n_projects: int, n_orchestrations: int) -> list[Path]:
    from specflowd.core.state import Decision, OrchestrationState
    from specflowd.core.vocab import Status
    from specflowd.daemon import statefile
    from specflowd.ops.init import initialize
    from specflowd.repo.project import locate

    roots = []
    statuses = [Status.COMPLETED, Status.WAITING_MERGE, Status.NEEDS_ATTENTION, Status.CANCELLED]
    for i in range(n_projects):
        root = base / f"p{i:02d}"
        root.mkdir()
        run(["git", "init", "-q", "-b", "main"], root)
        run(["git", "commit", "-q", "--allow-empty", "-m", "initial"], root)
        initialize(locate(root))
        roots.append(root)
    for k in range(n_orchestrations):
        root = roots[k % n_projects]
        now = datetime.now(UTC)
        state = OrchestrationState(id=f"{k:08x}", spec=f"spec-{k}", project=str(root),
                                   status=statuses[k % len(statuses)], created_at=now, updated_at=now,
                                   decisions=[Decision(at=now, decision="start", reason="bench")])
        statefile.save(locate(root), state)
    return roots


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--projects", type=int, default=50)
    ap.add_argument("--orchestrations", type=int, default=200)
    ap.add_argument("--idle", type=float, default=30)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        t = time.monotonic()
        roots = make(base, a.projects, a.orchestrations)
        made = time.monotonic() - t
        sock_path = base / "notify.sock"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(sock_path))
        sock.settimeout(120)
        env = dict(ENV, PYTHONPATH=str(ROOT), NOTIFY_SOCKET=str(sock_path))
        args = [x for r in roots for x in ("--project", str(r))]
        began = time.monotonic()
        daemon = subprocess.Popen([sys.executable, "-m", "specflowd", "run", *args], env=env, cwd=roots[0],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            ready = None
            while ready is None:
                msg = sock.recv(4096).decode()
                if "READY=1" in msg.split("\n"):
                    ready = time.monotonic() - began
            settle(daemon.pid)
            rss_ready = rss_mb(daemon.pid)
            before = cpu_s(daemon.pid)
            time.sleep(a.idle)
            idle = cpu_s(daemon.pid) - before
            rss_after = rss_mb(daemon.pid)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=30)
            sock.close()
        rows = [
            ("projects / orchestrations in state folders", f"{a.projects} / {a.orchestrations}"),
            ("setting them up (not the daemon)", f"{made:.1f} s"),
            ("start to READY=1", f"{ready:.2f} s"),
            ("resident memory at READY / after idling", f"{rss_ready:.1f} MB / {rss_after:.1f} MB"),
            (f"idle CPU over {a.idle:.0f} s", f"{idle:.3f} s"),
            ("daemon exit on SIGTERM", str(daemon.returncode)),
        ]
        table("One daemon, many projects", rows, ("what", "value"))


if __name__ == "__main__":
    main()
