"""Budgets in USD (SPEC §6): what is left for the next agent run, and whether that can cover one.

A run may start only when the tightest of its budgets has at least `minimum_run_usd` left: the
larger of one cent and 1% of the per-batch budget. Below that no agent does useful work before
its CLI stops it, so starting it would only spend money. The run is then given what is left as
its own cap (`max_budget_usd`), so the total is exceeded by at most what one run overshoots.
Per batch: every run of the batch (work, follow-up, heal) since `recover retry` last reset it;
design and analyze runs count per phase against the same per-batch figure.
"""

from __future__ import annotations

from specflowd.core.records import record
from specflowd.core.state import OrchestrationState
from specflowd.core.vocab import Phase

FLOOR_USD = 0.01
MIN_SHARE = 0.01


@record
class Allowance:
    """What the next run may spend, and which budget that figure comes from."""

    usd: float
    binding: str  # "total", "batch 2", "healing", "design" ...
    covers: bool


def minimum_run_usd(state: OrchestrationState) -> float:
    return max(FLOOR_USD, MIN_SHARE * state.config.budget.per_batch)


def allowance(state: OrchestrationState, phase: Phase, batch: int | None, heal: bool) -> Allowance:
    budget = state.config.budget
    left: list[tuple[float, str]] = [(budget.total - state.total_cost_usd, "total")]
    if batch is not None:
        b = state.batches[batch - 1]
        left.append((budget.per_batch - (b.cost_usd - b.cost_at_retry), f"batch {batch}"))
    else:
        spent = sum(r.cost_usd for r in state.runs if r.phase == phase)
        left.append((budget.per_batch - spent, phase.value))
    if heal:
        left.append((budget.healing - state.healing_cost_usd, "healing"))
    usd, binding = min(left)
    usd = max(0.0, round(usd, 6))
    return Allowance(usd=usd, binding=binding, covers=usd >= minimum_run_usd(state))


def describe_stop(state: OrchestrationState, a: Allowance) -> str:
    """Why no run can start: the budget by name, with what it allows and what is left."""
    budget = state.config.budget
    limit = {"total": budget.total, "healing": budget.healing}.get(a.binding, budget.per_batch)
    return (f"{a.binding} budget reached: ${a.usd:.2f} left of ${limit:.2f}, "
            f"less than the ${minimum_run_usd(state):.2f} a run needs")
