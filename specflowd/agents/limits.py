"""Recognising usage-limit messages of agent CLIs and the reset time they announce."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Narrow on purpose: a failed run's final text is the agent's own words, which may well be about
# the rate limiter it was asked to build.
_LIMIT = re.compile(
    r"usage limit|rate[ _-]?limit(?:ed|_error|\s+(?:exceeded|reached|hit))|quota exceeded|exceeded your current quota"
    r"|resource[_ ]exhausted|too many requests", re.I)
_EPOCH = re.compile(r"(?:\||\breset\w*\s+(?:at\s+)?)(\d{10})\b", re.I)
_ISO = re.compile(r"\b(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2})?(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?)")
_IN = re.compile(r"\bin\s+(?:(\d+)\s*h(?:ours?|rs?)?)?[\s,]*(?:(\d+)\s*m(?:inutes?|ins?)?)?", re.I)
_CLOCK = re.compile(
    r"\b(?:resets?|try again)\s+(?:at\s+)?(\d{1,2})(?::(\d{2}))?\s*([ap]\.?m\.?)?(?:\s*\(([\w/+-]+)\))?", re.I)


def is_usage_limit(message: str) -> bool:
    return bool(_LIMIT.search(message))


def reset_time(message: str, now: datetime) -> datetime | None:
    """The moment a usage limit resets, in UTC, when `message` says it; `now` anchors relative times."""
    if m := _EPOCH.search(message):
        return datetime.fromtimestamp(int(m.group(1)), UTC)
    if m := _ISO.search(message):
        stamp = datetime.fromisoformat(m.group(1).replace("Z", "+00:00"))
        return (stamp if stamp.tzinfo else stamp.replace(tzinfo=now.tzinfo or UTC)).astimezone(UTC)
    if (m := _IN.search(message)) and (m.group(1) or m.group(2)):
        return (now + timedelta(hours=int(m.group(1) or 0), minutes=int(m.group(2) or 0))).astimezone(UTC)
    if m := _CLOCK.search(message):
        return _next_clock(now, int(m.group(1)), int(m.group(2) or 0), m.group(3), m.group(4))
    return None


def _next_clock(now: datetime, hour: int, minute: int, meridiem: str | None, zone: str | None) -> datetime | None:
    if meridiem:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if meridiem.lower().startswith("p") else 0)
    if hour > 23 or minute > 59:
        return None
    tz = now.tzinfo or UTC
    if zone:
        try:
            tz = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            return None
    local = now.astimezone(tz)
    at = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    # A clock time without a date means its next occurrence; but a time said to the minute (Codex:
    # "try again at 4:54 AM") may be the minute we are in: then it lifts by that minute's end.
    if at + timedelta(minutes=1) <= local:
        at += timedelta(days=1)
    elif at <= local:
        at += timedelta(minutes=1)
    return at.astimezone(UTC)
