"""The built-in demo agent: offline and deterministic, it does each task of its prompt for real in git.

Run as `python -m specflowd.agents.demo [--no-mark]` with the `command` kind: the prompt comes on
stdin, progress lines go to stdout, and the last stdout line is the JSON result.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

# A task line of specflowd's prompts: box, the task's text, and the exact command that marks it.
_TASK = re.compile(r"^\s*[-*+] \[[ ~]\] (.*) \(mark: specflowd mark (.+?) --done\)\s*$", re.M)
_LEAD = re.compile(r"^(?:T\d{3,}[a-z]?|\d+(?:\.\d+)*\.?)\s+|\[[^\]]*\]\s*")
COST_PER_TASK = 0.0125
FOLDER = Path("specflow-demo")


def tasks_in(prompt: str, wanted: list[str]) -> list[tuple[str, str]]:
    """Open tasks of the prompt as (id, title), limited to `wanted` (SPECFLOW_TASKS) when given."""
    found = [(shlex.split(m.group(2))[0], _title(m.group(1))) for m in _TASK.finditer(prompt)]
    return [t for t in found if not wanted or t[0] in wanted]


def _title(text: str) -> str:
    """The task's text without its id and tags."""
    while m := _LEAD.match(text):
        text = text[m.end():]
    return text.strip()


def _run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()


def do_task(task: str, title: str, mark: bool) -> str:
    """Write the task's file, commit it with the trailer, mark it; returns the commit."""
    path = FOLDER / f"{task}.md"
    path.parent.mkdir(exist_ok=True)
    # The title is data from the task list: printable characters only, in the file and the message.
    title = "".join(c if c.isprintable() else " " for c in title).strip()
    path.write_text(f"# {task}\n\n{title}\n")
    _run("git", "add", "--", str(path))
    if _run("git", "status", "--porcelain", "--", str(path)):
        _run("git", "commit", "-q", "-m", f"{task}: {title or 'demo work'}", "-m", f"Specflow-Task: {task}")
        sha = _run("git", "rev-parse", "HEAD")
    else:  # done by an earlier run (a follow-up or a healer sees it again): nothing new to commit
        sha = _run("git", "log", "-1", "--format=%H", "--", str(path))
    if mark:
        # --wait: the mark is committed before this run ends, so the batch is confirmed at once.
        _run("specflowd", "mark", task, "--done", "--evidence", sha, "--wait", "30")
    return sha


def fail_once(task: str) -> bool:
    """`specflowd demo` makes one task fail the first time (a marker in the worktree's git dir
    remembers), so that a healer run is seen finishing the batch."""
    if os.environ.get("SPECFLOWD_DEMO_FAIL_ONCE") != task:
        return False
    marker = Path(_run("git", "rev-parse", "--git-dir")) / f"specflowd-demo-failed-{task}"
    if marker.exists():
        return False
    marker.write_text("failed once\n")
    return True


def main(argv: list[str]) -> int:
    mark = "--no-mark" not in argv
    prompt = sys.stdin.read()
    tasks = tasks_in(prompt, os.environ.get("SPECFLOW_TASKS", "").split())
    session = "demo-" + hashlib.sha256(prompt.encode()).hexdigest()[:12]
    done: list[str] = []
    try:
        for task, title in tasks:
            if fail_once(task):
                print(json.dumps({"ok": False, "session_id": session, "cost_usd": COST_PER_TASK * len(done),
                                  "turns": len(done), "result": f"{task}: the demo agent fails here once, on purpose"}))
                return 1
            # A slower pace on request, for tests that need to catch an agent at work.
            time.sleep(float(os.environ.get("SPECFLOWD_DEMO_TASK_S", "0")))
            print(f"{task}: done in {do_task(task, title, mark)[:12]}", flush=True)
            done.append(task)
    except subprocess.CalledProcessError as e:
        print(json.dumps({"ok": False, "session_id": session, "cost_usd": COST_PER_TASK * len(done),
                          "turns": len(done), "result": f"{' '.join(e.cmd)} failed: {e.stderr.strip()}"}))
        return 1
    print(json.dumps({"ok": True, "session_id": session, "cost_usd": round(COST_PER_TASK * len(done), 4),
                      "turns": len(done), "result": f"Completed {', '.join(done) or 'nothing'}"}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
