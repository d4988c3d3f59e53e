"""The crash test of issue 5: an orchestration of 30 tasks in 5 batches, run by the demo agent, with
the daemon killed by SIGKILL at random moments and started again each time. It must complete, with
every task done exactly once in the feed, no duplicate or missing event commits, `git fsck` clean,
and no orphan agent processes. Prints the kills and the recovery time.

Run: python3 tests/bench/bench_crash.py [--kills 25] [--seed N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from common import ENV, ROOT, make_project, table, wait_until

from specflowd.ops.demo import shim
from specflowd.repo import feed
from specflowd.repo.project import locate


def tasks(batches: int = 5, per: int = 6) -> str:
    lines = ["# Tasks: crash test", ""]
    n = 0
    for b in range(1, batches + 1):
        lines += [f"## Batch {b}", ""]
        for _ in range(per):
            n += 1
            lines.append(f"- [ ] T{n:03d} Task {n} of batch {b}")
        lines.append("")
    return "\n".join(lines)


def build(base: Path) -> Path:
    def configure(config) -> None:
        config.agent.kind = "command"
        config.agent.command = f"{sys.executable} -m specflowd.agents.demo"
        config.orchestration.auto_merge = True
        config.orchestration.skip_analyze = True
        config.orchestration.verify_command = "true"

    return make_project(base, "project", {"crash": tasks()}, configure)


class Daemon:
    def __init__(self, project: Path, log: Path, env: dict[str, str]) -> None:
        self.log = log
        self.offset = log.stat().st_size if log.exists() else 0
        with open(log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "specflowd", "run", "--project", str(project)],
                                         cwd=project, env=env, stdout=out, stderr=out)

    def wait_serving(self, timeout: float = 30) -> float:
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            with open(self.log, "rb") as f:
                f.seek(self.offset)
                if b"serving" in f.read():
                    return time.monotonic() - began
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited: {self.log.read_text()[-2000:]}")
            time.sleep(0.01)
        raise RuntimeError("daemon did not start")


def status_of(project: Path, oid: str) -> str:
    try:
        return json.loads((project / ".specflow" / "workflows" / f"orchestration-{oid}.json").read_text())["status"]
    except (OSError, ValueError):
        return "unknown"


def orphans(project: Path) -> list[str]:
    """Agent processes of this run's project still alive: found by the SPECFLOW_PROJECT every agent
    is given, so that another run's agents on the same machine are not counted."""
    mark = f"SPECFLOW_PROJECT={project}".encode()
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if mark not in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                    continue
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            out.append(f"{pid} {cmd}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=25)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--min-gap", type=float, default=0.3)
    ap.add_argument("--max-gap", type=float, default=1.5)
    ap.add_argument("--task-s", type=float, default=0.8, help="the demo agent's pause per task")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        project = build(base)
        bin_dir = shim(base)
        env = dict(ENV, PATH=f"{bin_dir}{os.pathsep}{ENV['PATH']}", PYTHONPATH=str(ROOT),
                   SPECFLOWD_DEMO_TASK_S=str(args.task_s))
        log = base / "daemon.log"
        daemon = Daemon(project, log, env)
        daemon.wait_serving()
        r = subprocess.run([sys.executable, "-m", "specflowd", "start", "crash", "--wait", "30", "--json"],
                           cwd=project, env=env, capture_output=True, text=True)
        oid = json.loads(r.stdout)["result"]["orchestration"]
        began = time.monotonic()
        kills = 0
        recovery: list[float] = []
        while kills < args.kills and status_of(project, oid) not in ("completed", "needs_attention", "failed"):
            time.sleep(rng.uniform(args.min_gap, args.max_gap))
            daemon.proc.send_signal(signal.SIGKILL)
            daemon.proc.wait()
            kills += 1
            daemon = Daemon(project, log, env)
            recovery.append(daemon.wait_serving())
        wait_until(lambda: status_of(project, oid) in ("completed", "needs_attention", "failed"), 180, every=0.1)
        final = status_of(project, oid)
        took = time.monotonic() - began
        daemon.proc.send_signal(signal.SIGTERM)
        daemon.proc.wait(timeout=15)

        proj = locate(project)
        entries = [e for e in feed.read(proj, limit=None) if e.get("spec") in ("crash", None)]
        done = Counter(t["task"] for e in entries if not e.get("event") for t in e["tasks"] if t["status"] == "done")
        events = Counter((e["event"], e.get("batch")) for e in entries
                         if e.get("event") and e.get("orchestration") == oid)
        once = [("started", None), ("completed", None), ("merged", None), ("verify-passed", None)]
        once += [("batch-completed", b) for b in {k[1] for k in events if k[0] == "batch-completed"}]
        dup_events = {k: v for k, v in events.items() if k in once and v != 1}
        fsck = subprocess.run(["git", "fsck", "--no-dangling"], cwd=project, capture_output=True, text=True, env=ENV)
        left = orphans(project)
        state = json.loads((proj.workflows / f"orchestration-{oid}.json").read_text())
        rows = [
            ("final status", final),
            ("SIGKILLs", str(kills)),
            ("recovery (restart to serving) total", f"{sum(recovery):.2f} s"),
            ("recovery p50 / max", f"{sorted(recovery)[len(recovery) // 2]:.2f} s / {max(recovery):.2f} s"
             if recovery else "-"),
            ("wall time from start", f"{took:.1f} s"),
            ("tasks done in the feed", f"{len(done)} of 30"),
            ("tasks marked done more than once", str(sum(1 for v in done.values() if v > 1))),
            ("batches completed (events)", str(sum(v for k, v in events.items() if k[0] == "batch-completed"))),
            ("duplicate one-time events", str(dup_events or "none")),
            ("restart events", str(sum(v for k, v in events.items() if k[0] == "restarted"))),
            ("agent runs", str(len(state["runs"]))),
            ("git fsck", "clean" if fsck.returncode == 0 and not fsck.stdout.strip() else fsck.stdout[:200]),
            ("orphan agent processes", str(len(left))),
        ]
        table("Crash test: SIGKILL the daemon at random moments", rows, ("what", "value"))
        ok = (final == "completed" and len(done) == 30 and all(v == 1 for v in done.values()) and not dup_events
              and fsck.returncode == 0 and not left)
        print(f"\nresult: {'PASS' if ok else 'FAIL'}")
        if not ok:
            print(log.read_text()[-3000:])
            sys.exit(1)


if __name__ == "__main__":
    main()
