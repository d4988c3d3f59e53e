"""Shared machinery of the fake agent CLIs: scenario steps, per-directory sessions, real git work.

A scenario is a JSON file named by $FAKE_AGENT_SCENARIO:
  {"steps": [...], "outcome": "success", "cost": 0.01, "text": "Done", "reset": 1767225600}
or {"runs": [scenario, scenario, ...]}: the n-th invocation plays the n-th (the last repeats).
Steps: {"write": path, "content": s}, {"commit": message, "task": "T001"}, {"mark": "T001"},
{"events": n}, {"tool": name}, {"sleep": s}, {"wait_for_file": path}, {"record": path},
{"hang": true, "ignore_term": bool, "grandchild": bool}, {"crash": true}, {"garbage": text},
{"stderr": text}, {"exit": code}, {"forget_sessions": true}.
Outcomes: success, error, max_turns, budget, usage_limit, none (no result event).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

Emit = Callable[[dict[str, Any]], None]


def load() -> dict[str, Any]:
    path = os.environ.get("FAKE_AGENT_SCENARIO")
    if not path:
        return {"steps": [], "outcome": "success"}
    scenario = json.loads(Path(path).read_text())
    runs = scenario.get("runs")
    if not runs:
        return scenario
    counter = Path(path + ".count")
    n = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(n + 1))
    return runs[min(n, len(runs) - 1)]


def out(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def fail(message: str, code: int = 1) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
    raise SystemExit(code)


class Sessions:
    """Conversations kept under $HOME, like the real CLIs keep them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _file(self, session: str) -> Path:
        return self.folder / f"{session}.jsonl"

    def exists(self, session: str) -> bool:
        return self._file(session).exists()

    def open(self, resume: str | None, fork: bool) -> str | None:
        """The session to talk in: new, resumed, or forked; None when `resume` is unknown."""
        if resume and not self.exists(resume):
            return None
        session = resume if resume and not fork else str(uuid.uuid4())
        self.folder.mkdir(parents=True, exist_ok=True)
        if resume and fork:
            shutil.copyfile(self._file(resume), self._file(session))
        return session

    def append(self, session: str, prompt: str) -> None:
        with self._file(session).open("a") as f:
            f.write(json.dumps({"prompt": prompt, "cwd": os.getcwd()}) + "\n")


def per_directory(cli: str) -> Sessions:
    escaped = os.getcwd().replace("/", "-")
    return Sessions(Path(os.environ["HOME"]) / f".fake-{cli}" / "projects" / escaped)


def git(*args: str) -> str:
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout.strip()


def play(steps: list[dict[str, Any]], tool: Callable[[str, dict[str, Any]], None], text: Emit,
         prompt: str) -> int:
    """Do the steps for real in the working directory; returns the number of tool calls."""
    calls = 0
    for step in steps:
        if "write" in step:
            tool("Write", {"file_path": step["write"]})
            Path(step["write"]).parent.mkdir(parents=True, exist_ok=True)
            Path(step["write"]).write_text(step.get("content", ""))
        elif "commit" in step:
            trailer = f"Specflow-Task: {step['task']}" if step.get("task") else ""
            tool("Bash", {"command": f"git commit -m {step['commit']!r} -m {trailer!r}"})
            git("add", "-A")
            git("commit", "-q", "-m", step["commit"], *(["-m", trailer] if trailer else []))
        elif "mark" in step:
            # As the prompt says (SPEC section 9): a request to the daemon. With no daemon running,
            # do what the refusal says and commit the mark directly.
            sha = git("rev-parse", "HEAD")
            command = ["specflowd", "mark", step["mark"], "--done", "--evidence", sha]
            tool("Bash", {"command": " ".join(command)})
            asked = subprocess.run(command, capture_output=True, text=True)
            if asked.returncode != 0 and "--now" in asked.stderr:
                tool("Bash", {"command": " ".join([*command, "--now"])})
                subprocess.run([*command, "--now"], check=True)
            elif asked.returncode != 0:
                sys.stderr.write(asked.stderr)
                raise SystemExit(asked.returncode)
        elif "tool" in step:
            tool(step["tool"], {})
        elif "events" in step:
            # Like a real session: mostly text, every fourth a tool call (with its result).
            for i in range(step["events"]):
                if i % 4 == 3:
                    tool("Read", {"seq": i})
                else:
                    text({"seq": i})
        elif "sleep" in step:
            time.sleep(step["sleep"])
        elif "wait_for_file" in step:
            while not Path(step["wait_for_file"]).exists():
                time.sleep(0.01)
        elif "record" in step:
            Path(step["record"]).write_text(json.dumps({
                "argv": sys.argv, "cwd": os.getcwd(), "prompt": prompt, "pid": os.getpid(),
                "pgid": os.getpgid(0), "sid": os.getsid(0), "env": dict(os.environ)}))
        elif "hang" in step:
            hang(step)
        elif "crash" in step:
            sys.stdout.write('{"type":"assistant","message":{"content":[{"type":"te')
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        elif "garbage" in step:
            sys.stdout.write(step["garbage"] + "\n")
            sys.stdout.flush()
        elif "stderr" in step:
            sys.stderr.write(step["stderr"] + "\n")
            sys.stderr.flush()
        elif "exit" in step:
            raise SystemExit(step["exit"])
        elif "forget_sessions" in step:  # as if the CLI's session store were wiped meanwhile
            for store in Path(os.environ["HOME"]).glob(".fake-*"):
                shutil.rmtree(store)
        calls += "write" in step or "commit" in step or "mark" in step or "tool" in step
    return calls


def hang(step: dict[str, Any]) -> None:
    if step.get("grandchild"):
        # A helper the agent started, in the same group: it must die with the agent.
        subprocess.Popen([sys.executable, "-c", "import signal,time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                          "while True: time.sleep(60)"])
    if step.get("ignore_term"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        time.sleep(60)


def read_prompt(argument: str | None) -> str:
    piped = "" if sys.stdin.isatty() else sys.stdin.read()
    return "\n\n".join(p for p in (piped, argument) if p)
