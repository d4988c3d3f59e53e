"""`feed.read_new`: the entries since a commit read in-process give what `git log` gives, and the
cases it leaves to git (a merge, a long jump, a re-encoded message) say so."""

from __future__ import annotations

from pathlib import Path

import pytest

from specflowd.repo import feed
from specflowd.repo.git import ObjectStore
from specflowd.repo.project import locate
from tests.conftest import git, run_cli
from tests.repo.test_marks import write_tasks


@pytest.fixture
def project(repo: Path) -> Path:
    run_cli("init", cwd=repo)
    run_cli("new", "alpha", cwd=repo)
    write_tasks(repo, "alpha", "## A\n- [ ] T001 one\n- [ ] T002 two\n")
    return repo


def tip(project: Path) -> str:
    return git(project, "rev-parse", "helix-design-docs").strip()


def test_it_reads_what_git_log_reads(project: Path) -> None:
    start = tip(project)
    code = git(project, "rev-parse", "HEAD").strip()
    assert run_cli("mark", "T001", "--done", "--now", "--evidence", code, cwd=project).returncode == 0
    assert run_cli("mark", "T002", "--blocked", "wait for it", "--now", cwd=project).returncode == 0
    docs = project / ".specflow" / "design-docs"
    (docs / "notes.md").write_text("notes\n")
    git(docs, "add", "notes.md")
    git(docs, "-c", "user.name=Zoë <Ünïcode>", "commit", "-qm", "Notes: ünïcode\n\nA body.\n\nSpecflow-Spec: alpha\n"
        "Specflow-Task: T002\nSpecflow-Status: done\nSpecflow-Cost-USD: 0.25")
    proj = locate(project)
    new = feed.read_new(ObjectStore(proj.common_dir), start, tip(project), 10)
    assert new == feed.read(proj, limit=None, since=start, until=tip(project))
    assert [e["subject"] for e in new][-1] == "Notes: ünïcode" and new[-1]["cost_usd"] == 0.25
    assert feed.read_new(ObjectStore(proj.common_dir), tip(project), tip(project), 10) == []


def test_a_merge_a_long_jump_and_another_encoding_are_left_to_git(project: Path) -> None:
    proj = locate(project)
    docs = project / ".specflow" / "design-docs"
    start = tip(project)
    assert run_cli("mark", "T001", "--done", "--now", cwd=project).returncode == 0
    assert feed.read_new(ObjectStore(proj.common_dir), start, tip(project), 0) is None
    git(docs, "checkout", "-qb", "side", f"{start}")
    git(docs, "commit", "-q", "--allow-empty", "-m", "on the side")
    git(docs, "checkout", "-q", "helix-design-docs")
    before = tip(project)
    git(docs, "merge", "-q", "--no-ff", "-m", "merge the side", "side")
    assert feed.read_new(ObjectStore(proj.common_dir), before, tip(project), 10) is None
    before = tip(project)
    git(docs, "-c", "i18n.commitEncoding=ISO-8859-1", "commit", "-q", "--allow-empty", "-m", "latin")
    assert feed.read_new(ObjectStore(proj.common_dir), before, tip(project), 10) is None
