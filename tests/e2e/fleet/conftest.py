"""A fleet on one machine (SPEC §10): a bare repository as the shared remote, and clones of it, each
set up with `specflowd init --remote origin` and served by a daemon of its own (`h1`, `h2`, ...),
with the built-in demo agent and short leases, so that the fleet's rules play out in seconds."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import configure, git, run_cli, wait_for
from tests.daemon.conftest import DaemonProcess

DEMO_AGENT = f"{sys.executable} -m specflowd.agents.demo"
# Fast enough for tests, slow enough that a loaded machine renews in time (every lease_s / 3).
LEASE_S = 6.0
SYNC_S = 0.5


def tasks(spec_number: int, count: int = 4) -> str:
    """A task list in two sections; the ids are the spec's own (T101.. for spec 1), so the demo
    agent's files of two specs never meet in a merge."""
    ids = [f"T{spec_number * 100 + i}" for i in range(1, count + 1)]
    half = (count + 1) // 2
    lines = ["# Tasks", "", "## First"] + [f"- [ ] {t} Do {t}" for t in ids[:half]]
    lines += ["", "## Second"] + [f"- [ ] {t} Do {t}" for t in ids[half:]]
    return "\n".join(lines) + "\n"


@dataclass
class Fleet:
    remote: Path  # the bare repository
    clones: dict[str, Path]  # host -> its clone

    def __getitem__(self, host: str) -> Path:
        return self.clones[host]

    def feed(self) -> list[dict[str, Any]]:
        """The shared feed: the remote's design-docs branch, oldest first, with every trailer."""
        out = git(self.remote, "log", "--reverse", "--format=%H%x1f%ct%x1f%B%x1e", "helix-design-docs")
        entries = []
        for record in out.split("\x1e"):
            record = record.strip("\n")
            if not record:
                continue
            sha, ctime, message = record.split("\x1f", 2)
            trailers: dict[str, list[str]] = {}
            for line in message.strip().split("\n\n")[-1].splitlines():
                key, _, value = line.partition(": ")
                if key.startswith("Specflow-"):
                    trailers.setdefault(key.removeprefix("Specflow-"), []).append(value)
            entries.append({"commit": sha, "time": int(ctime), "subject": message.split("\n", 1)[0],
                            **{k: v[0] for k, v in trailers.items()}, "tasks": list(zip(
                                trailers.get("Task", []), trailers.get("Status", []), strict=False))})
        return entries


def make_fleet(tmp_path: Path, hosts: int, specs: int, *, task_count: int = 4, max_agents: int = 2,
               lease_s: float = LEASE_S, sync_s: float = SYNC_S) -> Fleet:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(remote, "config", "core.logAllRefUpdates", "always")  # a reflog: every update of a ref, kept
    seed = tmp_path / "seed"
    git(tmp_path, "clone", "-q", str(remote), str(seed))
    (seed / "README.md").write_text("a project\n")
    git(seed, "add", "README.md")
    git(seed, "commit", "-q", "-m", "initial")
    git(seed, "push", "-q", "origin", "main")
    clones: dict[str, Path] = {}
    for n in range(1, hosts + 1):
        clone = tmp_path / f"h{n}"
        git(tmp_path, "clone", "-q", str(remote), str(clone))
        r = run_cli("init", "--remote", "origin", cwd=clone)
        assert r.returncode == 0, r.stderr
        if n == 1:  # the specs, written on the first clone and pushed for the others
            docs = clone / ".specflow" / "design-docs"
            for s in range(1, specs + 1):
                assert run_cli("new", f"spec{s}", cwd=clone).returncode == 0
                (docs / "specs" / f"spec{s}" / "progress.md").write_text(tasks(s, task_count))
            git(docs, "add", "-A")
            git(docs, "commit", "-q", "-m", "task lists")
            git(clone, "push", "-q", "origin", "helix-design-docs")
        configure(clone, agent={"kind": "command", "command": DEMO_AGENT},
                  orchestration={"skip_analyze": True, "auto_merge": True}, pool={"max_agents": max_agents},
                  remote={"name": "origin", "host": f"h{n}", "lease_s": lease_s, "sync_interval_s": sync_s})
        clones[f"h{n}"] = clone
    return Fleet(remote, clones)


def start(clone: Path, spec: str) -> str:
    r = run_cli("start", spec, "--wait", "30", "--json", cwd=clone)
    assert r.returncode == 0, (r.stdout, r.stderr)
    answer = json.loads(r.stdout)
    assert answer["result"]["status"] == "queued"
    return str(answer["result"]["orchestration"])


def ended(fleet: Fleet, oids: list[str]) -> bool:
    """Every one of them has its `completed` (or another end) in the shared feed."""
    done = {e.get("Orchestration") for e in fleet.feed() if e.get("Event") in ("completed", "failed", "cancelled")}
    return set(oids) <= done


@contextlib.contextmanager
def cut_off(fleet: Fleet, host: str) -> Iterator[None]:
    """The remote unreachable (the bare repository moved away) until the block ends; entered once
    `status` on `host` says so."""
    away = fleet.remote.with_name("remote.away")
    fleet.remote.rename(away)
    try:
        wait_for(lambda: "unreachable since" in run_cli("status", cwd=fleet[host]).stdout, 30, interval=0.2,
                 message=f"status on {host} to show the remote unreachable")
        yield
    finally:
        away.rename(fleet.remote)


def done_marks(fleet: Fleet) -> Counter[str]:
    """How many times the shared feed marks each task done."""
    return Counter(t for e in fleet.feed() if not e.get("Event") for t, s in e["tasks"] if s == "done")


def agent_pids(clone: Path, oid: str) -> list[int]:
    """The agents this host's state file says still run for `oid` (none when it never ran it here)."""
    try:
        state = json.loads((clone / ".specflow" / "workflows" / f"orchestration-{oid}.json").read_text())
    except FileNotFoundError:
        return []
    return [r["pid"] for r in state["runs"] if r["pid"] and r["ended_at"] is None]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()[:1] != "Z"


def on_two_hosts(fleet: Fleet, oids: list[str]) -> list[dict[str, list[str]]]:
    """One sample of the agents' processes: the orchestrations with a live agent on more than one host."""
    running: dict[str, list[str]] = {}
    for host, clone in fleet.clones.items():
        for oid in oids:
            if any(alive(pid) for pid in agent_pids(clone, oid)):
                running.setdefault(oid, []).append(host)
    return [{oid: hosts} for oid, hosts in running.items() if len(hosts) > 1]


def wait_ended(fleet: Fleet, oids: list[str], timeout: float = 120) -> None:
    wait_for(lambda: ended(fleet, oids), timeout, interval=0.2, message=f"{oids} to end in the shared feed")


def events_of(fleet: Fleet, oid: str) -> list[dict[str, Any]]:
    return [e for e in fleet.feed() if e.get("Orchestration") == oid]


def fast_forwards_only(remote: Path, ref: str) -> bool:
    """Every update the remote's reflog holds for `ref` moved it forward, never back or aside."""
    lines = git(remote, "reflog", "show", "--format=%H", ref).split()
    return all(subprocess.run(["git", "merge-base", "--is-ancestor", old, new], cwd=remote).returncode == 0
               for new, old in zip(lines, lines[1:], strict=False))


@pytest.fixture
def fleet_daemons(start_daemon: Any) -> Any:
    """Start a daemon for each clone named (all of them by default); returns host -> process."""

    def start_all(fleet: Fleet, *hosts: str, env: dict[str, str] | None = None) -> dict[str, DaemonProcess]:
        return {h: start_daemon(fleet[h], env=env) for h in (hosts or fleet.clones)}

    return start_all
