"""A fleet of daemons sharing one bare remote, all on this machine (SPEC §10): each rule with a test
that fails without it. Real `specflowd run` processes, real clones, real pushes and fetches."""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.conftest import configure, git, run_cli, wait_for
from tests.e2e.fleet.conftest import (
    Fleet,
    agent_pids,
    alive,
    cut_off,
    done_marks,
    ended,
    events_of,
    fast_forwards_only,
    make_fleet,
    on_two_hosts,
    start,
    wait_ended,
)


def test_orchestrations_started_anywhere_run_once_each_and_merge_into_the_remote(tmp_path: Path, fleet_daemons: Any) -> None:
    fleet = make_fleet(tmp_path, hosts=3, specs=4)
    daemons = fleet_daemons(fleet)
    oids = [start(fleet[f"h{1 + n % 3}"], f"spec{n + 1}") for n in range(4)]
    twice: list[dict[str, list[str]]] = []

    def sampled_then_ended() -> bool:
        twice.extend(on_two_hosts(fleet, oids))
        return ended(fleet, oids)

    wait_for(sampled_then_ended, 120, interval=0.05, message=f"{oids} to end in the shared feed")
    assert twice == []
    feed = fleet.feed()
    # Queued where dropped, claimed once each, by the host whose claim landed first.
    for oid in oids:
        mine = [e for e in feed if e.get("Orchestration") == oid]
        assert [e["Event"] for e in mine if e.get("Event") in ("queued", "claimed")] == ["queued", "claimed"]
        assert mine[-1]["Event"] == "completed"
        # Only the claimer wrote for it after its claim: no orchestration ran on two hosts.
        claimer = next(e["Host"] for e in mine if e.get("Event") == "claimed")
        claim_at = next(i for i, e in enumerate(mine) if e.get("Event") == "claimed")
        assert {e.get("Host") for e in mine[claim_at:] if e.get("Event")} == {claimer}
    # Every task done exactly once in the shared feed; every event names its host.
    assert done_marks(fleet) == Counter({f"T{s}0{t}": 1 for s in range(1, 5) for t in range(1, 5)})
    assert all(e.get("Host") for e in feed if e.get("Event") and e.get("Orchestration"))
    # The design-docs branch: linear, and only ever moved forward (never forced) on the remote.
    assert git(fleet.remote, "rev-list", "--merges", "helix-design-docs").strip() == ""
    assert fast_forwards_only(fleet.remote, "refs/heads/helix-design-docs")
    # Merged into the remote's main, each spec's work there; the work branches pushed.
    files = git(fleet.remote, "ls-tree", "-r", "--name-only", "main").split()
    assert {f"specflow-demo/T{s}0{t}.md" for s in range(1, 5) for t in range(1, 5)} <= set(files)
    for s in range(1, 5):
        assert git(fleet.remote, "rev-parse", f"refs/heads/specflow/spec{s}")
    # No lease is left behind by an orchestration that ended.
    assert git(fleet.remote, "for-each-ref", "refs/specflow/leases/") == ""
    # Every host's clone carried the others' commits into its design-docs worktree.
    for host, clone in fleet.clones.items():
        wait_for(lambda c=clone: "- [x] T404" in (c / ".specflow/design-docs/specs/spec4/progress.md").read_text(),
                 30, message=f"{host}'s worktree to show spec4 done")
    # `list` on any host shows them all, with the host that ran each; `fleet` shows every host.
    def listed() -> list[dict[str, Any]]:
        return json.loads(run_cli("list", "--json", cwd=fleet["h1"]).stdout)

    wait_for(lambda: all(s["status"] == "completed" for s in listed()), 30, interval=0.2,
             message="h1's list to show every orchestration completed")  # as of h1's next sync
    assert {s["orchestration"] for s in listed()} == set(oids)
    assert {s["host"] for s in listed()} <= {"h1", "h2", "h3"}
    hosts = json.loads(run_cli("fleet", "--hosts", "--json", cwd=fleet["h2"]).stdout)[0]["hosts"]
    assert {h["host"] for h in hosts} == {"h1", "h2", "h3"}
    for d in daemons.values():
        assert "Traceback" not in d.log()


def holder_of(fleet: Fleet, oid: str) -> str:
    return wait_for(lambda: next((e["Host"] for e in events_of(fleet, oid) if e.get("Event") == "batch-started"), None),
                    30, interval=0.1, message=f"{oid}'s first batch to start")  # type: ignore[return-value]


def lease_of(remote: Path, oid: str) -> dict[str, str]:
    """The remote's lease of `oid`: the trailers of the commit its ref points at."""
    message = git(remote, "log", "-1", "--format=%B", f"refs/specflow/leases/{oid}")
    return dict(line.removeprefix("Specflow-").split(": ", 1) for line in message.splitlines() if line.startswith("Specflow-"))


def test_a_host_lost_with_its_agents_is_taken_over_once_its_lease_lapses(tmp_path: Path, fleet_daemons: Any) -> None:
    fleet = make_fleet(tmp_path, hosts=2, specs=1, task_count=6, max_agents=1, lease_s=3)
    daemons = fleet_daemons(fleet, env={"SPECFLOWD_DEMO_TASK_S": "0.4"})
    oid = start(fleet["h1"], "spec1")
    old = holder_of(fleet, oid)
    pids = wait_for(lambda: agent_pids(fleet[old], oid), 30, message="the holder's agent to run")
    daemons[old].kill_group()
    for pid in pids:  # and its agents: the machine is gone
        os.killpg(pid, signal.SIGKILL)
    lapses = lease_of(fleet.remote, oid)  # its last renewal: nobody renews it any more
    assert lapses["Host"] == old
    wait_ended(fleet, [oid])
    events = events_of(fleet, oid)
    taken = next(e for e in events if e.get("Event") == "taken-over")
    new = "h2" if old == "h1" else "h1"
    assert taken["Host"] == new and taken["Previous-Host"] == old
    # Taken only once the lease had lapsed, by the taker's clock (a second's rounding aside).
    expiry = int(datetime.fromisoformat(lapses["Expires"]).timestamp())
    assert taken["time"] >= expiry
    # Resumed from the feed and the pushed work branch: what the lost host had marked stays done,
    # the rest is done by the new host, each task once.
    assert events[-1]["Event"] == "completed" and events[-1]["Host"] == new
    assert done_marks(fleet) == Counter({f"T10{t}": 1 for t in range(1, 7)})
    after = events[events.index(taken) + 1:]
    assert after and all(e.get("Host") == new for e in after)
    assert {f"specflow-demo/T10{t}.md" for t in range(1, 7)} <= set(
        git(fleet.remote, "ls-tree", "-r", "--name-only", "main").split())


def test_a_host_whose_lease_was_taken_stops_its_agent_and_writes_nothing_more(tmp_path: Path,
                                                                               fleet_daemons: Any) -> None:
    """Fencing: another host's lease on the remote (written here by hand, as a host that took it
    over would); the next push of the holder, which renews its lease in the same atomic push as its
    marks, is refused; it stops its agent, and not one more mark or event of it lands."""
    fleet = make_fleet(tmp_path, hosts=1, specs=1, task_count=6)
    daemons = fleet_daemons(fleet, env={"SPECFLOWD_DEMO_TASK_S": "0.5"})
    oid = start(fleet["h1"], "spec1")
    holder_of(fleet, oid)
    pids = wait_for(lambda: agent_pids(fleet["h1"], oid), 30, message="the agent to run")
    empty = git(fleet.remote, "hash-object", "-t", "tree", "-w", "--stdin", input="").strip()
    foreign = git(fleet.remote, "commit-tree", empty, "-m", f"lease {oid}: intruder until 2099\n\n"
                  f"Specflow-Lease: {oid}\nSpecflow-Host: intruder\nSpecflow-Expires: 2099-01-01T00:00:00Z").strip()
    git(fleet.remote, "update-ref", f"refs/specflow/leases/{oid}", foreign)
    intruded = len(fleet.feed())
    wait_for(lambda: any(e.get("Event") == "lease-lost" for e in events_of(fleet, oid)), 30, interval=0.1,
             message="the holder to record that it lost its lease")
    wait_for(lambda: not any(alive(p) for p in pids), 30, message="the holder's agent to be stopped")
    state = json.loads((fleet["h1"] / ".specflow/workflows" / f"orchestration-{oid}.json").read_text())
    assert state["lease_lost_at"] is not None
    # The holder keeps working on nothing for it; whatever it still had unpushed never lands.
    daemons["h1"].stop()
    later = [e for e in fleet.feed()[intruded:] if e.get("Orchestration") == oid]
    assert [e["Event"] for e in later] == ["lease-lost"], later
    assert git(fleet.remote, "rev-parse", f"refs/specflow/leases/{oid}").strip() == foreign


def test_a_partition_longer_than_the_lease(tmp_path: Path, fleet_daemons: Any) -> None:
    """The remote unreachable for longer than lease_s: the holder stops before its lease lapses and
    says so when it can; afterwards a host takes over, and the host that lost the lease wrote
    nothing for it in between (fencing, proven by the feed); nothing is lost or done twice."""
    fleet = make_fleet(tmp_path, hosts=2, specs=1, task_count=6, lease_s=3)
    fleet_daemons(fleet, env={"SPECFLOWD_DEMO_TASK_S": "0.5"})
    oid = start(fleet["h2"], "spec1")
    old = holder_of(fleet, oid)
    with cut_off(fleet, old):  # `status` says since when, and the holder keeps its books locally
        wait_for(lambda: "lost its lease" in run_cli("status", oid, cwd=fleet[old]).stdout, 30, interval=0.2,
                 message="the holder to give its lease up while cut off")
    wait_ended(fleet, [oid])
    events = events_of(fleet, oid)
    for host in ("h1", "h2"):
        writing = True  # may this host write for the orchestration at this point of the feed?
        for e in events:
            if e.get("Host") != host:
                continue
            if e.get("Event") == "lease-lost":
                writing = False
            elif e.get("Event") in ("claimed", "taken-over"):
                writing = True
            else:
                assert writing, f"{host} wrote {e['subject']!r} after losing its lease"
    assert any(e.get("Event") == "lease-lost" and e["Host"] == old for e in events)
    assert any(e.get("Event") == "taken-over" for e in events)
    assert done_marks(fleet) == Counter({f"T10{t}": 1 for t in range(1, 7)})
    wait_for(lambda: ": reachable" in run_cli("status", cwd=fleet[old]).stdout.splitlines()[0], 30, interval=0.2,
             message="status to show the remote reachable again")


def unpushed_marks(clone: Path) -> list[str]:
    """Subjects of the mark commits of this clone's design-docs branch the remote does not have."""
    out = git(clone, "log", "--format=%s%x1f%B%x1e", "origin/helix-design-docs..helix-design-docs")
    return [c.split("\x1f")[0].strip() for c in out.split("\x1e") if "Specflow-Task:" in c]


def test_offline_work_is_kept_and_pushed_when_the_remote_is_back(tmp_path: Path, fleet_daemons: Any) -> None:
    """Cut off for less than its lease: the holder keeps marking locally, and once the remote is back
    its marks are pushed (rebuilt on the remote's tip if needed); it keeps its lease all along."""
    fleet = make_fleet(tmp_path, hosts=2, specs=1, task_count=6, lease_s=30)
    fleet_daemons(fleet, env={"SPECFLOWD_DEMO_TASK_S": "0.3"})
    oid = start(fleet["h1"], "spec1")
    old = holder_of(fleet, oid)
    with cut_off(fleet, old):
        offline = wait_for(lambda: unpushed_marks(fleet[old]), 30, interval=0.1,
                           message="a mark made while the remote is unreachable")
    wait_ended(fleet, [oid])
    events = events_of(fleet, oid)
    assert not any(e.get("Event") in ("lease-lost", "taken-over") for e in events), events
    assert set(offline) <= {e["subject"] for e in fleet.feed()}  # what it did offline, on the remote now
    assert done_marks(fleet) == Counter({f"T10{t}": 1 for t in range(1, 7)})
    assert fast_forwards_only(fleet.remote, "refs/heads/helix-design-docs")


def test_marks_from_every_host_at_once_all_land_once_without_a_merge_or_a_force(tmp_path: Path,
                                                                               fleet_daemons: Any) -> None:
    """Contention: three hosts mark neighbouring lines of one task list as fast as they can. Each
    refused push fetches, rebuilds its marks on the new tip and pushes again: no conflict, no mark
    lost or made twice, the branch linear and only ever moved forward."""
    fleet = make_fleet(tmp_path, hosts=3, specs=1, task_count=24)
    fleet_daemons(fleet)
    ids = [f"T1{n:02d}" for n in range(1, 25)]
    mine = {host: ids[n::3] for n, host in enumerate(fleet.clones)}  # every line's neighbours are others'

    def mark_all(host: str) -> list[int]:
        return [run_cli("mark", task, "--done", "--spec", "spec1", cwd=fleet[host]).returncode for task in mine[host]]

    with ThreadPoolExecutor(len(fleet.clones)) as pool:
        codes = list(pool.map(mark_all, fleet.clones))
    assert all(c == 0 for c in sum(codes, []))
    progress = "specs/spec1/progress.md"
    wait_for(lambda: git(fleet.remote, "show", f"helix-design-docs:{progress}").count("- [x]") == len(ids), 60,
             interval=0.1, message="every mark on the remote")
    assert done_marks(fleet) == Counter(dict.fromkeys(ids, 1))
    assert git(fleet.remote, "rev-list", "--merges", "helix-design-docs").strip() == ""
    assert fast_forwards_only(fleet.remote, "refs/heads/helix-design-docs")
    for host, clone in fleet.clones.items():  # and every host's worktree has them all
        wait_for(lambda c=clone: (c / ".specflow/design-docs" / progress).read_text().count("- [x]") == len(ids), 30,
                 interval=0.1, message=f"{host}'s worktree to show every mark")


def test_a_host_with_no_free_slot_leaves_the_claim_to_another(tmp_path: Path, fleet_daemons: Any) -> None:
    fleet = make_fleet(tmp_path, hosts=2, specs=2, max_agents=1)
    fleet_daemons(fleet, env={"SPECFLOWD_DEMO_TASK_S": "1"})
    first = start(fleet["h1"], "spec1")
    wait_for(lambda: any(e.get("Event") == "claimed" for e in events_of(fleet, first)), 30, interval=0.1,
             message="the first claim")
    second = start(fleet["h1"], "spec2")
    wait_ended(fleet, [first, second])
    claimed = {oid: next(e["Host"] for e in events_of(fleet, oid) if e.get("Event") == "claimed")
               for oid in (first, second)}
    assert claimed[first] != claimed[second], claimed  # max_agents is per host


def test_a_refused_push_is_fetched_rebuilt_on_the_new_tip_and_pushed_again(tmp_path: Path,
                                                                           fleet_daemons: Any) -> None:
    """The compare-and-swap, made certain: h2 has fetched, then h1's mark lands on the remote; h2's
    own mark, pushed without force, is refused; h2 fetches, rebuilds its mark on h1's and pushes."""
    fleet = make_fleet(tmp_path, hosts=2, specs=1)
    configure(fleet["h2"], remote={"sync_interval_s": 600})  # no fetch of its own between the two marks
    fleet_daemons(fleet, "h2")
    assert run_cli("mark", "T101", "--done", "--spec", "spec1", "--now", cwd=fleet["h1"]).returncode == 0
    git(fleet["h1"], "push", "-q", "origin", "helix-design-docs")
    r = run_cli("mark", "T102", "--done", "--spec", "spec1", cwd=fleet["h2"])
    assert r.returncode == 0, r.stderr
    wait_for(lambda: "- [x] T102" in git(fleet.remote, "show", "helix-design-docs:specs/spec1/progress.md"), 30,
             interval=0.1, message="h2's mark on the remote")
    progress = git(fleet.remote, "show", "helix-design-docs:specs/spec1/progress.md")
    assert "- [x] T101" in progress and "- [ ] T103" in progress
    subjects = git(fleet.remote, "log", "-2", "--format=%s", "helix-design-docs").splitlines()
    assert "T102" in subjects[0] and "T101" in subjects[1], subjects  # h2's rebuilt on h1's: linear
    assert git(fleet.remote, "rev-list", "--merges", "helix-design-docs").strip() == ""
    assert fast_forwards_only(fleet.remote, "refs/heads/helix-design-docs")

    def stats() -> dict[str, int]:
        path = fleet["h2"] / ".specflow" / "fleet.json"  # written by the daemon within a second of a sync
        return dict(json.loads(path.read_text())["stats"]) if path.exists() else {}

    wait_for(lambda: stats().get("commits_pushed"), 10, interval=0.1, message="h2's fleet.json after its push")
    assert stats().get("refused_moved", 0) >= 1 and stats().get("rebuilds", 0) >= 1, stats()
