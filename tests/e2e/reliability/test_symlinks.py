"""A task list that is a link must never be read through: its target could be any file of whoever runs
specflowd (a collaborator pushes `specs/demo/progress.md -> ../../../../home/.aws/credentials`, the
victim pulls, and the next mark would publish the secret). Both ways a link arrives (a local `ln -s`,
a pulled commit) through both ways a task list is read for a commit (the daemon's hand-edit path,
`mark --now`); and a folder or a FIFO where the task list belongs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import git, run_cli, wait_for
from tests.daemon.conftest import make_project

SECRET = b"aws_secret_access_key = SPECFLOWD-TEST-SECRET-0f9e8d7c\n"


def plant_secret(tmp_path: Path) -> Path:
    secret = tmp_path / "home" / ".aws" / "credentials"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_bytes(SECRET)
    return secret


def assert_secret_nowhere(project: Path) -> None:
    """In no object of the repository, reachable from a ref or not."""
    objects = subprocess.run(["git", "cat-file", "--batch-all-objects", "--batch"], cwd=project,
                             capture_output=True, check=True).stdout
    assert b"SPECFLOWD-TEST-SECRET" not in objects
    for ref in git(project, "for-each-ref", "--format=%(refname)").split():
        assert "SPECFLOWD-TEST-SECRET" not in git(project, "log", "--format=%B", ref)


def docs(project: Path) -> Path:
    return project / ".specflow" / "design-docs"


def link_locally(project: Path, secret: Path) -> Path:
    """`ln -s <relative path to the secret> specs/demo/progress.md` in the design-docs worktree."""
    tasks = docs(project) / "specs" / "demo" / "progress.md"
    tasks.unlink()
    tasks.symlink_to(os.path.relpath(secret, tasks.parent))
    return tasks


def link_by_pull(project: Path, secret: Path, tmp_path: Path) -> Path:
    """A collaborator commits the link on the design-docs branch and pushes; the victim pulls."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(project, "remote", "add", "origin", str(remote))
    git(project, "push", "-q", "origin", "helix-design-docs")
    theirs = tmp_path / "collaborator"
    git(tmp_path, "clone", "-q", "-b", "helix-design-docs", str(remote), str(theirs))
    tasks = theirs / "specs" / "demo" / "progress.md"
    tasks.unlink()
    # The same number of folders up as from the victim's worktree: it points at the victim's file.
    tasks.symlink_to(os.path.relpath(secret, docs(project) / "specs" / "demo"))
    git(theirs, "add", "-A")
    git(theirs, "commit", "-q", "-m", "Tidy the task list")
    git(theirs, "push", "-q", "origin", "helix-design-docs")
    git(docs(project), "pull", "-q", "--ff-only", "origin", "helix-design-docs")
    mine = docs(project) / "specs" / "demo" / "progress.md"
    assert mine.is_symlink() and mine.read_bytes() == SECRET  # what a follower of the link would read
    return mine


@pytest.mark.parametrize("arrival", ["local ln -s", "pulled commit"])
def test_mark_now_refuses_a_linked_task_list(repo: Path, tmp_path: Path, arrival: str) -> None:
    project = make_project(repo)
    secret = plant_secret(tmp_path)
    tasks = link_locally(project, secret) if arrival == "local ln -s" else link_by_pull(project, secret, tmp_path)
    head = git(project, "rev-parse", "helix-design-docs")
    r = run_cli("mark", "T001", "--done", "--now", cwd=project)
    assert r.returncode == 1, r.stdout
    assert "specs/demo/progress.md" in r.stderr and "symbolic link" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert git(project, "rev-parse", "helix-design-docs") == head
    assert tasks.is_symlink()  # refused, not replaced: the person decides what to do with it
    assert_secret_nowhere(project)


@pytest.mark.parametrize("arrival", ["local ln -s", "pulled commit"])
def test_the_daemon_refuses_a_linked_task_list(repo: Path, tmp_path: Path, start_daemon, arrival: str) -> None:
    project = make_project(repo)
    assert run_cli("hooks", "install", cwd=project).returncode == 0
    secret = plant_secret(tmp_path)
    d = start_daemon(project)
    head = git(project, "rev-parse", "helix-design-docs")
    if arrival == "local ln -s":
        link_locally(project, secret)
    else:
        link_by_pull(project, secret, tmp_path)
    # The hand-edit path sees the change and refuses it.
    wait_for(lambda: "symbolic link" in d.log(), 30, message="the daemon refusing the link")
    d.drop({"id": "m1", "action": "mark", "spec": "demo", "task": "T001", "status": "done"}, "m1.json")
    answer = d.answer("m1")
    assert answer["ok"] is False and "symbolic link" in answer["error"]["message"], answer
    assert git(project, "rev-parse", "helix-design-docs") == (
        head if arrival == "local ln -s" else git(project, "rev-parse", "origin/helix-design-docs"))
    assert_secret_nowhere(project)
    assert d.proc.poll() is None


def test_a_committed_link_is_never_a_task_list(repo: Path, tmp_path: Path) -> None:
    project = make_project(repo)
    secret = plant_secret(tmp_path)
    link_by_pull(project, secret, tmp_path)
    for args in (("plan", "demo"), ("mark", "T001", "--done", "--now")):
        r = run_cli(*args, cwd=project)
        assert r.returncode == 1 and "symbolic link" in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
        assert "SPECFLOWD-TEST-SECRET" not in r.stdout + r.stderr
    assert_secret_nowhere(project)


@pytest.mark.parametrize("kind", ["folder", "fifo", "linked folder"])
def test_a_task_list_that_is_not_a_file_is_refused_and_nothing_is_committed(repo: Path, tmp_path: Path,
                                                                          kind: str) -> None:
    project = make_project(repo)
    tasks = docs(project) / "specs" / "demo" / "progress.md"
    tasks.unlink()
    if kind == "folder":
        tasks.mkdir()
    elif kind == "fifo":
        os.mkfifo(tasks)  # never opened for reading: that would wait for a writer forever
    else:  # the spec's folder itself is a link to somewhere else
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        (elsewhere / "progress.md").write_bytes(SECRET)
        spec_dir = tasks.parent
        for f in spec_dir.iterdir():
            f.unlink()
        spec_dir.rmdir()
        spec_dir.symlink_to(elsewhere)
    head = git(project, "rev-parse", "helix-design-docs")
    r = run_cli("mark", "T001", "--done", "--now", cwd=project, timeout=30)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert {"folder": "a folder", "fifo": "a FIFO", "linked folder": "a symbolic link"}[kind] in r.stderr
    assert git(project, "rev-parse", "helix-design-docs") == head
    assert_secret_nowhere(project)
