"""Which adapter serves which `[agent] kind`."""

from __future__ import annotations

from specflowd.agents import aider, claude, codex, command, gemini
from specflowd.agents.stream import Adapter

ADAPTERS: dict[str, Adapter] = {a.kind: a for a in (
    claude.ADAPTER, codex.ADAPTER, gemini.ADAPTER, aider.ADAPTER, command.ADAPTER)}


def adapter_for(kind: str) -> Adapter:
    return ADAPTERS[kind]
