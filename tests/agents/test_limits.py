"""Usage-limit messages and the reset time they give."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from specflowd.agents.limits import is_usage_limit, reset_time

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("message", "expected"), [
    ("Claude AI usage limit reached|1767225600", datetime(2026, 1, 1, 0, 0, tzinfo=UTC)),
    ("5-hour limit reached ∙ resets 3pm", datetime(2026, 1, 1, 15, 0, tzinfo=UTC)),
    ("usage limit reached, resets at 9:30am", datetime(2026, 1, 2, 9, 30, tzinfo=UTC)),
    ("limit reached · resets 3pm (Europe/Berlin)", datetime(2026, 1, 1, 14, 0, tzinfo=UTC)),
    ("usage limit; try again in 45 minutes", datetime(2026, 1, 1, 12, 45, tzinfo=UTC)),
    ("rate limit reached, reset at 2026-01-01T18:00:00Z", datetime(2026, 1, 1, 18, 0, tzinfo=UTC)),
    # Codex says the minute only: the minute we are in lifts at its end, an earlier one tomorrow.
    ("You've hit your usage limit. ... or try again at 12:00 PM.", datetime(2026, 1, 1, 12, 1, tzinfo=UTC)),
    ("You've hit your usage limit. ... or try again at 11:59 AM.", datetime(2026, 1, 2, 11, 59, tzinfo=UTC)),
    ("usage limit reached", None),
    ("resets 25pm", None),
])
def test_reset_time(message: str, expected: datetime | None) -> None:
    assert reset_time(message, NOW) == expected


def test_is_usage_limit() -> None:
    assert is_usage_limit("Claude AI usage limit reached|1767225600")
    assert is_usage_limit("429 Too Many Requests")
    assert is_usage_limit('API Error: {"type":"error","error":{"type":"rate_limit_error"}}')
    assert is_usage_limit("Rate limit exceeded, retry later")
    assert not is_usage_limit("SyntaxError: unexpected token")
    assert not is_usage_limit("Added rate limiting to the API; see issue #429")
