#!/usr/bin/env python3
"""A fake `gemini` (Gemini CLI) for tests: headless `-p`, stream-json events, sessions per project."""

from __future__ import annotations

import argparse
import sys
import uuid
from datetime import UTC, datetime

import scenario

TURN_LIMIT_EXIT = 53


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # Gemini CLI (yargs, strict) names the unknown argument and exits 1.
        bad = message.split(": ", 1)[-1]
        scenario.fail(f"Unknown argument: {bad.lstrip('-')}" if "unrecognized" in message else message)


def parse(argv: list[str]) -> argparse.Namespace:
    p = Parser(prog="gemini", allow_abbrev=False, add_help=False)
    p.add_argument("-p", "--prompt")
    p.add_argument("-o", "--output-format", choices=["text", "json", "stream-json"], default="text")
    p.add_argument("-m", "--model")
    p.add_argument("-r", "--resume")
    p.add_argument("--approval-mode", choices=["default", "auto_edit", "yolo", "plan"])
    p.add_argument("--skip-trust", action="store_true")
    p.add_argument("--include-directories", action="append", default=[])
    p.add_argument("-y", "--yolo", action="store_true")
    p.add_argument("--allowed-tools", action="append", default=[])
    return p.parse_args(argv)


def now() -> str:
    return datetime.now(UTC).isoformat()


def main() -> None:
    args = parse(sys.argv[1:])
    prompt = scenario.read_prompt(args.prompt)
    sessions = scenario.per_directory("gemini")
    session = sessions.open(args.resume, fork=False)
    if session is None:
        scenario.fail(f'Error resuming session: Invalid session identifier "{args.resume}".')
    sessions.append(session, prompt)
    play = scenario.load()
    scenario.out({"type": "init", "timestamp": now(), "session_id": session, "model": args.model or "gemini-2.5-pro"})

    def tool(name: str, tool_input: dict) -> None:
        tool_id = uuid.uuid4().hex[:8]
        scenario.out({"type": "tool_use", "timestamp": now(), "tool_name": name, "tool_id": tool_id,
                      "parameters": tool_input})
        scenario.out({"type": "tool_result", "timestamp": now(), "tool_id": tool_id, "status": "success"})

    def text(payload: dict) -> None:
        scenario.out({"type": "message", "timestamp": now(), "role": "assistant", "content": str(payload),
                      "delta": True})

    calls = scenario.play(play.get("steps", []), tool, text, prompt)
    outcome = play.get("outcome", "success")
    if outcome == "none":
        raise SystemExit(play.get("exit", 0))
    stats = {"total_tokens": 1500, "input_tokens": 1200, "output_tokens": 300, "duration_ms": 10, "tool_calls": calls}
    if outcome == "success":
        text({"text": play.get("text", "Done")})
        scenario.out({"type": "result", "timestamp": now(), "status": "success", "stats": stats})
        raise SystemExit(0)
    if outcome == "max_turns":
        scenario.fail("Reached max session turns for this session.", TURN_LIMIT_EXIT)
    message = ("Quota exceeded for quota metric 'Gemini requests'. Please retry in 30 minutes."
               if outcome == "usage_limit" else play.get("text", "An internal error occurred."))
    scenario.out({"type": "error", "timestamp": now(), "severity": "error", "message": message})
    scenario.out({"type": "result", "timestamp": now(), "status": "error", "error": {"type": "Error", "message": message},
                  "stats": stats})
    raise SystemExit(1)


if __name__ == "__main__":
    main()
