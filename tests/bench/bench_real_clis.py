"""Issue 13's figures: the real Claude Code, Codex and Gemini CLIs through a real daemon, offline,
against the scripted model server (tests/realcli/server.py).

1. Each CLI: an orchestration of 9 tasks in 3 batches, to completed; its wall time against the same
   orchestration with the built-in demo agent, as a ratio (what the CLI's own start-up and turns cost).
2. specflowd's own overhead per batch with the real Claude Code (everything but the CLI's run: from
   one CLI's exit to the next one's start), over an orchestration of one task per batch; target p50 <= 100 ms.

Every agent is started through a wrapper that records when it starts and ends. The CLIs must be
installed first: python3 tests/realcli/install.py

Run: python3 tests/bench/bench_real_clis.py [--batches 10] [--only claude,codex,gemini]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ENV, make_project, table, wait_until

from specflowd.ops.demo import shim
from tests.realcli.clis import CLIS, environment, installed_version, proxy
from tests.realcli.server import ModelServer

MODELS = {"claude": "claude-sonnet-4-5", "codex": "gpt-5", "gemini": "gemini-2.5-pro"}
PRICE = {"input": 1.0, "output": 10.0}


def task_list(batches: int, per: int) -> str:
    lines = ["# Tasks: real CLIs", ""]
    for b in range(batches):
        lines += ["", f"## Part {b + 1}"]
        lines += [f"- [ ] T{b * per + i + 1:03d} Make piece {b * per + i + 1}" for i in range(per)]
    return "\n".join(lines) + "\n"


def recorded(program: str, record: Path) -> str:
    """`program` behind a shell that stamps its start and end into `record` (arguments passed on)."""
    script = (f'echo start $(date +%s.%N) $$ >> {shlex.quote(str(record))}; {program} "$@"; rc=$?; '
              f'echo end $(date +%s.%N) $$ >> {shlex.quote(str(record))}; exit $rc')
    return f"sh -c {shlex.quote(script)} agent"


def gaps(record: Path) -> list[float]:
    """From each agent's exit to the next one's start: specflowd's own work between two batches."""
    stamps = [(kind, float(t)) for kind, t, _ in (line.split() for line in record.read_text().splitlines())]
    ends = [t for kind, t in stamps if kind == "end"]
    starts = [t for kind, t in stamps if kind == "start"]
    return [b - a for a, b in zip(ends, starts[1:], strict=False)]


def orchestrate(kind: str, server: ModelServer, batches: int, per: int) -> dict:
    """One orchestration of `batches` x `per` tasks with agent `kind` ("demo" or a real CLI)."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        home = base / "home"
        home.mkdir()
        record = base / "agents.log"
        program = (f"{sys.executable} -m specflowd.agents.demo" if kind == "demo"
                   else shlex.quote(str(CLIS[kind].path)))

        def configure(config) -> None:
            config.agent.kind = "command" if kind == "demo" else kind
            config.agent.command = recorded(program, record)
            if kind != "demo":
                config.agent.model = MODELS[kind]
                config.agent.prices = {MODELS[kind]: PRICE}
            if kind == "claude":
                config.agent.fallback_model = "claude-haiku-4-5"
            config.orchestration.auto_merge = True
            config.orchestration.skip_analyze = True
            config.orchestration.verify_command = "true"

        root = make_project(base, "project", {"demo": task_list(batches, per)}, configure)
        bin_dir = shim(base)
        (base / "tmp").mkdir()
        env = dict(ENV, PATH=f"{bin_dir}{os.pathsep}{ENV['PATH']}", HOME=str(home), TMPDIR=str(base / "tmp"))
        if kind != "demo":
            env.update(environment(kind, home, server.url), **proxy(server.url))
        log = open(base / "daemon.log", "wb")  # noqa: SIM115
        daemon = subprocess.Popen([sys.executable, "-m", "specflowd", "run"], cwd=root, env=env, stdout=log,
                                  stderr=log)
        try:
            began = time.monotonic()
            r = subprocess.run([sys.executable, "-m", "specflowd", "start", "demo", "--wait", "60", "--json"], cwd=root,
                               env=env, capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
            oid = json.loads(r.stdout)["result"]["orchestration"]
            path = root / ".specflow" / "workflows" / f"orchestration-{oid}.json"

            def final() -> dict | None:
                try:
                    s = json.loads(path.read_text())
                except (OSError, ValueError):
                    return None
                return s if s["status"] in ("completed", "needs_attention", "failed") else None

            wait_until(final, 900, every=0.05)
            took = time.monotonic() - began
            s = final()
            assert s is not None
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=15)
            log.close()
        between = gaps(record)
        done = sum(1 for v in s["task_status"].values() if v == "done")
        return {"status": s["status"], "wall": took, "runs": len(s["runs"]), "done": done,
                "tasks": batches * per, "cost": s["total_cost_usd"], "gaps": between,
                "error": s.get("error") or ""}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=10, help="batches of one task, for the overhead figure")
    ap.add_argument("--only", default="claude,codex,gemini")
    a = ap.parse_args()
    kinds = [k for k in a.only.split(",") if k]
    missing = [k for k in kinds if installed_version(CLIS[k]) != CLIS[k].version]
    if missing:
        sys.exit(f"not installed: {', '.join(missing)}: run python3 tests/realcli/install.py")
    server = ModelServer().start()
    try:
        demo = orchestrate("demo", server, 3, 3)
        rows, ok = [], demo["status"] == "completed"
        rows.append(("demo agent", demo["status"], f"{demo['done']}/9", str(demo["runs"]), f"{demo['wall']:.1f} s",
                     "1.00x", "-"))
        for kind in kinds:
            server.reset()
            r = orchestrate(kind, server, 3, 3)
            ok = ok and r["status"] == "completed" and r["done"] == 9 and not server.stray
            rows.append((f"{kind} {CLIS[kind].version}", r["status"], f"{r['done']}/9", str(r["runs"]),
                         f"{r['wall']:.1f} s", f"{r['wall'] / demo['wall']:.2f}x", f"${r['cost']:.2f}"))
        table("9 tasks in 3 batches, start to completed (scripted model server on 127.0.0.1)", rows,
              ("agent", "status", "done", "runs", "wall time", "vs demo", "cost"))
        overhead = {}
        if "claude" in kinds:
            server.reset()
            o = orchestrate("claude", server, a.batches, 1)
            ok = ok and o["status"] == "completed"
            gaps_ms = sorted(g * 1000 for g in o["gaps"])
            overhead = {"p50": statistics.median(gaps_ms), "p90": gaps_ms[int(0.9 * (len(gaps_ms) - 1))],
                        "max": gaps_ms[-1], "n": len(gaps_ms)}
            table(f"specflowd's own time per batch with Claude Code ({a.batches} batches of one task)", [
                ("from one CLI's exit to the next one's start", f"p50 {overhead['p50']:.0f} ms, p90 "
                 f"{overhead['p90']:.0f} ms, max {overhead['max']:.0f} ms ({overhead['n']} gaps)"),
                ("target", "p50 <= 100 ms")], ("what", "value"))
            ok = ok and overhead["p50"] <= 100
    finally:
        server.stop()
    print(f"\nresult: {'PASS' if ok else 'FAIL'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
