"""Benchmark of issue 2: mark throughput against plain `git commit -qam`, parse + plan of a
5,000-task file, and `specflowd log -n 50 --json` on a 10,000-commit branch.

Run: python3 tests/bench/bench_marks.py [--marks N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ENV, ROOT, fast_history, median, ms, pct, run, table, task_file, times

from specflowd.core.plan import make_plan
from specflowd.core.tasklist import Mark, parse
from specflowd.core.vocab import TaskStatus
from specflowd.ops.init import initialize
from specflowd.repo.designdocs import DesignDocs
from specflowd.repo.marks import mark
from specflowd.repo.project import locate

SPEC = "bench"
PATH = f"specs/{SPEC}/progress.md"


def toggle(data: bytes, task: str) -> bytes:
    at = data.index(b"] " + task.encode()) - 1
    box = b"x" if data[at:at + 1] == b" " else b" "
    return data[:at] + box + data[at + 1:]


def setup(base: Path, data: bytes, commits: int) -> tuple[Path, Path]:
    project = base / "project"
    project.mkdir()
    run(["git", "init", "-q", "-b", "main"], project)
    run(["git", "commit", "-q", "--allow-empty", "-m", "initial"], project)
    proj = locate(project)
    initialize(proj)
    tip = run(["git", "rev-parse", "refs/heads/helix-design-docs"], project).strip()
    fast_history(project, "refs/heads/helix-design-docs", commits, {PATH: data}, tip)
    wt = proj.design_docs
    run(["git", "reset", "-q", "--hard"], wt)
    (proj.specflow_dir / "design-docs.synced").write_text(run(["git", "rev-parse", "HEAD"], wt))
    plain = base / "plain"
    plain.mkdir()
    run(["git", "init", "-q", "-b", "main"], plain)
    fast_history(plain, "refs/heads/main", commits, {PATH: data}, None)
    run(["git", "reset", "-q", "--hard"], plain)
    return project, plain


def bench_marks(project: Path, plain: Path, n: int) -> list[tuple[str, ...]]:
    docs = DesignDocs(locate(project))
    plain_file = plain / PATH
    ids = [f"T{i:04d}" for i in range(1, n + 1)]
    ours: list[float] = []
    theirs: list[float] = []
    block = 25
    for start in range(0, n, block):  # alternate blocks so drift hits both sides alike
        for task in ids[start:start + block]:
            t = time.perf_counter()
            plain_file.write_bytes(toggle(plain_file.read_bytes(), task))
            subprocess.run(["git", "commit", "-qam", f"{task} done"], cwd=plain, check=True, env=ENV)
            theirs.append(time.perf_counter() - t)
        for task in ids[start:start + block]:
            t = time.perf_counter()
            outcome = mark(docs, SPEC, [Mark(task, TaskStatus.DONE)])
            ours.append(time.perf_counter() - t)
            assert outcome.commit is not None
    status = run(["git", "status", "--porcelain"], docs.worktree)
    assert status == "", f"design-docs worktree not clean: {status}"
    cli_ids = iter(f"T{i:04d}" for i in range(4000, 5001))
    cli = times(lambda: run([sys.executable, "-m", "specflowd", "mark", next(cli_ids), "--done", "--now"], project),
                20, warmup=0)
    return [
        ("plain git commit -qam (one-line edit)", ms(median(theirs)), ms(pct(theirs, 99)), f"{1 / median(theirs):.0f}/s", "1.00x"),
        ("specflowd mark path (in-process)", ms(median(ours)), ms(pct(ours, 99)), f"{1 / median(ours):.0f}/s",
         f"{median(theirs) / median(ours):.2f}x"),
        ("specflowd mark --now (whole CLI run)", ms(median(cli)), ms(pct(cli, 99)), f"{1 / median(cli):.0f}/s",
         f"{median(theirs) / median(cli):.2f}x"),
    ]


def kiro_file(parents: int) -> bytes:
    """A Kiro-style list: numbered parents, four indented children each, requirement notes."""
    return b"# Implementation plan\n\n## Tasks\n" + b"".join(
        b"- [ ] %d. Parent task %d\n" % (i, i)
        + b"".join(b"  - [ ] %d.%d Child task _Requirements: 1.%d_\n" % (i, j, j) for j in range(1, 5))
        for i in range(1, parents + 1))


def bench_parse(data: bytes) -> list[tuple[str, ...]]:
    parse_t = times(lambda: parse(data), 50)
    doc = parse(data)
    plan_t = times(lambda: make_plan(doc, spec=SPEC, file=PATH), 50)
    rows = [
        ("parse 5,000 tasks", ms(median(parse_t)), ms(min(parse_t))),
        ("plan 5,000 tasks", ms(median(plan_t)), ms(min(plan_t))),
    ]
    for name, variant in [("parse + plan", data), ("parse + plan, CRLF endings", data.replace(b"\n", b"\r\n")),
                          ("parse + plan, lone CR endings", data.replace(b"\n", b"\r")),
                          ("parse + plan, Kiro style, nested (5,000 tasks)", kiro_file(1000))]:
        both = times(lambda v=variant: make_plan(parse(v), spec=SPEC, file=PATH), 50)
        rows.append((name, ms(median(both)), ms(min(both))))
    return rows


def bench_log(project: Path) -> list[tuple[str, ...]]:
    # An install from a wheel compiles bytecode; this editable one, under PYTHONDONTWRITEBYTECODE=1
    # as in this sandbox, never would, and every run would compile specflowd's sources again.
    run([sys.executable, "-m", "compileall", "-q", str(ROOT / "specflowd")], project)
    cmd = [sys.executable, "-m", "specflowd", "log", "-n", "50", "--json"]
    whole = times(lambda: run(cmd, project), 15)
    help_t = times(lambda: run([sys.executable, "-m", "specflowd", "--help"], project), 15)
    bare = times(lambda: run([sys.executable, "-c", "pass"], project), 15)
    imp = times(lambda: run([sys.executable, "-c", "import specflowd.cli, specflowd.commands.log, specflowd.repo.feed"],
                            project), 15)
    return [
        ("specflowd log -n 50 --json (whole command)", ms(median(whole)), ms(pct(whole, 90))),
        ("specflowd --help (whole command)", ms(median(help_t)), ms(pct(help_t, 90))),
        ("python -c pass (interpreter start)", ms(median(bare)), ms(pct(bare, 90))),
        ("log command less interpreter start", ms(median(whole) - median(bare)), "-"),
        ("import of the log command's modules (incl. start)", ms(median(imp)), ms(pct(imp, 90))),
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--marks", type=int, default=400)
    ap.add_argument("--commits", type=int, default=10_000)
    args = ap.parse_args()
    data = task_file(5000)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        project, plain = setup(Path(tmp), data, args.commits)
        print(f"setup: two repositories with {args.commits} commits and a 5,000-task file "
              f"({len(data) // 1024} KiB) in {time.perf_counter() - t:.1f} s")
        table("Parse and plan (in-process)", bench_parse(data), ("what", "median", "best"))
        table(f"Marks on a {args.commits}-commit branch, {args.marks} each, side by side",
              bench_marks(project, plain, args.marks), ("what", "p50", "p99", "rate", "vs plain"))
        table("The feed", bench_log(project), ("what", "median", "p90"))
        fsck = subprocess.run(["git", "fsck", "--no-dangling"], cwd=project, capture_output=True, text=True, env=ENV)
        print(f"\ngit fsck after the run: {'clean' if fsck.returncode == 0 and not fsck.stdout.strip() else fsck.stdout}")


if __name__ == "__main__":
    main()
