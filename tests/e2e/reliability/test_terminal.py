"""Text from task lists, agents and commits is shown on people's terminals: an OSC 52 in a heading would
write their clipboard, an OSC 0 their window title, `ESC[2J` would clear their screen, and `[/red]`
would crash rich's live view. Every command that shows such text shows it as text; JSON stays exact."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

from rich.console import Console

from tests.conftest import git, run_cli
from tests.daemon.conftest import make_project
from tests.e2e.orchestration.conftest import configure, start, wait_status

CLIPBOARD = "\x1b]52;c;cHduZWQ=\x07"
TITLE = "\x1b]0;pwned\x07"
CLEAR = "\x1b[2J"
HEADING = f"[/red] Setup {CLIPBOARD}{TITLE}"
TASKS = f"# Tasks\n\n## {HEADING}\n\n- [ ] T001 Create {CLEAR}the thing\n- [ ] T002 Ship {TITLE}it\n"
AGENT = f"""import json, sys
sys.stdin.read()
print(json.dumps({{"ok": False, "result": "broke {CLEAR}{CLIPBOARD} here"}}))
sys.exit(1)
"""


def assert_plain(text: str) -> None:
    assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text, repr(text[:300])


def test_every_command_shows_hostile_text_as_text(repo: Path, tmp_path: Path, start_daemon) -> None:
    project = make_project(repo, tasks=TASKS)
    agent = tmp_path / "agent.py"
    agent.write_text(AGENT)
    configure(project, agent={"kind": "command", "command": f"{sys.executable} {agent}"},
              orchestration={"skip_analyze": True, "max_heal_attempts": 0})
    start_daemon(project)
    oid = start(project)
    wait_status(project, oid, {"needs_attention"})
    # A commit of a collaborator's, with escapes in its subject and trailers.
    docs = project / ".specflow" / "design-docs"
    git(docs, "commit", "-q", "--allow-empty", "-m", f"evil {TITLE}{CLEAR}",
        "-m", f"Specflow-Spec: demo{CLEAR}\nSpecflow-Orchestration: {CLIPBOARD}")
    outputs = {}
    for args in (("status",), ("status", oid), ("list",), ("plan", "demo"), ("log",), ("fleet",),
                 ("mark", "T001", "--done", "--wait", "10")):
        r = run_cli(*args, cwd=project)
        assert r.returncode in (0, 1) and "Traceback" not in r.stderr, (args, r.stderr)
        assert_plain(r.stdout + r.stderr)
        outputs[args[0]] = r.stdout
    assert "\\x1b[2J" in outputs["log"] and "[/red] Setup" in outputs["plan"]  # shown, escaped
    # JSON stays exact: the bytes as they are in the task list.
    plan = json.loads(run_cli("plan", "demo", "--json", cwd=project).stdout)
    assert plan["batches"][0]["name"] == HEADING
    # status --watch's screen, drawn by rich: `[/red]` is text, not markup (which would raise).
    from specflowd.repo.project import locate
    from specflowd.views.live import render

    console = Console(file=io.StringIO(), force_terminal=False, width=200)
    console.print(render(locate(project), oid))
    drawn = console.file.getvalue()
    assert_plain(drawn)
    assert "[/red] Setup" in drawn


def test_a_file_name_cannot_forge_a_line_of_the_daemon_log(repo: Path, start_daemon) -> None:
    project = make_project(repo)
    d = start_daemon(project)
    name = "x\nINFO specflowd.daemon: request deploy-prod: start ok\x1b[2J.json"
    d.drop({"action": "fly"}, name)
    d.filed(name)
    log = d.log()
    assert "\nINFO specflowd.daemon: request deploy-prod: start ok" not in log
    assert_plain(log)
