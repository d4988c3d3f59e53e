"""Daemon figures, run by hand: `python3 tests/bench/bench_daemon.py [--n 1000] [--idle 60]`.

Request-to-answer latency (inotify daemon vs a PollingObserver daemon, same client), a burst of 5,000
requests, idle CPU with 10 projects, and resident memory over 10,000 answered requests. Prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import ROOT, cpu_s, pct, rss_mb, settle, wait_until

TASKS = "# Tasks\n\n## Setup\n\n- [ ] T001 One\n- [ ] T002 Two\n- [ ] T003 Three\n"


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "NOTIFY_", "WATCHDOG_"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), GIT_CONFIG_NOSYSTEM="1",
               GIT_AUTHOR_NAME="Bench", GIT_AUTHOR_EMAIL="bench@example.com", GIT_COMMITTER_NAME="Bench",
               GIT_COMMITTER_EMAIL="bench@example.com", PYTHONPATH=str(ROOT))
    return env


def sh(env: dict[str, str], cwd: Path, *argv: str) -> None:
    subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True)


def make_project(base: Path, env: dict[str, str], name: str) -> Path:
    path = base / name
    path.mkdir()
    sh(env, path, "git", "init", "-q", "-b", "main")
    sh(env, path, "git", "commit", "-q", "--allow-empty", "-m", "initial")
    sh(env, path, sys.executable, "-m", "specflowd", "init")
    sh(env, path, sys.executable, "-m", "specflowd", "new", "demo")
    docs = path / ".specflow/design-docs"
    (docs / "specs/demo/progress.md").write_text(TASKS)
    sh(env, docs, "git", "commit", "-qam", "tasks")
    return path


class Daemon:
    """`specflowd run` in a subprocess; ready when it says READY=1 on a real notify socket."""

    def __init__(self, projects: list[Path], env: dict[str, str], log: Path, observer: str = "inotify") -> None:
        sock_path = log.with_suffix(".sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(sock_path))
        args = [a for p in projects for a in ("--project", str(p))]
        self.log = log
        with open(log, "wb") as f:
            self.proc = subprocess.Popen([sys.executable, *os.environ.get("BENCH_PYFLAGS", "").split(), "-m", "specflowd", "run", "--observer", observer, *args],
                                         cwd=projects[0], env={**env, "NOTIFY_SOCKET": str(sock_path)},
                                         stdout=f, stderr=f)
        self.sock.settimeout(60)
        while self.sock.recv(4096) != b"READY=1":
            pass

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.sock.close()


class Client:
    """Drops requests as clients do and waits for each answer through an inotify watch on responses/."""

    def __init__(self, project: Path) -> None:
        from watchdog.events import FileCreatedEvent, FileMovedEvent, FileSystemEventHandler
        from watchdog.observers.inotify import InotifyObserver

        self.requests = project / ".specflow/requests"
        self.responses = project / ".specflow/responses"
        self.arrived: set[str] = set()
        self.cond = threading.Condition()
        client = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event) -> None:  # noqa: ANN001
                if event.event_type in ("moved", "created"):
                    path = event.dest_path if event.event_type == "moved" else event.src_path
                    with client.cond:
                        client.arrived.add(os.path.basename(os.fsdecode(path)))
                        client.cond.notify_all()

        self.observer = InotifyObserver()
        self.observer.schedule(Handler(), str(self.responses), event_filter=[FileCreatedEvent, FileMovedEvent])
        self.observer.start()

    def drop(self, rid: str, payload: dict) -> None:
        tmp = self.requests / "tmp" / f"{rid}.json"
        tmp.write_text(json.dumps(payload))
        os.rename(tmp, self.requests / f"{rid}.json")

    def wait(self, rid: str, timeout: float = 30) -> None:
        name = f"{rid}.json"
        with self.cond:
            if not self.cond.wait_for(lambda: name in self.arrived, timeout):
                raise SystemExit(f"no answer to {rid} within {timeout}s")

    def roundtrip(self, rid: str, payload: dict) -> float:
        t = time.perf_counter()
        self.drop(rid, payload)
        self.wait(rid)
        return (time.perf_counter() - t) * 1000

    def close(self) -> None:
        self.observer.stop()
        self.observer.join()


def mark_payload(i: int) -> dict:
    return {"action": "mark", "task": "T001", "status": "done" if i % 2 == 0 else "pending"}


REFUSED = {"action": "mark", "task": "T999", "status": "done"}  # unknown_task: validated, no commit
INVALID = {"action": "fly"}


def latency(base: Path, env: dict[str, str], observer: str, n: int, tag: str) -> dict[str, list[float]]:
    project = make_project(base, env, f"lat-{tag}")
    d = Daemon([project], env, base / f"lat-{tag}.log", observer)
    client = Client(project)
    try:
        out = {"mark": [client.roundtrip(f"m{i}", mark_payload(i)) for i in range(n)],
               "refused": [client.roundtrip(f"x{i}", INVALID) for i in range(n)]}
    finally:
        client.close()
        d.stop()
    return out


def floors(base: Path, env: dict[str, str], n: int) -> tuple[list[float], list[float]]:
    """What the daemon cannot go below on this machine, now: the client seeing a rename through its own
    watch (no daemon), and `marks.mark` called in-process (the same commit, no inbox)."""
    sys.path.insert(0, str(ROOT))
    from specflowd.core.tasklist import Mark
    from specflowd.core.vocab import TaskStatus
    from specflowd.repo.designdocs import DesignDocs
    from specflowd.repo.marks import mark
    from specflowd.repo.project import locate

    project = make_project(base, env, "floor")
    client = Client(project)
    seen = []
    try:
        for i in range(n):
            t = time.perf_counter()
            tmp = client.requests / "tmp" / f"f{i}.json"
            tmp.write_text("{}")
            os.rename(tmp, client.responses / f"f{i}.json")
            client.wait(f"f{i}")
            seen.append((time.perf_counter() - t) * 1000)
    finally:
        client.close()
    os.environ.update(env)  # the commit's author, as the daemon has it
    docs = DesignDocs(locate(project))
    commits = []
    for i in range(n):
        t = time.perf_counter()
        mark(docs, "demo", [Mark("T001", TaskStatus.DONE if i % 2 == 0 else TaskStatus.PENDING)])
        commits.append((time.perf_counter() - t) * 1000)
    return seen, commits


def burst(base: Path, env: dict[str, str], n: int) -> tuple[float, int, int]:
    project = make_project(base, env, "burst")
    d = Daemon([project], env, base / "burst.log")
    requests = project / ".specflow/requests"
    try:
        for i in range(n):  # written first, renamed in all at once below
            payload = mark_payload(i) if i % 10 == 0 else (REFUSED if i % 3 else INVALID)
            (requests / "tmp" / f"b{i}.json").write_text(json.dumps(payload) if i % 7 else "{broken")
        t = time.perf_counter()
        for i in range(n):
            os.rename(requests / "tmp" / f"b{i}.json", requests / f"b{i}.json")
        filed = lambda: len(os.listdir(requests / "done")) + len(os.listdir(requests / "failed"))  # noqa: E731
        wait_until(lambda: filed() >= n, 600)
        elapsed = time.perf_counter() - t
    finally:
        d.stop()
    answers = len(list((project / ".specflow/responses").glob("b*.json")))
    log = d.log.read_text()
    answered_lines = sum(1 for line in log.splitlines() if line.startswith("INFO specflowd.daemon: request b"))
    return elapsed, answers, answered_lines


def idle_cpu(base: Path, env: dict[str, str], seconds: float) -> float:
    projects = [make_project(base, env, f"idle{i}") for i in range(10)]
    d = Daemon(projects, env, base / "idle.log")
    try:
        settle(d.proc.pid)
        before = cpu_s(d.proc.pid)
        time.sleep(seconds)
        return cpu_s(d.proc.pid) - before
    finally:
        d.stop()


def memory(base: Path, env: dict[str, str], total: int, step: int) -> list[tuple[int, float]]:
    project = make_project(base, env, "mem")
    d = Daemon([project], env, base / "mem.log")
    client = Client(project)
    samples = [(0, rss_mb(d.proc.pid))]
    try:
        for start in range(0, total, step):
            for i in range(start, start + step):
                client.drop(f"r{i}", mark_payload(i) if i % 20 == 0 else REFUSED)
            client.wait(f"r{start + step - 1}", 300)
            samples.append((start + step, rss_mb(d.proc.pid)))
    finally:
        client.close()
        d.stop()
    return samples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=1000, help="requests per latency series (inotify)")
    ap.add_argument("--n-polling", type=int, default=20, help="requests per latency series (polling)")
    ap.add_argument("--burst", type=int, default=5000)
    ap.add_argument("--idle", type=float, default=60.0, help="seconds of idle measurement")
    ap.add_argument("--memory", type=int, default=10000)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-daemon-"))
    home = base / "home"
    home.mkdir()
    env = env_for(home)
    rows: list[tuple[str, str, str]] = []
    try:
        ino = latency(base, env, "inotify", args.n, "inotify")
        poll = latency(base, env, "polling", args.n_polling, "polling")
        for kind, target in (("mark", "p50 <= 15, p99 <= 50"), ("refused", "p50 <= 3")):
            a, b = ino[kind], poll[kind]
            rows.append((f"{kind} request->answer, inotify (n={len(a)})",
                         f"p50 {pct(a, 50):.2f} ms, p99 {pct(a, 99):.2f} ms, max {max(a):.1f} ms", target))
            rows.append((f"{kind} request->answer, PollingObserver (n={len(b)})",
                         f"p50 {pct(b, 50):.1f} ms, p99 {pct(b, 99):.1f} ms",
                         f"inotify {statistics.median(b) / statistics.median(a):.0f}x faster (p50 ratio)"))
        seen, commits = floors(base, env, min(args.n, 300))
        rows.append((f"floor: client sees a rename, no daemon (n={len(seen)})",
                     f"p50 {pct(seen, 50):.2f} ms, p99 {pct(seen, 99):.2f} ms", "part of every figure above"))
        rows.append((f"floor: marks.mark in-process, no daemon (n={len(commits)})",
                     f"p50 {pct(commits, 50):.2f} ms, p99 {pct(commits, 99):.2f} ms", "part of every mark above"))
        elapsed, answers, lines = burst(base, env, args.burst)
        rows.append((f"burst of {args.burst} (10% marks, rest refused/invalid)",
                     f"{elapsed:.1f} s, {args.burst / elapsed:.0f} req/s; {answers} answers, {lines} answer log "
                     f"lines", "every one answered exactly once"))
        cpu = idle_cpu(base, env, args.idle)
        rows.append((f"idle CPU, 10 projects, {args.idle:.0f} s", f"{cpu:.3f} s", "<= 0.05 s"))
        samples = memory(base, env, args.memory, max(1, args.memory // 5))
        rows.append((f"RSS over {args.memory} answered requests",
                     ", ".join(f"{n}: {mb:.1f} MB" for n, mb in samples), "<= 60 MB, no growth"))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    width = max(len(r[0]) for r in rows)
    print(f"{'measure'.ljust(width)} | result | target")
    for name, result, target in rows:
        print(f"{name.ljust(width)} | {result} | {target}")


if __name__ == "__main__":
    main()
