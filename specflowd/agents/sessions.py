"""Which agent session a run starts from: a fresh one, the previous batch's, or a fork of a failed one."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel


class SessionPolicy(StrEnum):
    FRESH = "fresh"  # default: long sessions rot their context
    CONTINUE = "continue"


class SessionChoice(BaseModel):
    resume_session_id: str | None = None
    fork_session: bool = False


def session_for(policy: SessionPolicy, previous: str | None, *, healing: str | None = None) -> SessionChoice:
    """`previous`: the last batch's session; `healing`: the failed run's session a healer forks."""
    if healing:
        return SessionChoice(resume_session_id=healing, fork_session=True)
    if policy is SessionPolicy.CONTINUE and previous:
        return SessionChoice(resume_session_id=previous)
    return SessionChoice()
