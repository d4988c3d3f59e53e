"""What the live page (`specflowd web`) shows: an orchestration with its batches, tasks and budgets,
and an agent at work as a card. Plain documents derived from state, the task list's titles and the
fleet's rows; the page turns them into elements, never into markup. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from specflowd.core.overview import summary
from specflowd.core.state import OrchestrationState
from specflowd.core.vocab import FINISHED, TaskStatus

# Every open page is sent an orchestration's document again whenever its state changes: a title
# longer than this is cut, so that one long line cannot make every change costly.
TITLE_CHARS = 200


def title(text: str) -> str:
    return text if len(text) <= TITLE_CHARS else text[:TITLE_CHARS - 1] + "…"


def orchestration(state: OrchestrationState, titles: Mapping[str, str], now: datetime) -> dict[str, Any]:
    """`status --json`'s summary, with what the page draws besides: each batch's progress, every
    task of the plan with its title, each budget against what was spent of it, and the times the
    page's clocks count from."""
    budget = state.config.budget
    current = next((b for b in state.batches if b.index == state.current_batch), None)
    planned = [t for b in state.batches for t in b.task_ids]
    return {
        **summary(state, now, titles),
        "project": state.project,
        "created_at": state.created_at.isoformat(),
        "started_at": state.started_at.isoformat() if state.started_at else None,
        "updated_at": state.updated_at.isoformat(),
        "budgets": [
            {"name": "batch", "spent_usd": round(current.cost_usd - current.cost_at_retry, 4) if current else 0.0,
             "limit_usd": budget.per_batch},
            {"name": "healing", "spent_usd": round(state.healing_cost_usd, 4), "limit_usd": budget.healing},
            {"name": "total", "spent_usd": round(state.total_cost_usd, 4), "limit_usd": budget.total},
        ],
        "batches": [{
            "index": b.index,
            "name": b.name,
            "status": b.status.value,
            "tasks": b.task_ids,
            "tasks_done": sum(1 for t in b.task_ids if state.task_status.get(t) in FINISHED),
            "tasks_total": len(b.task_ids),
            "heal_attempts": b.heal_attempts,
            "cost_usd": round(b.cost_usd, 4),
        } for b in state.batches],
        "tasks": {t: {"status": state.task_status.get(t, TaskStatus.PENDING).value, "title": title(titles.get(t, ""))}
                  for t in planned},
    }


def card(row: Mapping[str, Any], host: str, state: OrchestrationState) -> dict[str, Any]:
    """An agent at work (a row of `fleet --json`), as the page's card shows it: where it runs, and
    the task it is on with the two before and after, described (titles cut)."""
    run = next(r for r in state.runs if r.n == row["run"])
    return {
        **row,
        "id": f"{row['orchestration']}-{row['run']}",
        "host": host,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "around": [dict(t, title=title(t["title"])) for t in row["around"]],
    }
