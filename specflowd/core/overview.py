"""What a person or a script is shown of orchestrations: summaries derived from state, the task
list's titles when the caller has them, and what to run next. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from specflowd.core.state import OrchestrationState, batch_label, remaining_tasks
from specflowd.core.text import one_line, visible
from specflowd.core.vocab import FINISHED, TERMINAL, BatchStatus, PauseReason, Status, TaskStatus

AROUND = 2  # tasks shown before and after the one an agent is on
RECENT = 20  # ended orchestrations `list` and `status --json` show unless asked for more


def window(task_ids: list[str], current: str | None, titles: Mapping[str, str],
           statuses: Mapping[str, TaskStatus]) -> list[dict[str, Any]]:
    """The task an agent is on with the two before and the two after it in its batch, each with its
    title and status (Helix's fleet card)."""
    at = task_ids.index(current) if current in task_ids else 0
    shown = task_ids[max(0, at - AROUND):at + AROUND + 1] if current else []
    return [{"task": t, "title": titles.get(t, ""), "status": statuses.get(t, TaskStatus.PENDING).value,
             "current": t == current} for t in shown]


def next_step(state: OrchestrationState) -> str | None:
    """The command that moves the orchestration on, when it waits for a person."""
    match state.status:
        case Status.NEEDS_ATTENTION:
            return (f"specflowd recover {state.id} --retry   (or --skip, or --abort; "
                    f"--retry --budget-total N when a budget stopped it)")
        case Status.WAITING_MERGE:
            return f"specflowd merge {state.id}"
        case Status.PAUSED if state.pause_reason != PauseReason.RATE_LIMIT:
            return f"specflowd resume {state.id}"
        case _:
            return None


def summary(state: OrchestrationState, now: datetime, titles: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The facts `status` and `list` show, derived from the state (and the task list's titles)."""
    done = sum(1 for s in state.task_status.values() if s in FINISHED)
    batch = next((b for b in state.batches if b.index == state.current_batch), None)
    # Only a running orchestration is "on" a task: paused or stopped, it is on none.
    remaining = remaining_tasks(state, batch) if batch and state.status == Status.RUNNING else []
    current = remaining[0] if remaining else None
    end = state.updated_at if state.status in TERMINAL else now
    begun = state.started_at or state.created_at
    live = [r for r in state.runs if r.ended_at is None and r.pid]
    return {
        "orchestration": state.id,
        "spec": state.spec,
        "status": state.status.value,
        "phase": state.phase.value,
        "batch": batch_label(state, batch) if batch else None,
        "batches_done": sum(1 for b in state.batches if b.status in (BatchStatus.COMPLETED, BatchStatus.SKIPPED)),
        "batches_total": len(state.batches),
        "tasks_done": done,
        "tasks_total": len(state.task_status),
        "current_task": current,
        "current_title": (titles or {}).get(current, "") if current else None,
        "around": window(batch.task_ids, current, titles or {}, state.task_status) if batch and current else [],
        "next": next_step(state),
        "elapsed_s": max(0.0, (end - begun).total_seconds()),
        "cost_usd": round(state.total_cost_usd, 4),
        # Codex and Gemini CLI say tokens, not money: their cost is priced by specflowd.
        "cost_estimated": state.cost_estimated,
        "unpriced_models": sorted({m for r in state.runs for m in r.unpriced}),
        "budget_total_usd": state.config.budget.total,
        "waiting_until": state.waiting_until.isoformat() if state.waiting_until else None,
        "agents_running": [{"run": r.n, "pid": r.pid, "purpose": r.purpose, "batch": r.batch} for r in live],
        "error": state.error,
        "verify_output": state.verify_output,
        "last_decisions": [{"at": d.at.isoformat(), "decision": d.decision, "reason": d.reason}
                           for d in state.decisions[-5:]],
    }


def index_row(state: OrchestrationState) -> dict[str, Any] | None:
    """What `list` and `status` show of an ended orchestration without reading its state file (the
    daemon's index keeps it); None while the orchestration is active."""
    if state.status not in TERMINAL:
        return None
    return {"created_at": state.created_at.isoformat(), "summary": summary(state, state.updated_at)}


def listing(states: Mapping[str, OrchestrationState], ended: Mapping[str, Mapping[str, Any]], now: datetime,
            limit: int | None) -> tuple[list[dict[str, Any]], int]:
    """The summaries `list` prints: the active orchestrations (oldest first), then the ended ones,
    newest first, at most `limit` of them; and how many ended ones that left out. `ended` holds index
    rows; an ended orchestration read from its state file counts as ended too."""
    active = sorted((s for s in states.values() if s.status not in TERMINAL), key=lambda s: s.created_at)
    rows = dict(ended)
    for s in states.values():
        row = index_row(s)
        if row is not None:
            rows[s.id] = row
    newest = sorted(rows.values(), key=lambda r: str(r["created_at"]), reverse=True)
    shown = newest if limit is None else newest[:limit]
    return [summary(s, now) for s in active] + [dict(r["summary"]) for r in shown], len(newest) - len(shown)


def cost_note(s: dict[str, Any]) -> str:
    """What the cost figure is, when it is not what the CLIs said."""
    if s["unpriced_models"]:
        return (f" (estimated from tokens; no price for {', '.join(s['unpriced_models'])}: "
                "set [agent] prices, their tokens count as $0)")
    return " (estimated from tokens)" if s["cost_estimated"] else ""


def duration(seconds: float) -> str:
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s"


# Everything below is shown on a terminal: text from task lists, agents and commits goes through
# `visible`, so that no escape sequence in it reaches the terminal as one.

LIST_BATCH = 30  # the batch column of `list`: a longer name is cut (a name, never an id)


def cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def list_line(s: dict[str, Any]) -> str:
    batch = f"batch {s['batch']}" if s["batch"] else f"{s['batches_done']}/{s['batches_total']} batches"
    return (f"{s['orchestration']}  {s['spec']:<24} {s['status']:<15} {s['phase']:<9} "
            f"{cut(visible(batch), LIST_BATCH):<{LIST_BATCH}} "
            f"{s['tasks_done']}/{s['tasks_total']} tasks  ${s['cost_usd']:.2f}{'~' if s['cost_estimated'] else ''}  "
            f"{duration(s['elapsed_s'])}")


def details(state: OrchestrationState, now: datetime, titles: Mapping[str, str] | None = None) -> str:
    s = summary(state, now, titles)
    on = ""
    if s["current_task"]:
        on = f", now on {visible(s['current_task'])}" + (f" {visible(s['current_title'])}" if s["current_title"] else "")
    lines = [
        f"orchestration {state.id}  spec {state.spec}",
        f"status {s['status']}, phase {s['phase']}" + (f", batch {visible(s['batch'])}" if s["batch"] else ""),
        f"tasks {s['tasks_done']}/{s['tasks_total']} done{on}",
        f"elapsed {duration(s['elapsed_s'])}, cost ${s['cost_usd']:.2f} of ${s['budget_total_usd']:.2f}"
        + visible(cost_note(s)),
    ]
    if state.waiting_until:
        lines.append(f"waiting for a usage limit until {state.waiting_until.isoformat()}")
    if state.error and state.status in (Status.NEEDS_ATTENTION, Status.FAILED):
        lines.append(f"why: {visible(one_line(state.error, 2000))}")
    if s["verify_output"] and state.status == Status.NEEDS_ATTENTION:
        lines.append("verify's last output:")
        lines += [f"  | {visible(line)}" for line in s["verify_output"].splitlines()[-15:]]
    if s["next"]:
        lines.append(f"next: {s['next']}")
    if s["around"]:
        lines.append("")
        for t in s["around"]:
            mark = ">" if t["current"] else " "
            lines.append(f" {mark} {visible(t['task']):<8} {t['status']:<11} {visible(t['title'])}")
    if state.batches:
        lines.append("")
        lines.append("  #  batch                          status      tasks    heals  cost")
        for b in state.batches:
            done = sum(1 for t in b.task_ids if state.task_status.get(t) in FINISHED)
            lines.append(f"{b.index:>3}  {cut(visible(b.name), 30):<30} {b.status.value:<11} "
                         f"{done:>3}/{len(b.task_ids):<4} {b.heal_attempts:>5}  ${b.cost_usd:.2f}")
    if state.decisions:
        lines.append("")
        lines.append("last decisions:")
        for d in state.decisions[-5:]:
            lines.append(f"  {d.at.strftime('%H:%M:%S')}  {decision(d.decision, d.reason)}")
    return "\n".join(lines)


def decision(what: str, why: str) -> str:
    """A line of the decision log, on one line whatever it holds."""
    return visible(one_line(what if why in what.replace(" ", "-") or not why else f"{what} ({why})", 300))
