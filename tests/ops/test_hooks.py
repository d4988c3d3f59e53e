"""Git hooks: installed where git runs them, chained, removed, and doing their job in real commits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import git, run_cli


@pytest.fixture
def project(repo: Path) -> Path:
    assert run_cli("init", cwd=repo).returncode == 0
    assert run_cli("new", "demo", cwd=repo).returncode == 0
    return repo


def hooks(repo: Path) -> Path:
    return repo / ".git" / "hooks"


def test_install_is_idempotent_and_uninstall_cleans_up(project: Path) -> None:
    r = run_cli("hooks", "install", cwd=project)
    assert r.returncode == 0, r.stderr
    for name in ("post-commit", "pre-commit"):
        path = hooks(project) / name
        assert os.access(path, os.X_OK)
        assert "@BRANCH@" not in path.read_text()
    assert "helix-design-docs" in (hooks(project) / "pre-commit").read_text()
    again = run_cli("hooks", "install", cwd=project)
    assert "nothing changed" in again.stdout
    gone = run_cli("hooks", "uninstall", cwd=project)
    assert gone.returncode == 0 and "removed post-commit" in gone.stdout
    assert not (hooks(project) / "post-commit").exists()


def test_existing_hooks_are_chained_and_restored(project: Path) -> None:
    hooks(project).mkdir(exist_ok=True)
    mine = hooks(project) / "post-commit"
    mine.write_text(f"#!/bin/sh\necho ran >> '{project}/chained.log'\n")
    mine.chmod(0o755)
    r = run_cli("hooks", "install", cwd=project)
    assert "kept your post-commit hook" in r.stdout
    (project / "file.txt").write_text("x\n")
    git(project, "add", "file.txt")
    git(project, "commit", "-q", "-m", "a person's commit")
    assert (project / "chained.log").read_text() == "ran\n"
    run_cli("hooks", "uninstall", cwd=project)
    assert mine.read_text().startswith("#!/bin/sh\necho ran")


def test_core_hooks_path_is_honoured(project: Path) -> None:
    custom = project / "githooks"
    assert run_cli("hooks", "uninstall", cwd=project).returncode == 0  # init put them in .git/hooks
    git(project, "config", "core.hooksPath", "githooks")
    assert run_cli("hooks", "install", cwd=project).returncode == 0
    assert (custom / "pre-commit").exists()
    assert not (hooks(project) / "pre-commit").exists()


def test_pre_commit_refuses_a_broken_task_list(project: Path) -> None:
    run_cli("hooks", "install", cwd=project)
    wt = project / ".specflow" / "design-docs"
    path = wt / "specs" / "demo" / "progress.md"
    path.write_text("# Tasks\n\n## A\n- [ ] T001 fine\n-[ ] T002 broken\n")
    git(wt, "add", "-A")
    r = subprocess.run(["git", "commit", "-q", "-m", "tasks"], cwd=wt, capture_output=True, text=True)
    assert r.returncode != 0
    assert "specs/demo/progress.md: line 5" in r.stderr and "looks like a task" in r.stderr
    path.write_text("# Tasks\n\n## A\n- [ ] T001 fine\n- [ ] T002 fixed\n")
    git(wt, "add", "-A")
    git(wt, "commit", "-q", "-m", "tasks")
    assert "T002 fixed" in git(project, "show", "helix-design-docs:specs/demo/progress.md")


def test_a_commit_without_the_trailer_starts_no_python(project: Path, tmp_path: Path) -> None:
    run_cli("hooks", "install", cwd=project)
    spy_dir = tmp_path / "spy"
    spy_dir.mkdir()
    spy = spy_dir / "specflowd"
    spy.write_text(f"#!/bin/sh\necho \"$@\" >> '{tmp_path}/calls.log'\n")
    spy.chmod(0o755)
    env = dict(os.environ, SPECFLOW_BIN=str(spy))  # what agents run with: it comes first
    (project / "a.txt").write_text("a\n")
    subprocess.run(["git", "add", "a.txt"], cwd=project, check=True, env=env)
    subprocess.run(["git", "commit", "-q", "-m", "plain"], cwd=project, check=True, env=env)
    assert not (tmp_path / "calls.log").exists()
    (project / "b.txt").write_text("b\n")
    subprocess.run(["git", "add", "b.txt"], cwd=project, check=True, env=env)
    subprocess.run(["git", "commit", "-q", "-m", "work\n\nSpecflow-Task: T001"], cwd=project, check=True, env=env)
    assert (tmp_path / "calls.log").read_text() == "hook post-commit\n"


def commit(cwd: Path, name: str, message: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    (cwd / name).write_text(f"{name}\n")
    subprocess.run(["git", "add", name], cwd=cwd, check=True, env=env)
    return subprocess.run(["git", "commit", "-q", "-m", message], cwd=cwd, env=env, capture_output=True, text=True)


def test_hooks_run_the_specflowd_that_installed_them_without_it_on_path(project: Path, tmp_path: Path) -> None:
    """As under systemd or in a GUI: PATH has no specflowd, the hook still delivers the trailer."""
    installer = tmp_path / "venv" / "bin" / "specflowd"
    installer.parent.mkdir(parents=True)
    installer.write_text(f"#!/bin/sh\necho \"$@\" >> '{tmp_path}/calls.log'\n")
    installer.chmod(0o755)
    run_cli("hooks", "uninstall", cwd=project)
    # `specflowd hooks install` run as that program: argv[0] is what the hook remembers.
    install = subprocess.run(
        [sys.executable, "-c", "import sys; from specflowd.cli import main; sys.argv[0] = sys.argv.pop(1); main()",
         str(installer), "hooks", "install"], cwd=project, capture_output=True, text=True)
    assert install.returncode == 0, install.stderr
    assert f"installed={installer}" in (hooks(project) / "post-commit").read_text()
    bare = {k: v for k, v in os.environ.items() if k != "SPECFLOW_BIN"} | {"PATH": "/usr/bin:/bin"}
    assert commit(project, "a.txt", "work\n\nSpecflow-Task: T001", bare).returncode == 0
    assert (tmp_path / "calls.log").read_text() == "hook post-commit\n"


def test_a_hook_that_cannot_deliver_a_trailer_says_so(project: Path, tmp_path: Path) -> None:
    gone = tmp_path / "gone" / "specflowd"
    script = hooks(project) / "post-commit"
    script.write_text(script.read_text().replace(f"installed={hooks_program(script)}", f"installed='{gone}'"))
    bare = {k: v for k, v in os.environ.items() if k != "SPECFLOW_BIN"} | {"PATH": "/usr/bin:/bin"}
    r = commit(project, "a.txt", "work\n\nSpecflow-Task: T001", bare)
    assert r.returncode == 0  # a commit is never refused for it
    assert "trailer was not delivered" in r.stderr and str(gone) in r.stderr
    assert commit(project, "b.txt", "no trailer", bare).stderr == ""  # and a plain commit says nothing


def hooks_program(script: Path) -> str:
    line = next(line for line in script.read_text().splitlines() if line.startswith("installed="))
    return line.removeprefix("installed=")


def test_the_hook_itself_writes_the_mark_request_of_a_plain_trailer(project: Path, tmp_path: Path) -> None:
    """No Python for the common case: the shell writes the request as `specflowd hook post-commit`
    would (made in requests/tmp/, renamed in); an id it cannot vouch for goes to the Python path."""
    spy = tmp_path / "specflowd"
    spy.write_text(f"#!/bin/sh\necho \"$@\" >> '{tmp_path}/calls.log'\n")
    spy.chmod(0o755)
    env = dict(os.environ, SPECFLOW_BIN=str(spy))
    requests = project / ".specflow" / "requests"
    r = commit(project, "a.txt", "work\n\nSpecflow-Task: T001, T002;T001\nSpecflow-Spec: demo", env)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    sha = git(project, "rev-parse", "HEAD").strip()
    request = requests / f"commit-{sha[:16]}.json"
    assert json.loads(request.read_text()) == {"id": f"commit-{sha[:16]}", "action": "mark", "tasks": ["T001", "T002"],
                                               "status": "done", "evidence": sha, "spec": "demo"}
    assert oct(request.stat().st_mode & 0o777) == "0o600" and list((requests / "tmp").iterdir()) == []
    assert not (tmp_path / "calls.log").exists()
    # The spec of a code worktree is its folder's name, as for `specflowd mark` run there.
    code = project / ".specflow" / "worktrees" / "demo"
    git(project, "worktree", "add", "-q", "-b", "specflow/demo", str(code))
    assert commit(code, "b.txt", "work\n\nSpecflow-Task: T003", env).returncode == 0
    sha = git(code, "rev-parse", "HEAD").strip()
    assert json.loads((requests / f"commit-{sha[:16]}.json").read_text())["spec"] == "demo"
    assert not (tmp_path / "calls.log").exists()
    # Ids the shell does not vouch for (a pattern, a quote) are the Python path's to judge.
    assert commit(project, "c.txt", 'work\n\nSpecflow-Task: T0*1 "x"\nSpecflow-Spec: demo', env).returncode == 0
    assert (tmp_path / "calls.log").read_text() == "hook post-commit\n"
