#!/usr/bin/env python3
"""A fake `claude` (Claude Code) for tests: real flags, real stream-json, sessions per directory."""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid

import scenario


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # Claude Code (commander.js) names the unknown option and exits 1.
        bad = message.split(": ", 1)[-1]
        scenario.fail(f"error: unknown option '{bad}'" if "unrecognized" in message else f"error: {message}")


def parse(argv: list[str]) -> argparse.Namespace:
    p = Parser(prog="claude", allow_abbrev=False, add_help=False)
    p.add_argument("prompt", nargs="?")
    p.add_argument("-p", "--print", action="store_true")
    p.add_argument("--output-format", choices=["text", "json", "stream-json"], default="text")
    p.add_argument("--input-format", choices=["text", "stream-json"], default="text")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--model")
    p.add_argument("--fallback-model")
    p.add_argument("-r", "--resume")
    p.add_argument("--fork-session", action="store_true")
    p.add_argument("--session-id")
    p.add_argument("--allowedTools", "--allowed-tools", action="append", default=[])
    p.add_argument("--disallowedTools", "--disallowed-tools", action="append", default=[])
    p.add_argument("--max-turns", type=int)
    p.add_argument("--max-budget-usd", type=float)
    p.add_argument("--append-system-prompt")
    p.add_argument("--permission-mode", choices=["acceptEdits", "auto", "bypassPermissions", "manual", "dontAsk",
                                                 "plan"])
    p.add_argument("--add-dir", action="append", default=[])
    p.add_argument("--dangerously-skip-permissions", action="store_true")
    return p.parse_args(argv)


def main() -> None:
    args = parse(sys.argv[1:])
    if args.print and args.output_format == "stream-json" and not args.verbose:
        scenario.fail("Error: When using --print, --output-format=stream-json requires --verbose")
    if args.fallback_model and args.fallback_model == args.model:
        scenario.fail("Error: Fallback model cannot be the same as the main model.")
    prompt = scenario.read_prompt(args.prompt)
    if args.print and not prompt:
        scenario.fail("Error: Input must be provided either through stdin or as a prompt argument when using --print")
    sessions = scenario.per_directory("claude")
    session = sessions.open(args.resume, args.fork_session)
    if session is None:
        scenario.fail(f"No conversation found with session ID: {args.resume}")
    sessions.append(session, prompt)
    play = scenario.load()
    began = time.monotonic()
    model = args.model or "claude-sonnet-4-5"
    scenario.out({"type": "system", "subtype": "init", "session_id": session, "model": model, "cwd": os.getcwd(),
                  "tools": ["Bash", "Edit", "Read", "Write"], "permissionMode": args.permission_mode or "default"})

    def tool(name: str, tool_input: dict) -> None:
        use = f"toolu_{uuid.uuid4().hex[:12]}"
        scenario.out({"type": "assistant", "session_id": session, "message": {
            "role": "assistant", "content": [{"type": "tool_use", "id": use, "name": name, "input": tool_input}]}})
        scenario.out({"type": "user", "session_id": session, "message": {
            "role": "user", "content": [{"type": "tool_result", "tool_use_id": use, "content": "ok"}]}})

    def text(payload: dict) -> None:
        scenario.out({"type": "assistant", "session_id": session, "message": {
            "role": "assistant", "content": [{"type": "text", "text": str(payload)}]}})

    turns = scenario.play(play.get("steps", []), tool, text, prompt) + 1
    cost = float(play.get("cost", 0.01))
    outcome = play.get("outcome", "success")
    if args.max_turns is not None and turns > args.max_turns:
        outcome, turns = "max_turns", args.max_turns
    if args.max_budget_usd is not None and cost > args.max_budget_usd:
        outcome = "budget"
    if outcome == "none":
        raise SystemExit(play.get("exit", 0))
    subtype, is_error, result = {
        "success": ("success", False, play.get("text", "Done")),
        "error": ("error_during_execution", True, play.get("text", "Execution failed")),
        "max_turns": ("error_max_turns", True, None),
        "budget": ("error_max_budget_usd", True, None),
        # `reset_in_s`: a reset that many seconds after the run reports it (however loaded the machine).
        "usage_limit": ("success", True, "Claude AI usage limit reached|"
                        f"{int(time.time()) + play['reset_in_s'] if 'reset_in_s' in play else play.get('reset', 1767225600)}"),
    }[outcome]
    event = {"type": "result", "subtype": subtype, "is_error": is_error,
             "duration_ms": int((time.monotonic() - began) * 1000), "num_turns": turns, "session_id": session,
             "total_cost_usd": cost}
    if result is not None:
        event["result"] = result
    scenario.out(event)
    raise SystemExit(1 if is_error else 0)


if __name__ == "__main__":
    main()
