"""What a person or a script is shown of orchestrations: summaries derived from state. Pure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from specflowd.core.machine import batch_label, remaining_tasks
from specflowd.core.state import OrchestrationState
from specflowd.core.vocab import FINISHED, TERMINAL, BatchStatus, Status


def summary(state: OrchestrationState, now: datetime) -> dict[str, Any]:
    """The facts `status` and `list` show, derived from the state alone."""
    done = sum(1 for s in state.task_status.values() if s in FINISHED)
    batch = next((b for b in state.batches if b.index == state.current_batch), None)
    remaining = remaining_tasks(state, batch) if batch else []
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
        "current_task": remaining[0] if remaining else None,
        "elapsed_s": max(0.0, (end - begun).total_seconds()),
        "cost_usd": round(state.total_cost_usd, 4),
        # Codex and Gemini CLI say tokens, not money: their cost is priced by specflowd.
        "cost_estimated": state.cost_estimated,
        "unpriced_models": sorted({m for r in state.runs for m in r.unpriced}),
        "budget_total_usd": state.config.budget.total,
        "waiting_until": state.waiting_until.isoformat() if state.waiting_until else None,
        "agents_running": [{"run": r.n, "pid": r.pid, "purpose": r.purpose, "batch": r.batch} for r in live],
        "error": state.error,
        "last_decisions": [{"at": d.at.isoformat(), "decision": d.decision, "reason": d.reason}
                           for d in state.decisions[-5:]],
    }


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


def one_line(s: dict[str, Any]) -> str:
    batch = f"batch {s['batch']}" if s["batch"] else f"{s['batches_done']}/{s['batches_total']} batches"
    return (f"{s['orchestration']}  {s['spec']:<24} {s['status']:<15} {s['phase']:<9} {batch:<28} "
            f"{s['tasks_done']}/{s['tasks_total']} tasks  ${s['cost_usd']:.2f}{'~' if s['cost_estimated'] else ''}  "
            f"{duration(s['elapsed_s'])}")


def details(state: OrchestrationState, now: datetime) -> str:
    s = summary(state, now)
    lines = [
        f"orchestration {state.id}  spec {state.spec}",
        f"status {s['status']}, phase {s['phase']}" + (f", batch {s['batch']}" if s["batch"] else ""),
        f"tasks {s['tasks_done']}/{s['tasks_total']} done" + (f", now on {s['current_task']}" if s["current_task"] else ""),
        f"elapsed {duration(s['elapsed_s'])}, cost ${s['cost_usd']:.2f} of ${s['budget_total_usd']:.2f}"
        + cost_note(s),
    ]
    if state.waiting_until:
        lines.append(f"waiting for a usage limit until {state.waiting_until.isoformat()}")
    if state.error and state.status in (Status.NEEDS_ATTENTION, Status.FAILED):
        lines.append(f"why: {state.error}")
    if state.batches:
        lines.append("")
        lines.append("  #  batch                          status      tasks    heals  cost")
        for b in state.batches:
            done = sum(1 for t in b.task_ids if state.task_status.get(t) in FINISHED)
            lines.append(f"{b.index:>3}  {b.name[:30]:<30} {b.status.value:<11} {done:>3}/{len(b.task_ids):<4} "
                         f"{b.heal_attempts:>5}  ${b.cost_usd:.2f}")
    if state.decisions:
        lines.append("")
        lines.append("last decisions:")
        for d in state.decisions[-5:]:
            lines.append(f"  {d.at.strftime('%H:%M:%S')}  {decision(d.decision, d.reason)}")
    return "\n".join(lines)


def decision(what: str, why: str) -> str:
    return what if why in what.replace(" ", "-") or not why else f"{what} ({why})"
