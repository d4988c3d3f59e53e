"""A daemon SIGKILLed at random moments while marks pour in must recover from whatever its crash left
(the branch ahead of the worktree's index, a temp file, a lock) by itself, and answer every request
exactly once, refusing none that is valid. The daemon is killed with its git children, as
`systemctl kill` or the OOM killer would, so that a kill can land between a commit and its index
refresh."""

from __future__ import annotations

import json
import random
import re
import subprocess
import time
from pathlib import Path

from tests.conftest import git, wait_for
from tests.daemon.conftest import make_project

TASKS = "# Tasks\n\n## All\n\n" + "".join(f"- [ ] T{i:03d} task {i}\n" for i in range(1, 21))
MARKS = 1000
KILLS = 25
TEMP = re.compile(r"^\..+\.(\d+\.[0-9a-f]{8}\.tmp|specflowd-tmp)$")


def test_a_thousand_marks_through_25_sigkills(repo: Path, start_daemon) -> None:
    project = make_project(repo, tasks=TASKS)
    specflow = project / ".specflow"
    rng = random.Random(11)
    d = start_daemon(project)
    daemons = [d]
    names = [f"k{i:04d}" for i in range(MARKS)]
    for i, name in enumerate(names):
        status = "done" if (i // 20) % 2 == 0 else "pending"
        d.drop({"action": "mark", "spec": "demo", "task": f"T{1 + i % 20:03d}", "status": status}, f"{name}.json")
    answered = lambda: len(list((specflow / "responses").glob("k*.json")))  # noqa: E731
    for k in range(KILLS):
        # A kill after a random share of the work, so that it lands anywhere in a commit.
        target = min(MARKS - 1, (k + 1) * MARKS // (KILLS + 2) + rng.randrange(-10, 10))
        wait_for(lambda t=target: answered() >= t, 120, message=f"{target} answers before kill {k + 1}")
        # Not synchronisation: the workload. An answer lands as one mark ends; the kill then falls
        # anywhere in the next one (about 15 ms: reading, objects, ref, files, index, answer).
        time.sleep(rng.uniform(0, 0.03))
        daemons[-1].kill_group()
        daemons.append(start_daemon(project))
    wait_for(lambda: answered() == MARKS and not list((specflow / "requests").glob("k*.json")), 240,
             message="every request answered and filed")
    answers = [json.loads((specflow / "responses" / f"{n}.json").read_text()) for n in names]
    refused = [a for a in answers if not a["ok"]]
    assert refused == [], refused[:3]
    filed = sorted(p.name for p in (specflow / "requests" / "done").iterdir())
    assert filed == [f"{n}.json" for n in names]  # each once: no `~2` copy of a request handled twice
    assert not list((specflow / "requests" / "failed").iterdir())
    logs = "".join(x.log() for x in daemons)
    for name in names:
        # The file name is quoted in the log (it may hold anything).
        assert f"request {name}: mark ok" in logs or f"request {name} ('{name}.json'): answered before" in logs, name
    worktree = specflow / "design-docs"
    assert git(worktree, "status", "--porcelain") == ""
    # A commit written just before a kill, whose ref update never happened, is dangling: harmless,
    # and git gc prunes it. Anything else fsck says is damage.
    fsck = subprocess.run(["git", "fsck", "--no-progress", "--no-dangling"], cwd=project, capture_output=True, text=True)
    assert fsck.returncode == 0 and not fsck.stdout.strip() and not fsck.stderr.strip(), fsck.stdout + fsck.stderr
    leftovers = [p for p in [*worktree.rglob(".*"), *specflow.rglob(".*")] if TEMP.match(p.name)]
    assert leftovers == []
    # The task list ends as the last mark of each task says.
    branch = git(project, "show", "helix-design-docs:specs/demo/progress.md")
    last_round_done = ((MARKS - 1) // 20) % 2 == 0
    assert branch.count("- [x]") == (20 if last_round_done else 0)
