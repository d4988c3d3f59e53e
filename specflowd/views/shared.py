"""Many machines (SPEC §10), as `status`, `list` and `fleet` show them: the orchestrations other hosts
run (or none yet: queued), who runs what since when and until when its lease holds, the hosts, and
whether this host reaches the remote. Read from `.specflow/fleet.json`, which the daemon writes as it
syncs; with no daemon, worked out once from the refs the last fetch left. Nothing here runs for a
project without `[remote] name`: one machine costs nothing more."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from specflowd import fsio
from specflowd.core import records
from specflowd.core.config import RemoteConfig
from specflowd.core.fleet import Record
from specflowd.core.state import OrchestrationState
from specflowd.daemon import pidlock
from specflowd.repo import remote
from specflowd.repo.designdocs import DesignDocs
from specflowd.repo.project import Project
from specflowd.views import status
from specflowd.views.status import held_back_edits, task_statuses


def remote_config(project: Project) -> RemoteConfig | None:
    """The project's `[remote]`, None on one machine (read without the rest of the config)."""
    try:
        data = tomllib.loads(project.config_path.read_text(encoding="utf-8")).get("remote") or {}
        config = records.load(RemoteConfig, data, "remote")
    except (OSError, ValueError, AttributeError):
        return None
    return config if config.name else None


def fleet_view(project: Project) -> dict[str, Any] | None:
    """The fleet as the daemon last synced it; None on one machine."""
    config = remote_config(project)
    if config is None:
        return None
    try:
        data = json.loads(fsio.read_regular(project.fleet_file) or b"null")
    except (OSError, ValueError):
        data = None
    if not isinstance(data, dict):
        return from_refs(project, config)
    if pidlock.holder(project) is None:
        data["note"] = f"no daemon runs here: as of its last sync, {data.get('at', '?')[:19].replace('T', ' ')}"
    return data


def from_refs(project: Project, config: RemoteConfig) -> dict[str, Any]:
    """The view without a daemon: the feed and the leases as this clone last fetched them."""
    r = remote.Remote(project, config.name)
    docs = DesignDocs(project)
    records: dict[str, Record] = {}
    tip = r.tip()
    if tip is not None:
        remote.read_records(r, records, None, tip, docs.store)

    sync: dict[str, Any] = {"reachable": None, "unreachable_since": None, "error": None, "held": [], "stats": {},
            "note": "no daemon has synced here: as of the last fetch"}
    return remote.view(r, records, r.leases(), host=remote.host_name(config),
                       statuses=lambda spec: task_statuses(project, spec),
                       now=datetime.now(UTC), local=set(), sync=sync)


def view_states(view: dict[str, Any]) -> dict[str, OrchestrationState]:
    """The orchestrations the view holds: other hosts', queued ones, and ended ones of the fleet."""
    return {oid: records.load(OrchestrationState, data) for oid, data in view.get("orchestrations", {}).items()}


def merged(mine: OrchestrationState | None, theirs: OrchestrationState) -> OrchestrationState:
    """An orchestration as this host shows it: its own state while it holds the lease, else the
    fleet's (with the time this host lost its lease, when it did)."""
    if mine is not None and mine.lease_lost_at is None:
        return mine
    return replace(theirs, lease_lost_at=mine.lease_lost_at if mine else None)


def with_fleet(states: Mapping[str, OrchestrationState], ended: Mapping[str, Any],
               view: dict[str, Any]) -> dict[str, OrchestrationState]:
    """This host's orchestrations (`views.status.load`) with the fleet's: those other hosts run or
    ran, and queued ones. `ended`: this host's index of the ones it ran to their end."""
    out = dict(states)
    for oid, theirs in view_states(view).items():
        if oid not in ended:
            out[oid] = merged(out.get(oid), theirs)
    return out


def load_one(project: Project, wanted: str, view: dict[str, Any]) -> tuple[OrchestrationState, list[str]]:
    """`status ID` on many machines: this host's state of it, or the fleet's when another host runs it."""
    theirs = view_states(view).get(wanted)
    if theirs is not None and not project.state_file(wanted).exists():
        return theirs, held_back_edits(project)
    state, notes = status.load_one(project, wanted)
    return (merged(state, theirs) if theirs is not None else state), notes


def annotate(summary: dict[str, Any], view: dict[str, Any], now: datetime,
             state: OrchestrationState | None) -> dict[str, Any]:
    """A summary with who runs it, since when, until when its lease holds, whether that host is
    unreachable (its lease lapsed unrenewed), and when this host lost its lease on it (if it did).
    `state` None: an ended one of this host's index."""
    oid = summary["orchestration"]
    lease = view.get("leases", {}).get(oid)
    expires = datetime.fromisoformat(lease["expires"]) if lease else None
    host = view["host"] if state is None else state.host or None
    lost = state.lease_lost_at if state is not None else None
    return {**summary, "host": lease["host"] if lease else host, "since": view.get("since", {}).get(oid),
            "lease_expires": lease["expires"] if lease else None,
            "host_unreachable": bool(expires and expires < now),
            "lease_lost_here": lost.isoformat() if lost else None}


def annotate_all(rows: list[dict[str, Any]], states: Mapping[str, OrchestrationState], view: dict[str, Any],
                 now: datetime) -> list[dict[str, Any]]:
    return [annotate(row, view, now, states.get(row["orchestration"])) for row in rows]


def host_suffix(s: dict[str, Any]) -> str:
    """`list`'s column of the host that runs an annotated orchestration."""
    return f"  {s['host'] or '-'}" + (" (unreachable)" if s["host_unreachable"] else "")


def held_line(s: dict[str, Any]) -> str:
    """`status`'s line of who runs an annotated orchestration, since when, until when its lease holds."""
    lost = f"\nthis host lost its lease at {s['lease_lost_here'][11:19]}: it writes nothing more for it" \
        if s["lease_lost_here"] else ""
    if not s["host"]:
        return ("\nhost: none yet (queued)" if s["status"] == "queued" else "") + lost
    until = f", lease until {s['lease_expires'][11:19]}" if s["lease_expires"] else ""
    lapsed = " (unreachable: its lease lapsed)" if s["host_unreachable"] else ""
    return f"\nhost: {s['host']}{lapsed}, since {(s['since'] or '?').replace('T', ' ')[:19]}{until}{lost}"


def remote_line(view: dict[str, Any]) -> str:
    """`remote origin: reachable, this host h1` or `remote origin: unreachable since …`."""
    head = f"remote {view['remote']}"
    if view.get("note"):
        state = view["note"]
    elif view.get("reachable") is False:
        state = f"unreachable since {view.get('unreachable_since') or '?'}"
    else:
        state = f"reachable (synced {view.get('at', '?')[11:19]})"
    extra = f"; push blocked: {view['error']}" if view.get("error") else ""
    return f"{head}: {state}, this host {view['host']}{extra}"


def hosts_now(view: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    """Every host of the fleet: the leases it holds, those that lapsed unrenewed (it is unreachable
    then), when it was last heard of; judged now, not when the view was written."""
    leases = view.get("leases", {})
    out = []
    for h in view.get("hosts", {}).values():
        held = [oid for oid, lease in leases.items() if lease["host"] == h["host"]]
        lapsed = [oid for oid in held if datetime.fromisoformat(leases[oid]["expires"]) < now]
        out.append({"host": h["host"], "holds": [oid for oid in held if oid not in lapsed], "lapsed": lapsed,
                    "last_seen": h["last_seen"], "unreachable": bool(lapsed)})
    return out


def host_lines(view: dict[str, Any], now: datetime) -> list[str]:
    lines = [f"{'host':<16} {'holds':<28} {'last seen':<20} state"]
    for h in hosts_now(view, now):
        seen = (h["last_seen"] or "-").replace("T", " ")[:19]
        state = f"unreachable (lease of {', '.join(h['lapsed'])} lapsed)" if h["unreachable"] else "ok"
        lines.append(f"{h['host']:<16} {', '.join(h['holds']) or '-':<28} {seen:<20} {state}")
    return lines


def remote_rows(project: Project, view: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    """`fleet`'s rows for the orchestrations other hosts run: what each is on, by whom, since when."""
    rows = []
    for state in view_states(view).values():
        lease = view.get("leases", {}).get(state.id)
        if lease is None or lease["host"] == view["host"] or not state.active:
            continue
        batch = next((b for b in state.batches if b.index == state.current_batch), None)
        since = view.get("since", {}).get(state.id)
        rows.append({
            "project": str(project.root), "spec": state.spec, "orchestration": state.id, "phase": state.phase.value,
            "batch": f"{batch.index}/{len(state.batches)} {batch.name}" if batch else None, "run": None,
            "purpose": None, "state": f"on {lease['host']}", "task": None, "before": [], "after": [], "around": [],
            "pid": None, "run_time_s": (now - datetime.fromisoformat(since)).total_seconds() if since else 0.0,
            "cost_usd": 0.0, "orchestration_cost_usd": round(state.total_cost_usd, 4), "host": lease["host"],
            "lease_expires": lease["expires"]})
    return rows
