#!/usr/bin/env python3
"""Supervision figures, run by hand: `python3 tests/bench/bench_agents.py [--runs 200] [--agents 16]`.

1. Overhead over N runs of an agent (sh) that exits at once: run -> the child's first byte (the
   child's clock, taken with `date`, which itself costs ~1.5 ms), first byte -> progress event in
   the event loop, child's exit (its clock) -> result in the event loop.
2. M fake `claude` agents streaming K events each at once (1 in 4 a tool call with its result):
   every log is checked for lost or reordered events, and the supervising process's CPU time per
   1,000 stream-json lines is reported, with how late a 5 ms timer in another thread of the
   supervising process fires meanwhile (GIL pressure). The fakes are CPU-bound Python and saturate
   a small machine; on 2 cores, one busy Python thread next to 16 CPU burners already makes such a
   timer ~40 ms late at p99, so read that row as an upper bound for real, mostly idle agents.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from specflowd.agents.result import AgentRequest, RunFinished, RunProgress  # noqa: E402
from specflowd.agents.supervisor import Supervisor  # noqa: E402
from specflowd.repo.project import Project  # noqa: E402

# Prints its clock with its first line, and again right before it exits.
INSTANT_AGENT = """#!/bin/sh
cat >/dev/null
echo "{\\"type\\":\\"system\\",\\"subtype\\":\\"init\\",\\"session_id\\":\\"s-$(date +%s%N)\\"}"
echo "{\\"type\\":\\"result\\",\\"subtype\\":\\"success\\",\\"is_error\\":false,\\"result\\":\\"$(date +%s%N)\\"}"
"""


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def row(name: str, values_ms: list[float]) -> str:
    return (f"{name:<44} {statistics.median(values_ms):8.2f} {pct(values_ms, 90):8.2f} "
            f"{pct(values_ms, 99):8.2f} {max(values_ms):8.2f}")


def overhead(work: Path, runs: int) -> list[str]:
    agent = work / "instant-agent.sh"
    agent.write_text(INSTANT_AGENT)
    events: queue.Queue[object] = queue.Queue()
    supervisor = Supervisor(events.put)
    spawn, deliver, finish = [], [], []
    for n in range(runs):
        request = AgentRequest(kind="claude", command=["sh", str(agent)], prompt="go", cwd=work)
        t0 = time.time_ns()
        supervisor.start(f"r{n}", request, Project(work, work / ".git").log_file("bench", n, "implement"))
        while True:
            event = events.get(timeout=10)
            now = time.time_ns()
            if isinstance(event, RunProgress) and event.session_id:
                first = int(event.session_id[2:])
                spawn.append((first - t0) / 1e6)
                deliver.append((now - first) / 1e6)
            if isinstance(event, RunFinished):
                assert event.result.ok, event.result
                finish.append((now - int(event.result.text)) / 1e6)
                break
    return [row("run -> child's first byte", spawn), row("child's first byte -> progress in loop", deliver),
            row("child's exit -> result in loop", finish),
            row("run -> result in loop (total)", [a + b for a, b in zip(spawn, finish, strict=True)])]


def streaming(work: Path, agents: int, per_agent: int) -> list[str]:
    fake_bin = work / "bin"
    fake_bin.mkdir()
    (fake_bin / "claude").write_text(
        f'#!/bin/sh\nexec "{sys.executable}" "{ROOT / "tests" / "fakes" / "fake_claude.py"}" "$@"\n')
    (fake_bin / "claude").chmod(0o755)
    scenario = work / "stream.json"
    scenario.write_text(json.dumps({"steps": [{"events": per_agent}]}))
    os.environ.update(PATH=f"{fake_bin}:{os.environ['PATH']}", FAKE_AGENT_SCENARIO=str(scenario), HOME=str(work))
    cwd = work / "wt"
    cwd.mkdir()
    subprocess.run(["git", "init", "-q", str(cwd)], check=True)

    events: queue.Queue[object] = queue.Queue()
    supervisor = Supervisor(events.put)
    lateness: list[float] = []
    stop = threading.Event()

    def loop_timer() -> None:
        while not stop.is_set():
            t = time.perf_counter()
            time.sleep(0.005)
            lateness.append((time.perf_counter() - t - 0.005) * 1000)

    timer = threading.Thread(target=loop_timer)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    timer.start()
    for n in range(agents):
        supervisor.start(f"s{n}", AgentRequest(kind="claude", prompt="stream", cwd=cwd),
                         Project(work, work / ".git").log_file("stream", n, "implement"))
    finished, progress = 0, 0
    while finished < agents:
        event = events.get(timeout=120)
        progress += isinstance(event, RunProgress)
        if isinstance(event, RunFinished):
            assert event.result.ok, event.result
            finished += 1
    stop.set()
    timer.join()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    total_lines = 0
    for n in range(agents):
        lines = Project(work, work / ".git").log_file("stream", n, "implement").read_text().splitlines()
        blocks = [json.loads(line)["message"]["content"][0] for line in lines if '"assistant"' in line]
        seqs = [block["input"]["seq"] if block["type"] == "tool_use" else ast.literal_eval(block["text"])["seq"]
                for block in blocks]
        assert seqs == list(range(per_agent)), f"log {n}: events lost or reordered"
        total_lines += len(lines)
    return [f"{agents} agents x {per_agent} agent events ({total_lines} stream-json lines, 1 in 4 a tool call "
            f"with its result): all in order in the logs",
            f"wall {wall:.2f} s, supervisor CPU {cpu:.2f} s = {cpu / total_lines * 1e6:.2f} ms per 1,000 lines",
            f"progress events posted: {progress} (one per read that changed something)",
            row("5 ms timer lateness while streaming (ms)", lateness)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--agents", type=int, default=16)
    parser.add_argument("--events", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print(f"{'overhead (ms) over ' + str(args.runs) + ' runs':<44} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8}")
        for line in overhead(work, args.runs):
            print(line)
        print()
        for line in streaming(work, args.agents, args.events):
            print(line)


if __name__ == "__main__":
    main()
