"""Marks as commits on a real design-docs branch: trailers, clean worktree, compare-and-swap,
hand edits, locks, and no resource growth over a long run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from specflowd.core.tasklist import Mark, parse
from specflowd.core.vocab import TaskStatus
from specflowd.errors import UserError
from specflowd.repo.designdocs import DesignDocs
from specflowd.repo.marks import mark
from specflowd.repo.project import locate
from tests.conftest import git, run_cli

TASKS = """# Tasks

## Setup
- [ ] T001 Create the package
- [ ] T002 [P] Add the config

## Core
- [ ] T003 Parse task lists
- [ ] T004 Plan batches
  - [ ] T005 Sections
  - [ ] T006 Fallback
"""


def write_tasks(project: Path, spec: str, text: str) -> None:
    wt = project / ".specflow" / "design-docs"
    path = wt / "specs" / spec / "progress.md"
    path.write_text(text)
    git(wt, "add", "-A")
    git(wt, "commit", "-q", "-m", f"{spec}: tasks")


@pytest.fixture
def project(repo: Path) -> Path:
    assert run_cli("init", cwd=repo).returncode == 0
    assert run_cli("new", "demo", cwd=repo).returncode == 0
    write_tasks(repo, "demo", TASKS)
    return repo


def worktree(project: Path) -> Path:
    return project / ".specflow" / "design-docs"


def branch_file(project: Path, spec: str = "demo") -> str:
    return git(project, "show", f"helix-design-docs:specs/{spec}/progress.md")


def test_mark_commits_with_trailers_and_leaves_the_worktree_clean(project: Path) -> None:
    r = run_cli("mark", "T001", "--done", "--now", "--evidence", git(project, "rev-parse", "HEAD").strip()[:8],
                cwd=project)
    assert r.returncode == 0, r.stderr
    assert "- [x] T001 Create the package" in branch_file(project)
    msg = git(project, "log", "-1", "--format=%B", "helix-design-docs")
    assert msg.splitlines()[0] == "T001 done: Create the package"
    for trailer in ("Specflow-Spec: demo", "Specflow-Task: T001", "Specflow-Status: done"):
        assert trailer in msg
    full = git(project, "rev-parse", "HEAD").strip()
    assert f"Specflow-Evidence: {full}" in msg  # the abbreviation was expanded
    assert git(worktree(project), "status", "--porcelain") == ""
    assert (worktree(project) / "specs/demo/progress.md").read_text() == branch_file(project)


def test_a_mark_that_changes_nothing_makes_no_commit(project: Path) -> None:
    run_cli("mark", "T001", "--done", "--now", cwd=project)
    head = git(project, "rev-parse", "helix-design-docs")
    r = run_cli("mark", "T001", "--done", "--now", cwd=project)
    assert r.returncode == 0 and "nothing to change" in r.stdout
    assert git(project, "rev-parse", "helix-design-docs") == head


def test_parent_follows_in_the_same_commit(project: Path) -> None:
    run_cli("mark", "T005", "--done", "--now", cwd=project)
    head = git(project, "rev-parse", "helix-design-docs")
    r = run_cli("mark", "T006", "--done", "--now", "--json", cwd=project)
    assert r.returncode == 0, r.stderr
    assert git(project, "rev-list", "--count", f"{head.strip()}..helix-design-docs").strip() == "1"
    text = branch_file(project)
    assert "- [x] T004 Plan batches" in text and "  - [x] T006 Fallback" in text
    msg = git(project, "log", "-1", "--format=%B", "helix-design-docs")
    assert "Specflow-Task: T004" in msg and "Specflow-Task: T006" in msg


def test_blocked_with_reason(project: Path) -> None:
    r = run_cli("mark", "T003", "--blocked", "waiting on the API", "--now", cwd=project)
    assert r.returncode == 0, r.stderr
    assert "- [b] T003 Parse task lists (blocked: waiting on the API)" in branch_file(project)
    assert "Specflow-Reason: waiting on the API" in git(project, "log", "-1", "--format=%B", "helix-design-docs")


def test_bad_marks_are_refused_without_a_commit(project: Path) -> None:
    head = git(project, "rev-parse", "helix-design-docs")
    cases = [
        (["T404", "--done"], "no task 'T404'"),
        (["T001", "--done", "--spec", "nope"], "no spec 'nope'"),
        (["T001", "--done", "--spec", "../etc"], "invalid spec id"),
        (["T001", "T404", "--done"], "no task 'T404'"),
        (["T001", "--done", "--evidence", "not-a-sha"], "not a commit id"),
    ]
    for args, message in cases:
        r = run_cli("mark", *args, "--now", cwd=project)
        assert r.returncode in (1, 2), (args, r.stdout, r.stderr)
        assert message in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr
    usage = run_cli("mark", "T001", "--now", cwd=project)
    assert usage.returncode == 2 and "say which status" in usage.stderr
    assert git(project, "rev-parse", "helix-design-docs") == head


def test_spec_is_inferred_or_asked_for(project: Path) -> None:
    assert run_cli("new", "other", cwd=project).returncode == 0
    write_tasks(project, "other", "- [ ] T001 other task\n")
    r = run_cli("mark", "T001", "--done", "--now", cwd=project)
    assert r.returncode == 1 and "which spec?" in r.stderr and "demo, other" in r.stderr
    env = dict(os.environ, SPECFLOW_SPEC="other")
    r = subprocess.run(["specflowd", "mark", "T001", "--done", "--now"], cwd=project, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "- [x] T001 other task" in branch_file(project, "other")
    assert "- [ ] T001 Create" in branch_file(project, "demo")


def test_hand_edits_are_committed_first_never_overwritten(project: Path) -> None:
    path = worktree(project) / "specs/demo/progress.md"
    path.write_text(path.read_text().replace("- [ ] T002", "- [x] T002").replace("Add the config", "Add config"))
    head = git(project, "rev-parse", "helix-design-docs").strip()
    r = run_cli("mark", "T003", "--done", "--now", cwd=project)
    assert r.returncode == 0, r.stderr
    subjects = git(project, "log", "--format=%s", f"{head}..helix-design-docs").splitlines()
    assert len(subjects) == 2 and subjects[0].startswith("T003 done")
    hand = git(project, "log", "-1", "--format=%B", "helix-design-docs~1")
    assert "Specflow-Task: T002" in hand and "Specflow-Source: hand-edit" in hand
    text = branch_file(project)
    assert "- [x] T002 [P] Add config" in text and "- [x] T003" in text
    assert git(worktree(project), "status", "--porcelain") == ""


def test_broken_hand_edit_blocks_the_mark_and_is_kept(project: Path) -> None:
    path = worktree(project) / "specs/demo/progress.md"
    broken = path.read_text().replace("- [ ] T002", "-[ ] T002")
    path.write_text(broken)
    head = git(project, "rev-parse", "helix-design-docs")
    r = run_cli("mark", "T003", "--done", "--now", cwd=project)
    assert r.returncode == 1 and "looks like a task but is not one" in r.stderr and "line 5" in r.stderr
    assert git(project, "rev-parse", "helix-design-docs") == head
    assert path.read_text() == broken


def test_commits_made_elsewhere_are_never_lost(project: Path) -> None:
    """Another writer moves the branch behind the worktree's back (plumbing, like a fetch would)."""
    other = project.parent / "other-clone"
    git(project.parent, "clone", "-q", "--branch", "helix-design-docs", str(project), str(other))
    f = other / "specs/demo/progress.md"
    f.write_text(f.read_text().replace("- [ ] T004", "- [~] T004"))
    (other / "specs/demo/design.md").write_text("# Design\n\nwritten elsewhere\n")
    git(other, "commit", "-qam", "elsewhere")
    # git refuses to fetch or push into a checked-out branch; scripts move it with plumbing.
    git(project, "fetch", "-q", str(other), "helix-design-docs")
    git(project, "update-ref", "refs/heads/helix-design-docs", "FETCH_HEAD")
    r = run_cli("mark", "T001", "--done", "--now", cwd=project)
    assert r.returncode == 0, r.stderr
    text = branch_file(project)
    assert "- [x] T001" in text and "- [~] T004" in text
    assert git(project, "show", "helix-design-docs:specs/demo/design.md") == "# Design\n\nwritten elsewhere\n"
    assert git(worktree(project), "status", "--porcelain") == ""
    assert (worktree(project) / "specs/demo/design.md").read_text().endswith("written elsewhere\n")


WRITER = r"""
import subprocess, sys
repo, n = sys.argv[1], int(sys.argv[2])
def g(*a, input=None):
    return subprocess.run(["git", *a], cwd=repo, input=input, capture_output=True, text=True, check=True).stdout.strip()
done = 0
while done < n:
    tip = g("rev-parse", "refs/heads/helix-design-docs")
    blob = g("hash-object", "-w", "--stdin", input=f"external {done}\n")
    g("read-tree", "--index-output=" + repo + "/.git/ext-index", tip)
    env_index = repo + "/.git/ext-index"
    subprocess.run(["git", "update-index", "--add", "--cacheinfo", f"100644,{blob},notes/ext-{done}.txt"],
                   cwd=repo, env={**__import__("os").environ, "GIT_INDEX_FILE": env_index}, check=True)
    tree = subprocess.run(["git", "write-tree"], cwd=repo, env={**__import__("os").environ, "GIT_INDEX_FILE": env_index},
                          capture_output=True, text=True, check=True).stdout.strip()
    commit = g("commit-tree", tree, "-p", tip, "-m", f"external {done}")
    if subprocess.run(["git", "update-ref", "refs/heads/helix-design-docs", commit, tip], cwd=repo,
                      capture_output=True).returncode == 0:
        done += 1
"""


def test_compare_and_swap_under_a_concurrent_writer(project: Path) -> None:
    n_external = 40
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(project), str(n_external)])
    docs = DesignDocs(locate(project))
    ids = ["T001", "T002", "T003", "T005", "T006"]
    try:
        for round_ in range(4):
            for task in ids:
                status = TaskStatus.DONE if round_ % 2 == 0 else TaskStatus.PENDING
                mark(docs, "demo", [Mark(task, status)])
    finally:
        assert writer.wait(timeout=120) == 0
    mark(docs, "demo", [Mark("T001", TaskStatus.DONE)])  # one more after the writer finished
    tree = git(project, "ls-tree", "-r", "--name-only", "helix-design-docs")
    assert sum(1 for line in tree.splitlines() if line.startswith("notes/ext-")) == n_external
    subjects = git(project, "log", "--format=%s", "helix-design-docs").splitlines()
    assert sum(1 for s in subjects if s.startswith("external ")) == n_external
    assert sum(1 for s in subjects if " done" in s and s.startswith("T0")) >= 2 * len(ids)
    final = parse(git(project, "show", "helix-design-docs:specs/demo/progress.md").encode())
    assert final.find("T001").status is TaskStatus.DONE and final.find("T002").status is TaskStatus.PENDING
    assert git(worktree(project), "status", "--porcelain") == ""
    assert subprocess.run(["git", "fsck", "--no-dangling"], cwd=project, capture_output=True).returncode == 0


def test_a_lock_held_by_a_running_git_gets_a_clear_error_and_a_dead_ones_is_removed(project: Path) -> None:
    gitdir = Path(git(worktree(project), "rev-parse", "--absolute-git-dir").strip())
    ref_lock = project / ".git" / "refs" / "heads" / "helix-design-docs.lock"
    for lock, status in ((gitdir / "index.lock", "--done"), (ref_lock, "--todo")):
        held = open(lock, "w")  # noqa: SIM115 - a git at work holds its lock file open
        os.utime(lock, (time.time() - 60, time.time() - 60))  # however old the lock: it is held
        head = git(project, "rev-parse", "helix-design-docs")
        r = run_cli("mark", "T001", status, "--now", cwd=project)
        assert r.returncode == 1 and str(lock) in r.stderr and "running" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
        assert git(project, "rev-parse", "helix-design-docs") == head
        held.close()  # its git was killed: the lock stays behind, held by nobody
        r = run_cli("mark", "T001", status, "--now", cwd=project)
        assert r.returncode == 0, r.stderr
        assert not lock.exists()
        assert f"removed {lock}" in (project / ".specflow" / "repairs.log").read_text()
    assert git(worktree(project), "status", "--porcelain") == ""

def test_missing_worktree_is_explained(project: Path) -> None:
    import shutil

    shutil.rmtree(worktree(project))
    r = run_cli("mark", "T001", "--done", "--now", cwd=project)
    assert r.returncode == 1 and "specflowd init" in r.stderr and "Traceback" not in r.stderr


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def children() -> int:
    me = str(os.getpid())
    count = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[1] == me:
                        count += 1
            except OSError:
                pass
    return count


def test_two_thousand_marks_do_not_grow_processes_or_descriptors(project: Path) -> None:
    write_tasks(project, "demo", "## All\n" + "".join(f"- [ ] T{i:04d} task {i}\n" for i in range(1, 1001)))
    docs = DesignDocs(locate(project))
    mark(docs, "demo", [Mark("T0001", TaskStatus.DONE)])
    fds, kids = open_fds(), children()
    for i in range(2000):
        mark(docs, "demo", [Mark(f"T{i % 1000 + 1:04d}", TaskStatus.DONE)])
        if i == 999:
            mark(docs, "demo", [Mark(f"#{k}", TaskStatus.PENDING) for k in range(1, 1001)])
    assert open_fds() <= fds
    assert children() <= kids
    assert git(worktree(project), "status", "--porcelain") == ""


def test_user_error_codes_for_the_daemon(project: Path) -> None:
    docs = DesignDocs(locate(project))
    with pytest.raises(UserError) as e:
        mark(docs, "demo", [Mark("T999", TaskStatus.DONE)])
    assert e.value.code == "unknown_task"
    with pytest.raises(UserError) as e:
        mark(docs, "ghost", [Mark("T001", TaskStatus.DONE)])
    assert e.value.code == "unknown_spec"
