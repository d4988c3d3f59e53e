"""What agent runs cost: the tokens a CLI reports, turned into USD with a price table per model.

Claude Code reports its cost itself; Codex and Gemini CLI report only tokens, so without prices no
budget would ever stop them. Prices are USD per million tokens: input, output, cached input read,
cache writes. specflowd ships defaults for the models of those CLIs (`DEFAULT_PRICES`, the providers'
list prices when this version was made: check them) and `[agent] prices` overrides or extends them.
A model is priced by its name, else by the longest listed prefix of it (`gpt-5-codex` by `gpt-5`).
A run whose model has no price adds nothing, and says which model it was, so `status` can tell.
Long-context surcharges and batch discounts are not modelled: the figure is an estimate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from specflowd.core.records import Check, record

MILLION = 1_000_000


@record
class TokenUsage:
    """Tokens of one model in one run. `input` counts the uncached input only. A value: never
    changed in place (`+` and `minus` make new ones)."""

    input: Annotated[int, Check(ge=0)] = 0
    output: Annotated[int, Check(ge=0)] = 0
    cache_read: Annotated[int, Check(ge=0)] = 0
    cache_write: Annotated[int, Check(ge=0)] = 0

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(input=self.input + other.input, output=self.output + other.output,
                          cache_read=self.cache_read + other.cache_read,
                          cache_write=self.cache_write + other.cache_write)

    def minus(self, other: TokenUsage) -> TokenUsage:
        """What was used since `other` was: for CLIs that report a session's running totals."""
        return TokenUsage(input=max(0, self.input - other.input), output=max(0, self.output - other.output),
                          cache_read=max(0, self.cache_read - other.cache_read),
                          cache_write=max(0, self.cache_write - other.cache_write))

    @property
    def total(self) -> int:
        return self.input + self.output + self.cache_read + self.cache_write


@record
class Price:
    """USD per million tokens; cached reads and cache writes cost the input price when not given."""

    input: Annotated[float, Check(ge=0)]
    output: Annotated[float, Check(ge=0)]
    cache_read: Annotated[float | None, Check(ge=0)] = None
    cache_write: Annotated[float | None, Check(ge=0)] = None


def _p(input: float, output: float, cache_read: float, cache_write: float | None = None) -> Price:
    return Price(input=input, output=output, cache_read=cache_read, cache_write=cache_write)


DEFAULT_PRICES: dict[str, Price] = {
    # OpenAI (Codex)
    "gpt-5": _p(1.25, 10.0, 0.125),
    "gpt-5-mini": _p(0.25, 2.0, 0.025),
    "gpt-5-nano": _p(0.05, 0.40, 0.005),
    "gpt-4.1": _p(2.0, 8.0, 0.50),
    "gpt-4.1-mini": _p(0.40, 1.60, 0.10),
    "o3": _p(2.0, 8.0, 0.50),
    "o4-mini": _p(1.10, 4.40, 0.275),
    "codex-mini": _p(1.50, 6.0, 0.375),
    # Google (Gemini CLI); prompts up to 200k tokens
    "gemini-2.5-pro": _p(1.25, 10.0, 0.31),
    "gemini-2.5-flash": _p(0.30, 2.50, 0.075),
    "gemini-2.5-flash-lite": _p(0.10, 0.40, 0.025),
    "gemini-2.0-flash": _p(0.10, 0.40, 0.025),
    "gemini-3-pro": _p(2.0, 12.0, 0.20),
    # Anthropic: Claude Code reports its own cost; these price a run that ended before saying it
    "claude-opus-4": _p(15.0, 75.0, 1.50, 18.75),
    "claude-opus-4-5": _p(5.0, 25.0, 0.50, 6.25),
    "claude-sonnet-4": _p(3.0, 15.0, 0.30, 3.75),
    "claude-haiku-4-5": _p(1.0, 5.0, 0.10, 1.25),
    "claude-3-5-haiku": _p(0.80, 4.0, 0.08, 1.0),
}


def price_for(model: str, prices: Mapping[str, Price]) -> Price | None:
    """The price of `model`: listed under its name, or the longest listed prefix of it."""
    name = model.strip().lower()
    table = {k.lower(): v for k, v in prices.items()}
    if name in table:
        return table[name]
    prefixes = [k for k in table if k and name.startswith(k)]
    return table[max(prefixes, key=len)] if prefixes else None


@record
class Estimate:
    usd: float
    unpriced: list[str]  # models that used tokens but have no price


def estimate(tokens: Mapping[str, TokenUsage], prices: Mapping[str, Price]) -> Estimate:
    """The cost of `tokens` (model -> usage) at `prices`."""
    usd = 0.0
    unpriced = []
    for model, used in tokens.items():
        price = price_for(model, prices)
        if price is None:
            if used.total:
                unpriced.append(model)
            continue
        usd += (used.input * price.input + used.output * price.output
                + used.cache_read * (price.input if price.cache_read is None else price.cache_read)
                + used.cache_write * (price.input if price.cache_write is None else price.cache_write)) / MILLION
    return Estimate(usd=round(usd, 6), unpriced=sorted(unpriced))


def price_table(overrides: Mapping[str, Price]) -> dict[str, Price]:
    """The shipped prices with `[agent] prices` on top."""
    return {**DEFAULT_PRICES, **overrides}


def total(tokens: Mapping[str, TokenUsage]) -> TokenUsage:
    out = TokenUsage()
    for used in tokens.values():
        out = out + used
    return out
