"""Aider (`aider --message-file`): its command line; it prints no JSON, so the exit code decides."""

from __future__ import annotations

from pathlib import Path

from specflowd.agents.result import AgentRequest
from specflowd.agents.stream import Adapter, common_flags, text_line


def argv(req: AgentRequest, prompt_file: Path) -> list[str]:
    # Commits are the agent's to make with the Specflow-Task trailer, not aider's own.
    return [*req.command, "--message-file", str(prompt_file), "--yes-always", "--no-auto-commits",
            "--no-pretty", *common_flags(req, {"model": "--model"})]


ADAPTER = Adapter(kind="aider", argv=argv, parse_line=text_line, prompt_on_stdin=False, needs_final=False)
