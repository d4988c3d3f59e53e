"""The figures of README's Reliability section, regenerated: runs the reliability suite (with its
long variants), the crash test and the load test, and prints the table as Markdown.

Run: python3 tests/bench/reliability.py
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

from common import ENV, ROOT

# Each class of hole found when specflowd was attacked (issue 11), and the tests that keep it shut.
HOLES = [
    ("A task list that is a link (a local `ln -s`, a pulled commit adding one), a linked folder, a folder or "
     "a FIFO, through the daemon's hand-edit path and `mark --now`: refused by name, nothing committed, the "
     "linked secret in no object of the repository", ["tests/e2e/reliability/test_symlinks.py"]),
    ("1,000 marks while the daemon is SIGKILLed with its git children 25 times; every state a crash leaves "
     "(branch ahead of the index, temp files, dead locks) made by hand: each request answered once, none "
     "refused, worktree clean, fsck clean, no temp file left, repairs shown by doctor",
     ["tests/e2e/reliability/test_kill_storm.py", "tests/repo/test_crash_states.py"]),
    ("Agent output (a key in its stderr) never in a commit; everything under .specflow/ 0700/0600 under "
     "umask 002; links planted where answers go replaced, never written through",
     ["tests/e2e/reliability/test_privacy.py"]),
    ("OSC 52, OSC 0, ESC[2J and `[/red]` in headings, tasks, agent output, commit subjects and file names: "
     "text in status, list, plan, log, fleet, mark, status --watch and the daemon's log; JSON exact",
     ["tests/e2e/reliability/test_terminal.py"]),
    ("`init` in a SHA-256 repository, with hooks it cannot chain (twice), with hooks turned off: the "
     "repository exactly as before (refs, worktrees, fsck, every file), or hooks skipped with a note",
     ["tests/ops/test_init.py"]),
    ("A 0-byte save and a mass removal held back (status says so), a deleted lock file, a request id reused "
     "for other content, contradicting flags, a 300-character file name",
     ["tests/e2e/reliability/test_small_faults.py"]),
    ("GIT_DIR, GIT_WORK_TREE and GIT_INDEX_FILE set in the daemon's environment (a hook, a wrapper), and "
     "secrets in it: agents' and verify's commits stay in the project; agents see only what their CLI needs "
     "and what [agent] env_pass names", ["tests/e2e/orchestration/test_agent_runs.py"]),
]


def run(cmd: list[str]) -> tuple[int, str, float]:
    t = time.monotonic()
    r = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr, time.monotonic() - t


def passed(out: str) -> str:
    m = re.search(r"(\d+) passed", out)
    failed = re.search(r"(\d+) failed", out)
    return f"{m.group(1) if m else 0} passed" + (f", {failed.group(1)} FAILED" if failed else "")


def value(out: str, label: str) -> str:
    m = re.search(rf"^{re.escape(label)}\s+(.+?)\s*$", out, re.M)
    return m.group(1) if m else "?"


def main() -> None:
    py = sys.executable
    rows = []
    cmd = [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/e2e/reliability/test_hostile_requests.py"]
    code, out, _ = run(cmd)
    rows.append(("Hostile requests: 10,000 generated (bytes, JSON, TOML) through the validator, plus "
                 "hand-made cases and 15 nasty files through a live daemon, each answered once",
                 passed(out), " ".join(cmd[1:])))
    cmd = [py, "tests/bench/bench_crash.py", "--kills", "25"]
    code, out, took = run(cmd)
    rows.append(("Daemon SIGKILLed at random moments during an orchestration of 30 tasks in 5 batches",
                 f"{value(out, 'SIGKILLs')} kills, {value(out, 'tasks done in the feed')} tasks done once each, "
                 f"fsck {value(out, 'git fsck')}, {value(out, 'orphan agent processes')} orphans: "
                 f"{'PASS' if 'result: PASS' in out else 'FAIL'}", " ".join(cmd[1:])))
    cmd = [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--runslow", "tests/e2e/reliability/test_concurrency.py"]
    code, out, _ = run(cmd)
    rows.append(("Marks through the daemon racing 200 external commits and a person's edit: 1,000 (and 200) "
                 "marks, none lost", passed(out), " ".join(cmd[1:])))
    cmd = [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/e2e/reliability/test_faults.py",
           "tests/e2e/reliability/test_task_text.py"]
    code, out, _ = run(cmd)
    rows.append(("Faults injected (full disk, worktree and branch removed, locks, SIGTERM-proof agent, "
                 "trampled task list, clock jumps) and hostile task text", passed(out), " ".join(cmd[1:])))
    for what, files in HOLES:
        cmd = [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", *files]
        code, out, _ = run(cmd)
        rows.append((what, passed(out), " ".join(cmd[1:])))
    cmd = [py, "tests/bench/bench_load.py"]
    code, out, _ = run(cmd)
    rows.append(("One daemon, 50 projects, 200 orchestrations: start to READY / memory / idle CPU over 30 s",
                 f"{value(out, 'start to READY=1')} / {value(out, 'resident memory at READY / after idling')} / "
                 f"{value(out, 'idle CPU over 30 s')}", " ".join(cmd[1:])))
    print("| what | result | command |")
    print("| --- | --- | --- |")
    for what, result, command in rows:
        print(f"| {what} | {result} | `python3 {command}` |")


if __name__ == "__main__":
    main()
