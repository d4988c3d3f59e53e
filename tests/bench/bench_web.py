"""The live page under load, run by hand:
`python3 tests/bench/bench_web.py [--clients 200] [--blocks 30] [--block 30] [--marks 300] [--idle 10]`.

One daemon serves a project; a client drops mark requests back to back (each answered before the
next, so marks land as fast as the daemon commits them) and times request -> answer. `specflowd web`
runs with `--clients` event streams open (read by one thread in a second process: they stand for
browsers on other machines). Blocks of marks alternate between the page closed (the web process and
the readers stopped with SIGSTOP, so they take no CPU) and open, so that both figures see the same
machine, which others share. Then marks with the page open all along give the web process's CPU
(its own and its git children's) per change; every stream must have been sent every commit of the
run, in order. Last, the page's CPU while nothing changes, streams still open. Prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench_daemon import Client, Daemon, env_for, make_project, mark_payload
from common import pct, rss_mb, settle, table


def cpu_with_children(pid: int) -> float:
    """User and system CPU seconds of a process and of its children it waited for (git)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def wakeups(pid: int) -> int:
    """Context switches of all the process's threads so far: a thread that never woke adds none."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        for line in (task / "status").read_text().splitlines():
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                total += int(line.split()[1])
    return total


class Web:
    def __init__(self, project: Path, env: dict[str, str], log: Path) -> None:
        self._log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "specflowd", "web", "-C", str(project), "--port", "0"],
                                     cwd=project, env=env, stdout=subprocess.PIPE, stderr=self._log, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "http://" not in line:
            raise SystemExit(f"specflowd web did not start: {line!r}, see {log}")
        self.url = line.split()[2]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self._log.close()


class Readers:
    """The event streams, in a process of their own (`clients` mode of this script)."""

    def __init__(self, url: str, n: int, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "clients", url, str(n)], env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        if self._line() != "ready":
            raise SystemExit("the readers did not connect")

    def _line(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def expect(self, commits: list[str]) -> dict:
        assert self.proc.stdin is not None
        self.proc.stdin.write("expect " + " ".join(commits) + "\n")
        self.proc.stdin.flush()
        return json.loads(self._line())

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("quit\n")
        self.proc.stdin.flush()
        self.proc.wait(30)


def clients_main(url: str, n: int) -> None:
    """Open `n` streams; say `ready` when each has its snapshot; on `expect SHA...` (every commit
    since they connected), wait until every stream has been sent as many and print what each saw. One thread reads every stream
    (a selector), so that the readers, which stand for browsers on other machines, cost this
    machine as little as can be."""
    import http.client
    import re
    import selectors
    from urllib.parse import urlsplit

    # Browsers are on other machines: here, on the daemon's, they may use only the CPU left idle.
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    parts = urlsplit(url)
    commit = re.compile(rb'^event: commit$.*?"entry":\{"commit":"([0-9a-f]{40})"', re.M | re.S)
    seen: list[list[str]] = [[] for _ in range(n)]
    received: list[list[float]] = [[] for _ in range(n)]
    ready = [False] * n
    cond = threading.Condition()
    selector = selectors.DefaultSelector()
    pending = [b""] * n

    def take(i: int, data: bytes) -> None:
        """The complete events in what stream `i` was sent so far."""
        *events, pending[i] = (pending[i] + data).split(b"\n\n")
        now = time.time()
        with cond:
            for event in events:
                if b"event: snapshot" in event:
                    ready[i] = True
                found = commit.search(event)
                if found:
                    seen[i].append(found.group(1).decode())
                    received[i].append(now)
            cond.notify_all()

    for i in range(n):
        conn = http.client.HTTPConnection(str(parts.hostname), int(parts.port or 80), timeout=30)
        conn.request("GET", "/events", headers={"Accept": "text/event-stream"})
        assert conn.sock is not None
        sock = conn.sock.dup()  # http.client lets go of its own once the headers are read
        response = conn.getresponse()
        assert response.status == 200
        take(i, response.fp.read1(1 << 20))  # what http.client read past the headers
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, i)

    def read() -> None:
        while True:
            for key, _ in selector.select():
                try:
                    data = key.fileobj.recv(1 << 20)  # type: ignore[union-attr]
                except BlockingIOError:
                    continue
                if not data:
                    selector.unregister(key.fileobj)
                    continue
                take(key.data, data)

    threading.Thread(target=read, daemon=True).start()
    with cond:
        cond.wait_for(lambda: all(ready), 120)
        print("ready" if all(ready) else f"only {sum(ready)} connected", flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            return
        wanted = words[1:]
        with cond:
            complete = cond.wait_for(lambda w=wanted: all(len(s) >= len(w) for s in seen), 120)
            exact = sum(1 for s in seen if s == wanted)
            # Fan-out: for each commit, from the first stream that had it to the last.
            spreads = [max(r[k] for r in received) - min(r[k] for r in received) for k in range(len(wanted))] \
                if complete else []
            print(json.dumps({"exact": exact, "complete": complete, "spread_ms": [s * 1000 for s in spreads]}),
                  flush=True)


def branch_tip(project: Path) -> str:
    return (project / ".git/refs/heads/helix-design-docs").read_text().strip()


def commits_since(project: Path, env: dict[str, str], start: str) -> list[str]:
    out = subprocess.run(["git", "rev-list", "--reverse", f"{start}..helix-design-docs"], cwd=project, env=env,
                         capture_output=True, text=True, check=True).stdout
    return out.split()


def pause(procs: list[subprocess.Popen], stop: bool) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGSTOP if stop else signal.SIGCONT)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--blocks", type=int, default=30, help="blocks of marks each way, alternating")
    ap.add_argument("--block", type=int, default=30, help="marks per block")
    ap.add_argument("--marks", type=int, default=300, help="marks for the CPU per change, page open")
    ap.add_argument("--idle", type=float, default=10.0, help="seconds of quiet to measure the open page's CPU")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "home").mkdir()
        env = env_for(base / "home")
        project = make_project(base, env, "project")
        daemon = Daemon([project], env, base / "daemon.log")
        client = Client(project)
        closed: list[float] = []
        opened: list[float] = []
        i = 0

        def marks(n: int, into: list[float]) -> None:
            nonlocal i
            for _ in range(n):
                into.append(client.roundtrip(f"m{i}", mark_payload(i)))
                i += 1

        web = readers = None
        try:
            marks(5, [])  # warm up the daemon and the page cache
            web = Web(project, env, base / "web.log")
            readers = Readers(web.url, args.clients, env)
            settle(web.proc.pid)
            start = branch_tip(project)
            # Page closed and page open, in alternating blocks, so that both see the same machine
            # (others share it). Closed: the web process and the readers are stopped (SIGSTOP), so
            # they take no CPU; when they go on, the page catches up with what it missed.
            for _ in range(args.blocks):
                pause([web.proc, readers.proc], stop=True)
                marks(args.block, closed)
                pause([web.proc, readers.proc], stop=False)
                readers.expect(commits_since(project, env, start))  # caught up: an open page, not a backlog
                marks(args.block, opened)
            settle(web.proc.pid)
            # CPU per change, the page open all along.
            cpu0, rcpu0, dcpu0 = (cpu_with_children(p.pid) for p in (web.proc, readers.proc, daemon.proc))
            n0 = i
            marks(args.marks, [])
            made = commits_since(project, env, start)
            result = readers.expect(made)  # every commit of both parts, in order
            web_cpu = cpu_with_children(web.proc.pid) - cpu0
            reader_cpu = cpu_with_children(readers.proc.pid) - rcpu0
            daemon_cpu = cpu_with_children(daemon.proc.pid) - dcpu0
            changes = i - n0
            rss = rss_mb(web.proc.pid)
            settle(web.proc.pid)
            c0, w0 = cpu_with_children(web.proc.pid), wakeups(web.proc.pid)
            time.sleep(args.idle)  # the measuring window: CPU used while nothing changes
            idle_cpu = cpu_with_children(web.proc.pid) - c0
            idle_wakeups = wakeups(web.proc.pid) - w0
        finally:
            if readers is not None:
                readers.proc.send_signal(signal.SIGCONT)
                readers.stop()
            if web is not None:
                web.proc.send_signal(signal.SIGCONT)
                web.stop()
            client.close()
            daemon.stop()
    p99_closed, p99_open = pct(closed, 99), pct(opened, 99)
    all_seen = result["complete"] and result["exact"] == args.clients
    spreads = result["spread_ms"]
    rows = [
        ("mark request -> answer, page closed", f"p50 {pct(closed, 50):.1f} ms, p99 {p99_closed:.1f} ms",
         f"{len(closed)} marks"),
        (f"mark request -> answer, page open ({args.clients} streams)",
         f"p50 {pct(opened, 50):.1f} ms, p99 {p99_open:.1f} ms", f"{len(opened)} marks"),
        ("p99 open / closed", f"{p99_open / p99_closed:.2f}x", "target <= 1.20x"),
        ("every stream sent every change, in order", "yes" if all_seen else "NO",
         f"{result['exact']}/{args.clients} streams x {len(made)} commits"),
        ("one change reaching all streams (first -> last)",
         f"p50 {pct(spreads, 50):.1f} ms, p99 {pct(spreads, 99):.1f} ms" if spreads else "-",
         "as the readers saw it, themselves on idle CPU only"),
        ("web process CPU per change (with its git children)", f"{web_cpu / changes * 1000:.2f} ms",
         f"{changes} changes to {args.clients} streams"),
        ("readers' CPU per change / daemon's per mark", f"{reader_cpu / changes * 1000:.2f} ms / "
         f"{daemon_cpu / changes * 1000:.2f} ms", "the readers stand for browsers elsewhere"),
        (f"web process over {args.idle:.0f} s with nothing changing",
         f"{idle_cpu * 1000:.0f} ms CPU, {idle_wakeups} thread wake-ups", f"{args.clients} streams open"),
        ("web process memory with the streams open", f"{rss:.1f} MB", ""),
    ]
    table(f"specflowd web under load ({args.blocks} x {args.block} marks each way, alternating)", rows,
          ("figure", "measured", "note"))
    if not all_seen:
        raise SystemExit(1)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "clients":
        clients_main(sys.argv[2], int(sys.argv[3]))
    else:
        main()
