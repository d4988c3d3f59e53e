"""Issue 4's load figure through the real daemon: 16 agents (the fake Claude Code) each streaming
10,000 stream-json events as fast as they can, while a client drops refused requests into the
inbox and times each answer. Reports the answer latency while they all stream and afterwards
(marks and results arriving), the daemon's CPU per 1,000 events, and checks every saved log holds
its events complete and in order.

Run: python3 tests/bench/bench_stream.py [--agents 16] [--events 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import ENV, ROOT, cpu_s, make_project, ms, pct, table, wait_until

from specflowd.agents.supervisor import THREAD_NAME

FAKES = ROOT / "tests" / "fakes"
SEQ = re.compile(r"'seq': (\d+)|\"seq\": (\d+)")


def build(base: Path, agents: int) -> Path:
    def configure(config) -> None:
        config.orchestration.skip_analyze = True
        config.pool.max_agents = agents
        config.agent.env_pass = ["FAKE_AGENT_SCENARIO"]  # the fake reads its scenario from there

    return make_project(base, "project", {f"s{i}": "## Work\n- [ ] T001 stream\n" for i in range(agents)},
                        configure)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents", type=int, default=16)
    ap.add_argument("--events", type=int, default=10_000)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        project = build(base, a.agents)
        bin_dir = base / "bin"
        bin_dir.mkdir()
        (bin_dir / "claude").write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKES / "fake_claude.py"}" "$@"\n')
        (bin_dir / "claude").chmod(0o755)
        gate = base / "gate"
        streamed = base / "first-stream-done"  # written by the first agent through its events
        scenario = base / "scenario.json"
        scenario.write_text(json.dumps({"steps": [{"wait_for_file": str(gate)}, {"events": a.events},
                                                  {"record": str(streamed)}, {"mark": "T001"}],
                                        "outcome": "success", "cost": 0.01}))
        env = dict(ENV, PATH=f"{bin_dir}{os.pathsep}{ENV['PATH']}", PYTHONPATH=str(ROOT),
                   FAKE_AGENT_SCENARIO=str(scenario), HOME=str(base))
        log = open(base / "daemon.log", "wb")  # noqa: SIM115
        daemon = subprocess.Popen([sys.executable, "-m", "specflowd", "run"], cwd=project, env=env, stdout=log,
                                  stderr=log)
        try:
            for i in range(a.agents):
                r = subprocess.run([sys.executable, "-m", "specflowd", "start", f"s{i}", "--wait", "60"],
                                   cwd=project, env=env, capture_output=True, text=True)
                assert r.returncode == 0, r.stderr
            logs = project / ".specflow" / "logs"

            def agents_waiting() -> int:
                return sum(1 for _ in logs.glob("*/*-implement.jsonl"))

            wait_until(lambda: agents_waiting() >= a.agents, 120)
            latencies: list[float] = []  # while all agents stream
            after: list[float] = []  # once one has finished: marks, results, merges meanwhile
            stop = threading.Event()

            def client() -> None:
                # Latency as the daemon sees it: from the rename into the inbox to the answer file's
                # own timestamp, so that the client's share of two busy cores does not count.
                responses = project / ".specflow" / "responses"
                n = 0
                while not stop.is_set():
                    rid = f"probe-{n}"
                    tmp_file = project / ".specflow" / "requests" / "tmp" / f"{rid}.json"
                    tmp_file.write_text('{"action": "no-such-action"}')
                    sent = time.time_ns()
                    streaming = not streamed.exists()
                    os.rename(tmp_file, project / ".specflow" / "requests" / f"{rid}.json")
                    answer = responses / f"{rid}.json"
                    if wait_until(answer.exists, 10, every=0.005):
                        (latencies if streaming else after).append((answer.stat().st_mtime_ns - sent) / 1e9)
                    n += 1
                    time.sleep(0.01)

            cpu0 = cpu_s(daemon.pid)
            follow0 = cpu_s(daemon.pid, THREAD_NAME)
            began = time.monotonic()
            gate.write_text("go\n")
            probe = threading.Thread(target=client)
            probe.start()

            def finished() -> int:
                done = 0
                for path in (project / ".specflow" / "workflows").glob("*.json"):
                    state = json.loads(path.read_text())
                    done += any(r["ended_at"] for r in state["runs"])
                return done

            wait_until(lambda: finished() >= a.agents, 300, every=0.1)
            streamed_s = time.monotonic() - began
            stop.set()
            probe.join()
            cpu = cpu_s(daemon.pid) - cpu0
            follow = cpu_s(daemon.pid, THREAD_NAME) - follow0
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=20)
            log.close()
        ordered = complete = 0
        for path in logs.glob("*/1-implement.jsonl"):
            # The fake numbers its events: text blocks carry {'seq': n}, tool calls {"seq": n}.
            seqs = [int(m.group(1) or m.group(2)) for m in SEQ.finditer(path.read_text())]
            complete += len(set(seqs)) == a.events
            ordered += seqs == sorted(seqs)
        total = a.agents * a.events
        rows = [
            ("agents x events", f"{a.agents} x {a.events}"),
            ("streaming time", f"{streamed_s:.1f} s"),
            ("logs complete / in order", f"{complete} / {ordered} of {a.agents}"),
            ("inbox answers while all stream", str(len(latencies))),
            ("answer latency p50 / p99, while all stream",
             f"{ms(pct(latencies, 50))} / {ms(pct(latencies, 99))}" if latencies else "-"),
            ("inbox answers after, until every run ended", str(len(after))),
            ("answer latency p50 / p99, after (marks, results)",
             f"{ms(pct(after, 50))} / {ms(pct(after, 99))}" if after else "-"),
            ("daemon CPU per 1,000 events: following the agents", f"{follow / total * 1000 * 1000:.1f} ms"),
            ("daemon CPU per 1,000 events: all (with answers, marks, results)", f"{cpu / total * 1000 * 1000:.1f} ms"),
        ]
        table("16 agents streaming through the daemon", rows, ("what", "value"))


if __name__ == "__main__":
    main()
