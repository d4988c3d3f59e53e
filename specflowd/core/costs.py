"""A run's cost, from what its CLI said: its own share where the CLI reports its session's running
totals, and its tokens priced where the CLI reports no money. Pure; used by the runner when a run ends."""

from __future__ import annotations

from dataclasses import replace

from specflowd.core.config import AgentConfig
from specflowd.core.events import RunResult
from specflowd.core.prices import estimate, price_table
from specflowd.core.state import AgentRun, OrchestrationState


def session_end(state: OrchestrationState, session: str | None, before: int) -> AgentRun | None:
    """The last run (before run `before`) that ended in `session`: what its CLI said of it then."""
    if session is None:
        return None
    return next((r for r in reversed(state.runs) if r.n < before and r.session_id == session and r.ended_at), None)


def own_share(result: RunResult, continued: AgentRun | None) -> RunResult:
    """A run's own cost and tokens, for a CLI that reports its session's running totals (Claude
    Code's total_cost_usd and modelUsage, Codex's usage grow across `--resume` and forks): those
    totals less what the session it continued had reached; the totals are kept for the next run."""
    base_cost = continued.session_cost_usd if continued and continued.session_cost_usd is not None else 0.0
    base_tokens = continued.session_tokens if continued else {}
    tokens = {m: used.minus(base_tokens[m]) if m in base_tokens else used for m, used in result.tokens.items()}
    return replace(result, session_cost_usd=result.cost_usd, session_tokens=result.tokens, tokens=tokens,
                   cost_usd=round(max(0.0, result.cost_usd - base_cost), 6))


def priced(result: RunResult, cfg: AgentConfig) -> RunResult:
    """The result with its cost worked out from its tokens when its CLI did not say it (`cost_estimated`
    on the way in means just that). Tokens of no named model are the configured model's."""
    if not result.cost_estimated:
        return result
    tokens = {(model or cfg.model or "the CLI's default model"): used for model, used in result.tokens.items()}
    cost = estimate(tokens, price_table(cfg.prices))
    return replace(result, tokens=tokens, cost_usd=cost.usd, unpriced=cost.unpriced, cost_estimated=bool(tokens))
