"""Many machines (SPEC §10), run by hand: `python3 tests/bench/bench_fleet.py [--only NAME ...]`.

All on this one 2-core machine: a bare repository stands for the shared remote, each "host" is a
clone with a `specflowd run` of its own (`[remote] host = h1, h2, ...`), and the built-in demo agent
does the work, waiting SPECFLOWD_DEMO_TASK_S per task as a real agent waits on its model. So the
hosts share two cores: a speed-up here is a floor of what three real machines give.

- fleet: 12 orchestrations (6 tasks in 2 batches each) started on any of 3 hosts (`max_agents = 2`
  each) vs the same 12 on one host with `max_agents = 2`; every task done once, no orchestration's
  agents on two hosts at once (the feed's hosts, and the agents' processes sampled). The agent
  waits `--task-s` (5 s) per task: with 1 s, the demo agent's own CPU per task (git, `specflowd
  mark`: about a second of CPU) saturates the 2 cores with 6 agents, and three hosts on one machine
  are no faster than one.
- loss: one host SIGKILLed with its agents in the middle of a fleet run of 4 orchestrations (it ran
  2; the others have a slot free): the time from the kill to each `taken-over` seen on the remote
  (the goal: <= lease_s + sync_interval_s).
- partition: the remote moved away for 30 s (longer than lease_s) while three hosts run: all
  complete, no task lost or done twice, and no host writes for an orchestration after its lease-lost.
- contention: 3 hosts marking neighbouring tasks of one task list as fast as their daemons take
  mark requests: marks/s on the remote, pushes, refusals, rebuilds.
- claim: a `start` request on one host -> `claimed` on the remote, with `sync_interval_s = 5`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from common import ROOT, pct, table, wait_until

from tests.daemon.conftest import DaemonProcess
from tests.e2e.fleet.conftest import (
    Fleet,
    agent_pids,
    done_marks,
    ended,
    events_of,
    make_fleet,
    on_two_hosts,
    start,
)

LEASE_S, SYNC_S = 6.0, 0.5
ENDS = ("completed", "failed", "cancelled")


def isolate(base: Path) -> None:
    """As the test suite does: a home of its own, and a `specflowd` on PATH that runs this checkout."""
    home, bin_dir = base / "home", base / "bin"
    home.mkdir()
    bin_dir.mkdir()
    shim = bin_dir / "specflowd"
    shim.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(ROOT)!r})\n"
                    "from specflowd.cli import main\nsys.exit(main())\n")
    shim.chmod(0o755)
    os.environ.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), GIT_CONFIG_NOSYSTEM="1",
                      PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", PYTHONPATH=str(ROOT))
    for var in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        os.environ.pop(var, None)


class Hosts:
    """A daemon per clone; all stopped (killed if need be) at the end."""

    def __init__(self, fleet: Fleet, base: Path, task_s: float) -> None:
        self.fleet = fleet
        env = {"SPECFLOWD_DEMO_TASK_S": str(task_s)}
        self.daemons = {h: DaemonProcess(c, base / f"{h}.log", env=env).wait_ready(60)
                        for h, c in fleet.clones.items()}

    def stats(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for clone in self.fleet.clones.values():
            with_stats = json.loads((clone / ".specflow" / "fleet.json").read_text())
            total.update(with_stats.get("stats", {}))
        return dict(total)

    def close(self) -> None:
        for d in self.daemons.values():
            d.stop(signal.SIGKILL)


def wait(predicate: Any, timeout: float, what: str, every: float = 0.1) -> None:
    if not wait_until(predicate, timeout, every):
        raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")


def spec_names(count: int) -> list[str]:
    return [f"spec{n}" for n in range(1, count + 1)]


def expected_tasks(specs: int, per: int) -> Counter[str]:
    return Counter({f"T{s * 100 + t}": 1 for s in range(1, specs + 1) for t in range(1, per + 1)})


def run_orchestrations(base: Path, hosts: int, *, specs: int = 12, task_s: float = 1.0,
                       during: Any = None) -> dict[str, Any]:
    """Start `specs` orchestrations round-robin on the hosts; wait until all end on the remote,
    sampling the agents' processes meanwhile (and calling `during(fleet, hosts, oids)` each time:
    True when the remote cannot be read just now)."""
    base.mkdir()
    fleet = make_fleet(base, hosts=hosts, specs=specs, task_count=6, max_agents=2, lease_s=LEASE_S, sync_s=SYNC_S)
    running = Hosts(fleet, base, task_s)
    try:
        t0 = time.monotonic()
        oids = [start(fleet[f"h{1 + n % hosts}"], spec) for n, spec in enumerate(spec_names(specs))]
        twice: list[Any] = []

        def check() -> bool:
            twice.extend(on_two_hosts(fleet, oids))
            if during is not None and during(fleet, running, oids):
                return False
            return ended(fleet, oids)

        wait(check, 600, "every orchestration to end", every=0.05)
        total = time.monotonic() - t0
        feed = fleet.feed()
        outcomes = Counter(e["Event"] for e in feed if e.get("Event") in ENDS)
        return {"fleet": fleet, "hosts": running, "oids": oids, "total": total, "twice": twice,
                "outcomes": outcomes, "once": done_marks(fleet) == expected_tasks(specs, 6),
                "stats": running.stats()}
    finally:
        running.close()


def bench_fleet(base: Path, task_s: float) -> list[tuple[str, ...]]:
    three = run_orchestrations(base / "three", 3, task_s=task_s)
    fleet = three["fleet"]
    shown = json.loads(subprocess_out(["specflowd", "fleet", "--hosts", "--json"], fleet["h1"]))[0]["hosts"]
    one = run_orchestrations(base / "one", 1, task_s=task_s)
    speedup = one["total"] / three["total"]
    return [
        (f"12 orchestrations, 3 hosts x 2 agents, agent {task_s:g} s per task", f"{three['total']:.1f} s; {dict(three['outcomes'])}; "
         f"each task once: {three['once']}; agents on two hosts at once: {len(three['twice'])}; "
         f"`fleet` shows {sorted(h['host'] for h in shown)}", "all complete, each task once"),
        ("the same on 1 host x 2 agents", f"{one['total']:.1f} s; {dict(one['outcomes'])}; each task once: {one['once']}",
         ""),
        ("speed-up of 3 hosts", f"{speedup:.2f}x", ">= 2.5x"),
    ]


def subprocess_out(argv: list[str], cwd: Path) -> str:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=True).stdout


def bench_loss(base: Path) -> list[tuple[str, ...]]:
    killed: dict[str, Any] = {}
    seen: dict[str, float] = {}

    def during(fleet: Fleet, running: Hosts, oids: list[str]) -> bool:
        if not killed:
            # The first host with two agents running (its slots full): kill it and its agents at once.
            for host, clone in fleet.clones.items():
                pids = [p for oid in oids for p in agent_pids(clone, oid)]
                if len(pids) >= 2:
                    held = [oid for oid in oids if agent_pids(clone, oid)]
                    running.daemons[host].kill_group()
                    for pid in pids:
                        with contextlib.suppress(ProcessLookupError):
                            os.killpg(pid, signal.SIGKILL)
                    killed.update(host=host, at=time.monotonic(), held=held)
                    return False
            return False
        for oid in killed["held"]:
            if oid not in seen and any(e.get("Event") == "taken-over" for e in events_of(fleet, oid)):
                seen[oid] = time.monotonic() - killed["at"]
        return False

    # 4 orchestrations on 3 hosts of 2 slots: the host killed ran 2, the others have a slot free each,
    # so the figure is the lease's lapse and its detection, not a wait for a slot.
    result = run_orchestrations(base / "loss", 3, specs=4, during=during)
    if not killed:
        return [("host loss", "no host had two agents running at once: nothing killed", "")]
    times = [seen.get(oid) for oid in killed["held"]]
    shown = ", ".join(f"{t:.1f} s" if t is not None else "not seen" for t in times)
    return [("host SIGKILLed with its agents (lease_s 6, sync 0.5 s)",
             f"{killed['host']} held {len(killed['held'])}: kill -> taken-over {shown}; "
             f"{dict(result['outcomes'])}; each task once: {result['once']}", f"<= {LEASE_S + SYNC_S:g} s each")]


def bench_partition(base: Path, seconds: float) -> list[tuple[str, ...]]:
    state: dict[str, Any] = {}

    def during(fleet: Fleet, running: Hosts, oids: list[str]) -> bool:
        if "cut" not in state and any(e.get("Event") == "batch-started" for e in fleet.feed()):
            away = fleet.remote.with_name("remote.away")
            fleet.remote.rename(away)
            state.update(cut=time.monotonic(), away=away)
        elif "cut" in state and "back" not in state and time.monotonic() - state["cut"] >= seconds:
            state["away"].rename(fleet.remote)
            state["back"] = time.monotonic()
        return "cut" in state and "back" not in state

    result = run_orchestrations(base / "partition", 3, specs=6, during=during)
    fleet: Fleet = result["fleet"]
    feed = fleet.feed()
    after_loss = 0
    for oid in result["oids"]:
        writing: dict[str, bool] = {}
        for e in (e for e in feed if e.get("Orchestration") == oid):
            host, event = e.get("Host"), e.get("Event")
            if event == "lease-lost":
                writing[host] = False
            elif event in ("claimed", "taken-over"):
                writing[host] = True
            elif host is not None and writing.get(host) is False:
                after_loss += 1
    lost = sum(1 for e in feed if e.get("Event") == "lease-lost")
    taken = sum(1 for e in feed if e.get("Event") == "taken-over")
    return [(f"remote away {seconds:.0f} s (lease_s 6), 6 orchestrations on 3 hosts",
             f"{dict(result['outcomes'])}; each task once: {result['once']}; lease-lost {lost}, taken-over {taken}; "
             f"writes after a host's lease-lost: {after_loss}", "all complete; 0 writes after lease-lost")]


def bench_contention(base: Path, per_host: int) -> list[tuple[str, ...]]:
    hosts = 3
    count = per_host * hosts
    (base / "contention").mkdir()
    fleet = make_fleet(base / "contention", hosts=hosts, specs=1, task_count=count, lease_s=LEASE_S, sync_s=SYNC_S)
    ids = [f"T{100 + n}" for n in range(1, count + 1)]
    running = Hosts(fleet, base / "contention", 0)
    try:
        t0 = time.monotonic()
        for n, task in enumerate(ids):  # dropped at once, as fast as files are written; neighbours on other hosts
            host = f"h{1 + n % hosts}"
            running.daemons[host].drop({"action": "mark", "tasks": [task], "status": "done", "spec": "spec1"},
                                       f"mark-{task}.json")
        progress = "helix-design-docs:specs/spec1/progress.md"
        wait(lambda: subprocess_out(["git", "show", progress], fleet.remote).count("- [x]") == count, 300,
             "every mark on the remote", every=0.02)
        total = time.monotonic() - t0
        # The counts of the last round: each host's fleet.json written again after every mark landed.
        views = [c / ".specflow" / "fleet.json" for c in fleet.clones.values()]
        landed = time.time_ns()
        wait(lambda: all(v.exists() and v.stat().st_mtime_ns > landed for v in views), 30, "fleet.json after the marks")
        stats = running.stats()
    finally:
        running.close()
    once = done_marks(fleet) == Counter(dict.fromkeys(ids, 1))
    merges = subprocess_out(["git", "rev-list", "--merges", "helix-design-docs"], fleet.remote).strip()
    refused = sum(v for k, v in stats.items() if k.startswith("refused_"))
    return [(f"{count} marks, 3 hosts at once (neighbouring lines)",
             f"{count / total:.1f} marks/s on the remote ({total:.1f} s); each once: {once}; merge commits: "
             f"{len(merges.split())}; pushes {stats.get('pushes', 0)}, refused {refused} "
             f"({', '.join(f'{k[8:]} {v}' for k, v in sorted(stats.items()) if k.startswith('refused_'))}), "
             f"rebuilds {stats.get('rebuilds', 0)}, commits pushed {stats.get('commits_pushed', 0)}",
             "none lost or twice")]


def bench_claim(base: Path, samples: int) -> list[tuple[str, ...]]:
    (base / "claim").mkdir()
    fleet = make_fleet(base / "claim", hosts=3, specs=samples, task_count=2, lease_s=LEASE_S, sync_s=5)
    running = Hosts(fleet, base / "claim", 0)
    latencies = []
    try:
        for n, spec in enumerate(spec_names(samples)):
            t0 = time.monotonic()
            oid = start(fleet[f"h{1 + n % 3}"], spec)
            wait(lambda o=oid: any(e.get("Event") == "claimed" for e in events_of(fleet, o)), 60, "the claim",
                 every=0.01)
            latencies.append(time.monotonic() - t0)
            wait(lambda o=oid: ended(fleet, [o]), 120, "the end")  # the next one finds free slots
    finally:
        running.close()
    return [(f"start request -> claimed on the remote, sync_interval_s 5, {samples} starts",
             f"p50 {statistics.median(latencies) * 1000:.0f} ms, p99 {pct(latencies, 99) * 1000:.0f} ms "
             f"(max {max(latencies) * 1000:.0f} ms)", "")]


def main() -> None:
    parts = ("fleet", "loss", "partition", "contention", "claim")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="*", choices=parts, default=list(parts))
    ap.add_argument("--task-s", type=float, default=5, help="the agent's time per task in the fleet run")
    ap.add_argument("--partition-s", type=float, default=30)
    ap.add_argument("--marks-per-host", type=int, default=40)
    ap.add_argument("--claims", type=int, default=20)
    args = ap.parse_args()
    rows: list[tuple[str, ...]] = []
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        base = Path(tmp)
        isolate(base)
        for part in args.only:
            (base / part).mkdir()
            if part == "fleet":
                rows += bench_fleet(base / part, args.task_s)
            elif part == "loss":
                rows += bench_loss(base / part)
            elif part == "partition":
                rows += bench_partition(base / part, args.partition_s)
            elif part == "contention":
                rows += bench_contention(base / part, args.marks_per_host)
            elif part == "claim":
                rows += bench_claim(base / part, args.claims)
            print(f"{part}: done", file=sys.stderr, flush=True)
    table("many machines (bench_fleet.py)", rows, ("figure", "measured", "goal"))


if __name__ == "__main__":
    main()
