"""Helpers shared by the benchmarks: timing, tables, and big fixtures built fast."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

ENV = dict(os.environ, GIT_AUTHOR_NAME="Bench", GIT_AUTHOR_EMAIL="bench@example.com",
           GIT_COMMITTER_NAME="Bench", GIT_COMMITTER_EMAIL="bench@example.com", PYTHONPATH=str(ROOT))
for _var in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
    ENV.pop(_var, None)
os.environ.update({k: v for k, v in ENV.items() if k.startswith("GIT_")})


def run(cmd: list[str], cwd: Path, **kw) -> str:
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True, env=ENV, **kw).stdout


def times(fn: Callable[[], object], n: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


def ms(v: float) -> str:
    return f"{v * 1000:.2f} ms"


def table(title: str, rows: list[tuple[str, ...]], header: tuple[str, ...]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))


def task_file(n: int, sections: int = 10) -> bytes:
    """A realistic n-task list: spec-kit ids, tags, a few dependencies, `## ` sections."""
    lines = [b"# Tasks: benchmark\n", b"\n"]
    per = max(1, n // sections)
    for i in range(n):
        if i % per == 0:
            lines += [b"\n", b"## Phase %d: Section %d\n" % (i // per + 1, i // per + 1), b"\n"]
        tag = b"[P] " if i % 3 == 0 else b""
        dep = b" (depends on T%04d)" % (i - 1) if i % 50 == 49 else b""
        lines.append(b"- [ ] T%04d %s[US%d] Implement part %d of the feature in src/mod%d.py%s\n"
                     % (i + 1, tag, i % 7 + 1, i, i % 40, dep))
    return b"".join(lines)


def fast_history(repo: Path, ref: str, n: int, files: dict[str, bytes], parent: str | None) -> None:
    """Append n commits to `ref` via git fast-import (seconds, not minutes): the first adds
    `files`, the others each edit history.txt."""
    chunks = []
    for i in range(n):
        head = (f"commit {ref}\ncommitter Bench <bench@example.com> {1700000000 + i} +0000\n"
                f"data 7\nhistory\n").encode()
        if i == 0 and parent:
            head += f"from {parent}\n".encode()
        body = b""
        for path, data in (files.items() if i == 0 else [("history.txt", b"line %d\n" % i)]):
            body += f"M 100644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n"
        chunks.append(head + body)
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input=b"".join(chunks), check=True, env=ENV)


def median(values: list[float]) -> float:
    return statistics.median(values)


def make_project(base: Path, name: str, specs: dict[str, str], configure: Callable | None = None) -> Path:
    """A repository with one commit, set up for specflowd with its config adjusted by `configure`,
    and the given specs (id -> task list) committed on the design-docs branch."""
    from specflowd.core.config import Config, render_config
    from specflowd.ops.init import initialize
    from specflowd.repo.project import locate

    project = base / name
    project.mkdir()
    run(["git", "init", "-q", "-b", "main"], project)
    run(["git", "commit", "-q", "--allow-empty", "-m", "initial"], project)
    proj = locate(project)
    config = Config()
    if configure is not None:
        configure(config)
    proj.specflow_dir.mkdir()
    proj.config_path.write_text(render_config(config))
    initialize(locate(project))
    for spec, tasks in specs.items():
        folder = proj.design_docs / "specs" / spec
        folder.mkdir(parents=True)
        (folder / "progress.md").write_text(tasks)
    if specs:
        run(["git", "add", "-A"], proj.design_docs)
        run(["git", "commit", "-q", "-m", "specs"], proj.design_docs)
    return project


def wait_until(condition: Callable[[], object], timeout: float, every: float = 0.05) -> bool:
    """Poll `condition` until it holds or `timeout` passes; whether it held. The benchmarks go on
    either way and report what they see (a test would fail: `tests.conftest.wait_for`)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(every)
    return True


def settle(pid: int, quiet_s: float = 0.5, timeout: float = 30.0) -> None:
    """Wait until the process has used (almost) no CPU for `quiet_s`: its start-up work is done."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = cpu_s(pid)
        time.sleep(quiet_s)  # a measuring window: the condition is the CPU used within it
        if cpu_s(pid) - before <= 0.01:
            return
    raise RuntimeError(f"process {pid} did not settle within {timeout:.0f} s")


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s(pid: int, thread: str | None = None) -> float:
    """User plus system CPU seconds of a process so far, or of its threads with this name."""
    stats = ([Path(f"/proc/{pid}/stat")] if thread is None else
             [t / "stat" for t in Path(f"/proc/{pid}/task").iterdir() if (t / "comm").read_text().strip() == thread])
    total = 0
    for stat in stats:
        fields = stat.read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")
