"""The command line at every size, before and after, side by side in one run.

    python3 tests/bench/bench_cli.py [--baseline REV] [--runs 9] [--commits 100000] [--orchestrations 500]

Two projects built as long-lived ones look (`history.long_project`): 1,000 commits with 5 past
orchestrations, and `--commits` commits with `--orchestrations` past ones, both with a spec `big`
of 5,000 tasks. Each read command runs on both, with this checkout ("after") and with a checkout of
`--baseline` ("before", a git worktree made for the run), alternating with `python3 -c pass` so
that the ratios compare runs made moments apart on the same (noisy) machine. Every figure is the
median CPU time (user + system, the command's git children included) of `--runs` runs.

Then: the imports of each command (`python -X importtime`), `mark --wait` against a running daemon,
a person's commit with specflowd's hooks against the same commit without them, a trailer
delivered by the post-commit hook, and the daemon's start to READY on the long project.
"""

from __future__ import annotations

import argparse
import random
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench.common import ENV, ROOT, table  # noqa: E402
from tests.bench.history import long_project  # noqa: E402

READS = [("status",), ("list",), ("fleet",), ("log", "-n", "50"), ("log", "-n", "50", "--json"),
         ("plan", "big"), ("plan", "big", "--json")]
HEAVY = ("pydantic", "rich", "watchdog", "gitdb", "git")


def cpu_of(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    """CPU seconds of a command and every child it waited for."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


class Side:
    """One checkout of specflowd: its code first on PYTHONPATH, its `specflowd` as `python3 -m`."""

    def __init__(self, name: str, checkout: Path, home: Path) -> None:
        self.name = name
        self.checkout = checkout
        self.env = dict(ENV, PYTHONPATH=str(checkout), HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
        # As a wheel install would leave it: the modules compiled once (the environment may forbid
        # writing bytecode at import).
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(checkout / "specflowd")], check=True)

    def cli(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "specflowd", *args]


def baseline_checkout(rev: str, where: Path) -> Path:
    path = where / "baseline"
    subprocess.run(["git", "worktree", "add", "-q", "--detach", str(path), rev], cwd=ROOT, check=True, env=ENV)
    return path


def reads(sides: list[Side], projects: dict[str, Path], runs: int) -> None:
    keys = [(side, cmd, size) for side in sides for cmd in READS for size in projects]
    got: dict[tuple[str, tuple[str, ...], str], list[float]] = {}
    bare: list[float] = []
    for round_ in range(runs + 1):  # the first round warms the page cache; it is not counted
        random.shuffle(keys)
        first = round_ == 0
        for side, cmd, size in keys:
            t = cpu_of(side.cli(*cmd), projects[size], side.env)
            if not first:
                got.setdefault((side.name, cmd, size), []).append(t)
        t = cpu_of([sys.executable, "-c", "pass"], ROOT, ENV)
        if not first:
            bare.append(t)
    p = statistics.median(bare)
    small, large = list(projects)
    rows = []
    for cmd in READS:
        cells = [" ".join(cmd)]
        for side in sides:
            a, b = (statistics.median(got[(side.name, cmd, s)]) for s in (small, large))
            cells += [f"{a * 1000:.0f}", f"{b * 1000:.0f}"]
        after = [statistics.median(got[(sides[-1].name, cmd, s)]) for s in (small, large)]
        cells += [f"{after[1] / p:.2f}x", f"{after[1] / after[0]:.2f}x"]
        rows.append(tuple(cells))
    header = ("command", *[f"{s.name} {size} ms" for s in sides for size in (small, large)],
              f"after/pass ({large})", f"after {large}/{small}")
    table(f"Read commands, median CPU of {runs} runs (`python3 -c pass`: {p * 1000:.0f} ms; target: "
          "<= 2.5x pass, and <= 1.2x from small to large)", rows, header)


def imports(sides: list[Side], project: Path) -> None:
    rows = []
    for cmd in READS + [("mark", "T001", "--done", "--wait", "1")]:
        cells = [" ".join(cmd)]
        for side in sides:
            r = subprocess.run([sys.executable, "-X", "importtime", *side.cli(*cmd)[1:]], cwd=project, env=side.env,
                               capture_output=True, text=True)
            total, heavy = 0, set()
            for line in r.stderr.splitlines():
                if not line.startswith("import time:") or "|" not in line:
                    continue
                own, _, name = line[len("import time:"):].split("|")
                if own.strip().isdigit():
                    total += int(own)
                top = name.strip().split(".")[0]
                if top in HEAVY:
                    heavy.add(top)
            cells += [f"{total / 1000:.0f}", ", ".join(sorted(heavy)) or "-"]
        rows.append(tuple(cells))
    header = ("command", *[h for s in sides for h in (f"{s.name} imports ms", f"{s.name} heavy modules")])
    table("Imports of each command (python -X importtime, sum of the modules' own times)", rows, header)


class Daemon:
    """`specflowd run` of one side, ready when it says READY=1 on a notify socket."""

    def __init__(self, side: Side, project: Path, log: Path) -> None:
        sock_path = log.with_suffix(".sock")
        sock_path.unlink(missing_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(sock_path))
        self.sock.settimeout(120)
        began = time.perf_counter()
        with open(log, "ab") as f:
            self.proc = subprocess.Popen(side.cli("run", "--project", str(project)), cwd=project,
                                         env={**side.env, "NOTIFY_SOCKET": str(sock_path)}, stdout=f, stderr=f)
        while self.sock.recv(4096) != b"READY=1":
            pass
        self.ready_s = time.perf_counter() - began

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self.sock.close()


def daemon_start(sides: list[Side], project: Path, log: Path) -> None:
    rows = []
    for side in sides:
        first = Daemon(side, project, log)  # the first start of this code on the project (writes its index)
        first.stop()
        again = []
        for _ in range(3):
            d = Daemon(side, project, log)
            again.append(d.ready_s)
            d.stop()
        rows.append((side.name, f"{first.ready_s:.2f}", f"{statistics.median(again):.2f}"))
    table(f"Daemon start to READY on {project.name} (s; target <= 1 s)", rows,
          ("side", "first start", "later starts (median of 3)"))


def marks(sides: list[Side], project: Path, runs: int, log: Path) -> None:
    rows = []
    bare = [cpu_of([sys.executable, "-c", "pass"], ROOT, ENV) for _ in range(runs)]
    p = statistics.median(bare)
    for side in sides:
        d = Daemon(side, project, log)
        try:
            got = []
            for i in range(runs + 1):
                flag = "--done" if i % 2 == 0 else "--todo"
                t = cpu_of(side.cli("mark", "T001", flag, "--wait", "30"), project, side.env)
                if i:
                    got.append(t)
        finally:
            d.stop()
        m = statistics.median(got)
        rows.append((side.name, f"{m * 1000:.0f}", f"{m / p:.2f}x"))
    table(f"`specflowd mark T001 --done --wait`, the client's CPU, median of {runs} (pass: {p * 1000:.0f} ms; "
          "target <= 3x pass)", rows, ("side", "ms", "/ pass"))


def code_repo(base: Path, side: Side, name: str) -> Path:
    """A project with specflowd's hooks (installed by `specflowd init` of this side)."""
    repo = base / name
    repo.mkdir()
    env = side.env
    for cmd in (["git", "init", "-q", "-b", "main"], ["git", "commit", "-q", "--allow-empty", "-m", "initial"]):
        subprocess.run(cmd, cwd=repo, env=env, check=True)
    subprocess.run(side.cli("init"), cwd=repo, env=env, check=True, capture_output=True)
    subprocess.run(side.cli("new", "demo"), cwd=repo, env=env, check=True, capture_output=True)
    (repo / "app.txt").write_text("0\n")
    subprocess.run(["git", "add", "app.txt"], cwd=repo, env=env, check=True)
    subprocess.run(["git", "commit", "-qm", "app"], cwd=repo, env=env, check=True)
    return repo


def commit(repo: Path, side: Side, n: int, *git_args: str, message: str = "work") -> float:
    """The CPU of one `git commit -qam` of an edit (hooks and all)."""
    (repo / "app.txt").write_text(f"{n}\n")
    return cpu_of(["git", *git_args, "commit", "-qam", message], repo, side.env)


def hooks(sides: list[Side], base: Path, runs: int) -> None:
    rows = []
    for side in sides:
        repo = code_repo(base, side, f"hooks-{side.name}")
        with_hooks, without = [], []
        for i in range(runs):
            with_hooks.append(commit(repo, side, 2 * i))
            without.append(commit(repo, side, 2 * i + 1, "-c", "core.hooksPath=/dev/null"))
        trailer = [commit(repo, side, 2 * runs + i, message="work\n\nSpecflow-Task: T001\nSpecflow-Spec: demo\n")
                   for i in range(3)]
        requests = sorted(p.name for p in (repo / ".specflow/requests").glob("commit-*.json"))
        w, wo = statistics.median(with_hooks), statistics.median(without)
        rows.append((side.name, f"{wo * 1000:.1f}", f"{w * 1000:.1f}", f"{w / wo:.2f}x",
                     f"{statistics.median(trailer) * 1000:.1f}", str(len(requests))))
    table(f"A person's `git commit -qam` in a project with specflowd's hooks, median CPU of {runs} (target: "
          "<= 1.5x without them)", rows,
          ("side", "no hooks ms", "hooks ms", "ratio", "with a Specflow-Task trailer ms", "requests dropped of 3"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", default="a2fced1", help="the revision to compare with (default: before issue 15)")
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--commits", type=int, default=100_000)
    ap.add_argument("--orchestrations", type=int, default=500)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        base = Path(tmp)
        home = base / "home"
        (home / ".config").mkdir(parents=True)
        old = baseline_checkout(args.baseline, base)
        try:
            sides = [Side("before", old, home), Side("after", ROOT, home)]
            began = time.perf_counter()
            small = long_project(base, "1k", 1_000, 5)
            large = long_project(base, f"{args.commits // 1000}k", args.commits, args.orchestrations)
            print(f"fixtures built in {time.perf_counter() - began:.0f} s: {small.name} and {large.name} commits")
            log = base / "daemon.log"
            # The daemon of this checkout starts once on each project first: it keeps the index of ended
            # orchestrations that the read commands use (the baseline's ignores it).
            daemon_start(sides, large, log)
            Daemon(sides[-1], small, log).stop()
            reads(sides, {small.name: small, large.name: large}, args.runs)
            imports(sides, large)
            marks(sides, small, args.runs, log)
            hooks(sides, base, args.runs)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=ROOT, env=ENV, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
