"""`specflowd init` and `specflowd new` on real repositories."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

from tests.conftest import git, run_cli


def test_init_sets_everything_up(repo: Path) -> None:
    (repo / ".gitignore").write_text("*.log\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", "ignore logs")
    r = run_cli("init", cwd=repo)
    assert r.returncode == 0, r.stderr
    wt = repo / ".specflow" / "design-docs"
    assert git(wt, "rev-parse", "--abbrev-ref", "HEAD").strip() == "helix-design-docs"
    # Orphan: no history shared with main.
    assert git(repo, "rev-list", "--count", "helix-design-docs").strip() == "1"
    assert git(repo, "rev-list", "helix-design-docs", "^main").strip() != ""
    for name in ("requests/tmp", "requests/done", "requests/failed", "responses", "workflows", "worktrees", "logs"):
        assert (repo / ".specflow" / name).is_dir(), name
    # Every key shown with its default, commented, so that the user config's settings apply to it.
    text = (repo / ".specflow" / "config.toml").read_text()
    assert tomllib.loads(text) == {section: {} for section in
                                   ("design_docs", "orchestration", "budget", "agent", "heal", "pool", "daemon", "remote")}
    for line in ('# branch = "helix-design-docs"', "# total = 50.0", '#     "AskUserQuestion",'):
        assert line in text.splitlines()
    assert "/.specflow/" in (repo / ".git" / "info" / "exclude").read_text().splitlines()
    for hook in ("post-commit", "pre-commit"):
        assert (repo / ".git" / "hooks" / hook).read_text().startswith("#!/bin/sh\n# specflowd ")
    assert not (repo / ".git" / "hooks" / "reference-transaction").exists()  # retired: the daemon watches the ref
    assert (repo / ".gitignore").read_text() == "*.log\n"
    assert git(repo, "status", "--porcelain") == ""
    assert git(wt, "status", "--porcelain") == ""


def test_init_twice_changes_nothing(repo: Path) -> None:
    assert run_cli("init", cwd=repo).returncode == 0
    before = git(repo, "for-each-ref")
    exclude = (repo / ".git" / "info" / "exclude").read_text()
    r = run_cli("init", cwd=repo)
    assert r.returncode == 0 and "nothing changed" in r.stdout
    assert git(repo, "for-each-ref") == before
    assert (repo / ".git" / "info" / "exclude").read_text() == exclude


def test_init_refuses_clearly_and_creates_nothing(tmp_path: Path, repo: Path) -> None:
    outside = tmp_path / "plain"
    outside.mkdir()
    r = run_cli("init", cwd=outside)
    assert r.returncode == 1 and "not inside a git repository" in r.stderr and "Traceback" not in r.stderr

    bare = tmp_path / "bare.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    r = run_cli("init", cwd=bare)
    assert r.returncode == 1 and "bare repository" in r.stderr

    empty = tmp_path / "empty"
    git(tmp_path, "init", "-q", str(empty))
    r = run_cli("init", cwd=empty)
    assert r.returncode == 1 and "no commits yet" in r.stderr
    assert not (empty / ".specflow").exists()

    git(repo, "branch", "helix-design-docs")
    git(repo, "worktree", "add", "-q", str(tmp_path / "elsewhere"), "helix-design-docs")
    r = run_cli("init", cwd=repo)
    assert r.returncode == 1 and "checked out at" in r.stderr and str(tmp_path / "elsewhere") in r.stderr
    assert not (repo / ".specflow").exists()
    assert len(r.stderr.strip().splitlines()) == 1


def test_new_spec_from_templates(repo: Path) -> None:
    run_cli("init", cwd=repo)
    r = run_cli("new", "1055-smart-batching", "--title", "Smart batching", "--prompt", "Batch {tasks} by $section",
                cwd=repo)
    assert r.returncode == 0, r.stderr
    wt = repo / ".specflow" / "design-docs"
    spec = wt / "specs" / "1055-smart-batching"
    assert sorted(p.name for p in spec.iterdir()) == ["design.md", "progress.md", "requirements.md"]
    assert "Batch {tasks} by $section" in (spec / "requirements.md").read_text()
    assert "# Requirements: Smart batching" in (spec / "requirements.md").read_text()
    assert git(wt, "status", "--porcelain") == ""
    msg = git(wt, "log", "-1", "--format=%B")
    assert "Specflow-Spec: 1055-smart-batching" in msg and "Specflow-Event: spec-created" in msg
    again = run_cli("new", "1055-smart-batching", cwd=repo)
    assert again.returncode == 1 and "already exists" in again.stderr


def test_new_refuses_bad_ids(repo: Path) -> None:
    run_cli("init", cwd=repo)
    head = git(repo, "rev-parse", "helix-design-docs")
    for bad in ("../x", "/etc", "has space", "", "UPPER", "a" * 65, "-lead"):
        r = run_cli("new", bad, cwd=repo)
        # One check of spec ids for every command, exit 1; "-lead" never reaches it (an unknown option).
        assert r.returncode == (2 if bad.startswith("-") else 1), (bad, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr
    assert git(repo, "rev-parse", "helix-design-docs") == head


def test_new_uses_project_templates(repo: Path) -> None:
    run_cli("init", cwd=repo)
    own = repo / ".specflow" / "templates" / "spec"
    own.mkdir(parents=True)
    (own / "progress.md").write_text("# Our tasks for {spec}\n\n## Setup\n- [ ] T001 Start\n")
    run_cli("new", "ours", cwd=repo)
    text = (repo / ".specflow" / "design-docs" / "specs" / "ours" / "progress.md").read_text()
    assert text.startswith("# Our tasks for ours")


def test_commands_need_init(repo: Path) -> None:
    r = run_cli("new", "x", cwd=repo)
    assert r.returncode == 1 and "specflowd init" in r.stderr


def repository_picture(repo: Path) -> tuple[str, str, str, list[tuple[str, bytes]]]:
    """Refs, worktrees, fsck's verdict and every file (git dir included): what `init` must leave as
    it found it when it fails."""
    files = sorted((str(p.relative_to(repo)), p.read_bytes()) for p in repo.rglob("*") if p.is_file())
    fsck = subprocess.run(["git", "fsck", "--no-progress"], cwd=repo, capture_output=True, text=True)
    return (git(repo, "for-each-ref"), git(repo, "worktree", "list", "--porcelain"),
            f"{fsck.returncode} {fsck.stdout}{fsck.stderr}", files)


def test_a_sha256_repository_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    repo = tmp_path / "sha256"
    repo.mkdir()
    git(repo, "init", "-q", "--object-format=sha256", "-b", "main")
    (repo / "README.md").write_text("hello\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "-q", "-m", "initial")
    before = repository_picture(repo)
    r = run_cli("init", cwd=repo)
    assert r.returncode == 1 and "sha256" in r.stderr and "SHA-1" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert repository_picture(repo) == before


def test_a_failing_init_leaves_the_repository_as_it_found_it_and_a_retry_works(repo: Path) -> None:
    # A hook of the person's own, and a chained one beside it: specflowd cannot chain a third.
    hooks = repo / ".git" / "hooks"
    for name in ("post-commit", "post-commit.specflowd-chained"):
        (hooks / name).write_text("#!/bin/sh\nexit 0\n")
        (hooks / name).chmod(0o755)
    before = repository_picture(repo)
    for _ in range(2):  # and again: a failed init leaves nothing that makes the next one fail otherwise
        r = run_cli("init", cwd=repo)
        assert r.returncode == 1 and "specflowd-chained" in r.stderr and "as it found it" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
        assert repository_picture(repo) == before
    (hooks / "post-commit.specflowd-chained").unlink()
    assert run_cli("init", cwd=repo).returncode == 0
    assert (hooks / "post-commit.specflowd-chained").read_text() == "#!/bin/sh\nexit 0\n"


def test_init_with_hooks_turned_off_skips_them_with_a_note(repo: Path) -> None:
    git(repo, "config", "core.hooksPath", "/dev/null")
    r = run_cli("init", cwd=repo)
    assert r.returncode == 0, r.stderr
    assert "no git hooks" in r.stdout and "core.hooksPath" in r.stdout
    assert Path("/dev/null").is_char_device()
    assert (repo / ".specflow" / "design-docs" / ".git").exists()
    assert run_cli("init", cwd=repo).returncode == 0  # and again
