"""Task text is data, never code: shell metacharacters, command substitution, backticks, very long
lines and control characters reach commit messages and prompts as text, and run nothing."""

from __future__ import annotations

from pathlib import Path

from specflowd.core import prompts
from specflowd.core.tasklist import Change, parse
from specflowd.core.trailers import mark_message
from specflowd.core.vocab import TaskStatus
from specflowd.repo.project import shipped_template
from tests.conftest import git, run_cli
from tests.e2e.orchestration.conftest import configure, start, wait_status

HOSTILE = ("Run $(touch PWNED1) and `touch PWNED2`; touch PWNED3 && echo \"q\" 'q' | cat > PWNED4 "
           "$HOME ${PATH} %s %n {tasks} $spec \x1b[31mred\x1b[0m\x07bell\x00nul")
LONG = "x" * 20_000


def tasks_text() -> str:
    return f"## Work\n- [ ] T001 {HOSTILE}\n- [ ] T002 {LONG}\n"


def no_pwned(*folders: Path) -> None:
    for folder in folders:
        assert not list(folder.rglob("PWNED*")), f"something ran in {folder}"


def test_commit_subjects_stay_one_clean_line(repo: Path) -> None:
    run_cli("init", cwd=repo)
    run_cli("new", "demo", cwd=repo)
    docs = repo / ".specflow" / "design-docs"
    (docs / "specs" / "demo" / "progress.md").write_text(tasks_text())
    git(docs, "commit", "-qam", "hostile tasks")
    for task in ("T001", "T002"):
        r = run_cli("mark", task, "--done", "--now", cwd=repo)
        assert r.returncode == 0, r.stderr
        subject = git(repo, "log", "-1", "--format=%s", "helix-design-docs")
        assert "\n" not in subject.strip() and len(subject.strip()) <= 120
        assert not any(ord(c) < 32 for c in subject.strip())
    r = run_cli("mark", "T001", "--blocked", "because $(touch PWNED5)\nand `touch PWNED6`", "--now", cwd=repo)
    assert r.returncode == 0, r.stderr
    body = git(repo, "log", "-1", "--format=%B", "helix-design-docs")
    assert "Specflow-Reason: because $(touch PWNED5) and `touch PWNED6`" in body
    text = git(repo, "show", "helix-design-docs:specs/demo/progress.md")
    assert "(blocked: because $(touch PWNED5) and `touch PWNED6`)" in text
    assert len(text.splitlines()) == 3  # the newline in the reason did not make a new line
    no_pwned(repo, Path.home())


def test_messages_and_prompts_carry_the_text_as_is() -> None:
    doc = parse(tasks_text().encode())
    message = mark_message("demo", [Change("T001", doc.tasks[0].title, TaskStatus.PENDING, TaskStatus.DONE)])
    subject, _, rest = message.partition("\n")
    assert "$(touch PWNED1)" in subject and "\x1b" not in subject and "\x07" not in subject
    assert all(line.startswith("Specflow-") or not line for line in rest.splitlines())
    request = prompts.PromptRequest(template="implement", values={
        "spec": "demo", "orchestration": "0123abcd", "tasks": f"- [ ] T001 {doc.tasks[0].description}"})
    text = prompts.render(request, shipped_template("prompts", "implement.md"), docs_worktree="/docs")
    assert "Run $(touch PWNED1) and `touch PWNED2`" in text
    assert "{tasks} $spec" in text  # placeholders inside task text are not filled in again


def test_an_orchestration_of_hostile_tasks_runs_nothing(repo: Path, start_daemon) -> None:
    from tests.e2e.orchestration.conftest import DEMO_AGENT

    for args in (("init",), ("new", "demo")):
        assert run_cli(*args, cwd=repo).returncode == 0
    docs = repo / ".specflow" / "design-docs"
    (docs / "specs" / "demo" / "progress.md").write_text(tasks_text())
    git(docs, "commit", "-qam", "hostile tasks")
    configure(repo, agent={"kind": "command", "command": DEMO_AGENT},
              orchestration={"skip_analyze": True, "auto_merge": True})
    start_daemon(repo)
    oid = start(repo)
    s = wait_status(repo, oid, {"completed", "needs_attention"})
    assert s["status"] == "completed", s["error"]
    code_log = git(repo, "log", "--format=%s", "main")
    assert "$(touch PWNED1)" in code_log  # the demo agent's commit carries the title as text
    no_pwned(repo, Path.home())
