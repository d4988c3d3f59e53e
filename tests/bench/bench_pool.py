"""Issue 5's load figure: many orchestrations in several projects at once, one daemon, a pool of
`max_agents` slots. Every agent records when it starts and ends; the most at once must never exceed
the pool, and every orchestration must complete. Also reports specflowd's own overhead per batch
(everything but the agents' run time).

Run: python3 tests/bench/bench_pool.py [--projects 4] [--specs 5] [--max-agents 4]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ENV, ROOT, make_project, table, wait_until

from specflowd.ops.demo import shim

TASKS = "# Tasks\n\n## One\n- [ ] T001 first\n- [ ] T002 second\n\n## Two\n- [ ] T003 third\n- [ ] T004 fourth\n"


def build(base: Path, name: str, specs: int, max_agents: int, agent: str, tasks: str) -> Path:
    def configure(config) -> None:
        config.agent.kind = "command"
        config.agent.command = agent
        config.orchestration.auto_merge = True
        config.orchestration.skip_analyze = True
        config.pool.max_agents = max_agents

    return make_project(base, name, {f"spec-{i}": tasks for i in range(specs)}, configure)


def max_concurrency(record: Path) -> int:
    events = []
    for line in record.read_text().splitlines():
        kind, stamp, _ = line.split()
        events.append((float(stamp), 1 if kind == "start" else -1))
    events.sort(key=lambda e: (e[0], e[1]))  # an end before a start at the same instant
    now = peak = 0
    for _, delta in events:
        now += delta
        peak = max(peak, now)
    return peak


def gaps(record: Path) -> list[float]:
    """For one orchestration run one agent at a time: from an agent's exit to the next one's start,
    which is all specflowd's own work between two batches (judging the run, event commits, state
    writes, choosing and spawning the next)."""
    stamps = [(kind, float(t)) for kind, t, _ in (line.split() for line in record.read_text().splitlines())]
    ends = [t for kind, t in stamps if kind == "end"]
    starts = [t for kind, t in stamps if kind == "start"]
    return [b - a for a, b in zip(ends, starts[1:], strict=False)]


def run(projects: int, specs: int, max_agents: int, task_s: float, tasks: str = TASKS) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        record = base / "agents.log"
        agent = (f"sh -c 'echo start $(date +%s.%N) $$ >> {record}; {sys.executable} -m specflowd.agents.demo; "
                 f"rc=$?; echo end $(date +%s.%N) $$ >> {record}; exit $rc'")
        roots = [build(base, f"p{i}", specs, max_agents, agent, tasks) for i in range(projects)]
        bin_dir = shim(base)
        env = dict(ENV, PATH=f"{bin_dir}{os.pathsep}{ENV['PATH']}", PYTHONPATH=str(ROOT),
                   SPECFLOWD_DEMO_TASK_S=str(task_s))
        log = open(base / "daemon.log", "wb")  # noqa: SIM115
        args = [a for r in roots for a in ("--project", str(r))]
        daemon = subprocess.Popen([sys.executable, "-m", "specflowd", "run", *args], cwd=roots[0], env=env,
                                  stdout=log, stderr=log)
        began = time.monotonic()
        try:
            ids = []
            for root in roots:
                for i in range(specs):
                    r = subprocess.run([sys.executable, "-m", "specflowd", "start", f"spec-{i}", "--wait", "60",
                                        "--json"], cwd=root, env=env, capture_output=True, text=True)
                    assert r.returncode == 0, r.stderr
                    ids.append((root, json.loads(r.stdout)["result"]["orchestration"]))

            def states() -> list[dict]:
                return [json.loads((root / ".specflow" / "workflows" / f"orchestration-{oid}.json").read_text())
                        for root, oid in ids]

            wait_until(lambda: all(s["status"] in ("completed", "needs_attention", "failed") for s in states()), 600,
                       every=0.2)
            took = time.monotonic() - began
            final = states()
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=15)
            log.close()
        between = gaps(record)
        return {
            "orchestrations": len(final),
            "completed": sum(1 for s in final if s["status"] == "completed"),
            "agent runs": sum(len(s["runs"]) for s in final),
            "max agents at once": max_concurrency(record),
            "max_agents": max_agents,
            "wall time": took,
            "gap p50": statistics.median(between) if between else 0.0,
            "gap p90": sorted(between)[int(0.9 * (len(between) - 1))] if between else 0.0,
        }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--projects", type=int, default=4)
    ap.add_argument("--specs", type=int, default=5)
    ap.add_argument("--max-agents", type=int, default=4)
    ap.add_argument("--task-s", type=float, default=0.05)
    a = ap.parse_args()
    r = run(a.projects, a.specs, a.max_agents, a.task_s)
    sections = "# Tasks\n\n" + "".join(f"## Batch {i}\n- [ ] T{i:03d} task {i}\n\n" for i in range(1, 21))
    solo = run(1, 1, 1, 0.0, sections)
    rows = [
        ("orchestrations (projects x specs)", f"{r['orchestrations']} ({a.projects} x {a.specs})"),
        ("completed", str(r["completed"])),
        ("agent runs", str(r["agent runs"])),
        ("most agents at once / pool.max_agents", f"{r['max agents at once']} / {r['max_agents']}"),
        ("wall time", f"{r['wall time']:.1f} s"),
        ("overhead per batch p50 / p90 (1 orchestration, 20 batches)",
         f"{solo['gap p50'] * 1000:.0f} ms / {solo['gap p90'] * 1000:.0f} ms"),
    ]
    table("Orchestrations sharing the agent pool", rows, ("what", "value"))
    ok = (r["completed"] == r["orchestrations"] and r["max agents at once"] <= r["max_agents"]
          and solo["completed"] == 1)
    print(f"\nresult: {'PASS' if ok else 'FAIL'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
