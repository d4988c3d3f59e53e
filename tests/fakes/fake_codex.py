#!/usr/bin/env python3
"""A fake `codex` (OpenAI Codex CLI) for tests: `exec --json`, `exec resume|fork <id>`, real JSONL events."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import scenario


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # Codex (clap) rejects an unknown flag with exit 2.
        bad = message.split(": ", 1)[-1]
        scenario.fail(f"error: unexpected argument '{bad}' found" if "unrecognized" in message else f"error: {message}", 2)


def parse(argv: list[str]) -> argparse.Namespace:
    if not argv or argv[0] != "exec":
        scenario.fail("error: this fake only knows `codex exec`", 2)
    # The flags of codex-cli 0.171 (`--full-auto` is gone: it exits 2 on it).
    p = Parser(prog="codex exec", allow_abbrev=False, add_help=False)
    p.add_argument("--json", action="store_true")
    p.add_argument("--dangerously-bypass-approvals-and-sandbox", action="store_true")
    p.add_argument("-m", "--model")
    p.add_argument("-c", "--config", action="append", default=[])
    p.add_argument("-s", "--sandbox", choices=["read-only", "workspace-write", "danger-full-access"])
    p.add_argument("--add-dir", action="append", default=[])
    p.add_argument("--skip-git-repo-check", action="store_true")
    p.add_argument("rest", nargs="*")
    return p.parse_args(argv[1:])


def main() -> None:
    args = parse(sys.argv[1:])
    rest = list(args.rest)
    resume, fork = None, False
    if rest[:1] in (["resume"], ["fork"]):
        if len(rest) < 2:
            scenario.fail(f"error: {rest[0]} needs a SESSION_ID", 2)
        fork = rest[0] == "fork"
        resume, rest = rest[1], rest[2:]
    prompt = scenario.read_prompt(None) if rest in ([], ["-"]) else " ".join(rest)
    if not prompt:
        scenario.fail("No prompt provided. Either specify one as an argument or pipe the prompt into stdin.")
    # Codex keeps sessions in one place for every directory.
    sessions = scenario.Sessions(Path(os.environ["HOME"]) / ".fake-codex" / "sessions")
    thread = sessions.open(resume, fork=fork)
    if thread is None:
        scenario.fail(f"Error: thread/resume failed: no rollout found for thread id {resume}")
    sessions.append(thread, prompt)
    play = scenario.load()
    scenario.out({"type": "thread.started", "thread_id": thread})
    scenario.out({"type": "turn.started"})
    counter = iter(range(1 << 30))

    def tool(name: str, tool_input: dict) -> None:
        item = {"id": f"item_{next(counter)}", "type": "command_execution",
                "command": tool_input.get("command", name), "aggregated_output": "", "exit_code": 0,
                "status": "completed"}
        if name == "Write":
            item = {"id": item["id"], "type": "file_change", "changes": [
                {"path": tool_input["file_path"], "kind": "add"}], "status": "completed"}
        scenario.out({"type": "item.started", "item": {**item, "status": "in_progress"}})
        scenario.out({"type": "item.completed", "item": item})

    def text(payload: dict) -> None:
        scenario.out({"type": "item.completed", "item": {"id": f"item_{next(counter)}", "type": "agent_message",
                                                          "text": str(payload)}})

    scenario.play(play.get("steps", []), tool, text, prompt)
    outcome = play.get("outcome", "success")
    if outcome == "none":
        raise SystemExit(play.get("exit", 0))
    if outcome == "success":
        text({"text": play.get("text", "Done")})
        scenario.out({"type": "turn.completed", "usage": {"input_tokens": 1200, "cached_input_tokens": 200,
                                                          "output_tokens": 300}})
        raise SystemExit(0)
    message = ("You've hit your usage limit. Upgrade to Pro or try again in 2 hours 5 minutes."
               if outcome == "usage_limit" else play.get("text", "stream disconnected before completion"))
    scenario.out({"type": "error", "message": message})
    scenario.out({"type": "turn.failed", "error": {"message": message}})
    raise SystemExit(1)


if __name__ == "__main__":
    main()
