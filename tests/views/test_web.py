"""`specflowd web` over HTTP, as a real process: the page and its safety headers, read only, the
JSON documents equal to the CLI's, and the event stream: one event per change, resumed with
Last-Event-ID, and streams that close leave nothing behind."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from specflowd.core.state import AgentRun, BatchState, OrchestrationState
from specflowd.core.vocab import Phase, TaskStatus
from specflowd.daemon import statefile
from specflowd.repo.project import locate
from tests.conftest import git, run_cli, wait_for
from tests.daemon.conftest import make_project
from tests.views.webtools import WebProcess

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def project(repo: Path) -> Path:
    return make_project(repo)


@pytest.fixture
def web(project: Path, tmp_path: Path) -> Iterator[WebProcess]:
    w = WebProcess(project, log=tmp_path / "web.log")
    yield w
    w.stop()


def waiting_state(oid: str = "7f3c9a21") -> OrchestrationState:
    """An orchestration whose agent waits for a pool slot: what `fleet` shows, the same at any time."""
    s = OrchestrationState(id=oid, spec="demo", project="/p", created_at=T0, updated_at=T0, started_at=T0,
                           phase=Phase.IMPLEMENT, current_batch=1)
    s.batches = [BatchState(index=1, name="Setup", task_ids=["T001", "T002", "T003"], runs=[1])]
    s.task_status = {"T001": TaskStatus.DONE, "T002": TaskStatus.PENDING, "T003": TaskStatus.PENDING}
    s.runs = [AgentRun(n=1, phase=Phase.IMPLEMENT, batch=1)]
    return s


def save(project: Path, state: OrchestrationState) -> None:
    state.project = str(project)
    statefile.save(locate(project), state)


def tip(project: Path) -> str:
    return git(project, "rev-parse", "helix-design-docs").strip()


# -- the page -----------------------------------------------------------------------------------


class Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.inline: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts.append(dict(attrs))
        if tag == "style":
            self.inline.append("<style>")
        self.inline += [f"{tag} {name}" for name, _ in attrs if name.startswith("on") or name == "style"]


def test_the_page_ships_its_script_and_style_and_allows_nothing_inline(web: WebProcess) -> None:
    status, headers, body = web.get("/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe" not in csp
    assert headers["x-content-type-options"] == "nosniff"
    markup = Markup()
    markup.feed(body.decode())
    assert markup.scripts == [{"src": "/page.js", "defer": None}]
    assert markup.inline == []
    for path, kind in (("/page.js", "text/javascript"), ("/page.css", "text/css")):
        status, headers, body = web.get(path)
        assert status == 200 and headers["content-type"].startswith(kind) and body
        assert headers["content-security-policy"] == csp
    # Only the page's own files are served: not the screenshot beside them, not the package.
    for path in ("/screenshot.png", "/static/page.js", "/../web.py", "/index.html"):
        assert web.get(path)[0] == 404, path


def test_it_is_read_only(web: WebProcess, project: Path) -> None:
    before = (tip(project), sorted(os.listdir(project / ".specflow" / "requests")))
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        status, headers, _ = web.get("/api/fleet", method=method, body=b'{"action": "start", "spec": "demo"}')
        assert status == 405 and headers["allow"] == "GET, HEAD"
    assert (tip(project), sorted(os.listdir(project / ".specflow" / "requests"))) == before


def test_another_sites_name_is_refused(web: WebProcess) -> None:
    """A page on another site whose name was pointed at 127.0.0.1 (DNS rebinding) reads nothing."""
    status, _, body = web.get("/api/overview", headers={"Host": f"evil.example:{web.port}"})
    assert status == 421 and b"project" not in body
    for host in (f"localhost:{web.port}", f"127.0.0.1:{web.port}", "localhost"):
        assert web.get("/api/overview", headers={"Host": host})[0] == 200


def test_the_api_answers_what_fleet_and_status_print(web: WebProcess, project: Path) -> None:
    save(project, waiting_state())
    wait_for(lambda: web.json("/api/overview")["board"]["agents"], message="the board to see the state file")
    fleet = run_cli("fleet", "--json", cwd=project)
    assert fleet.returncode == 0, fleet.stderr
    assert web.json("/api/fleet") == json.loads(fleet.stdout)
    assert json.loads(fleet.stdout)[0]["state"] == "waiting for a slot"
    status = run_cli("status", "7f3c9a21", "--json", cwd=project)
    assert status.returncode == 0, status.stderr
    api, cli = web.json("/api/orchestrations/7f3c9a21"), json.loads(status.stdout)
    assert api.pop("elapsed_s") > 0 and cli.pop("elapsed_s") > 0  # measured at each one's now
    assert api == cli
    card = web.json("/api/overview")["board"]["agents"][0]
    assert card["host"] == socket.gethostname()
    assert [(t["task"], t["title"], t["current"]) for t in card["around"]] == [
        ("T001", "Create the thing", False), ("T002", "Test the thing", True), ("T003", "Ship it", False)]
    assert web.get("/api/orchestrations/0badc0de")[0] == 404
    assert web.get("/api/orchestrations/..%2F..%2Fetc")[0] == 400


def test_a_specs_feed_and_an_evidence_commit(web: WebProcess, project: Path) -> None:
    (project / "thing.py").write_text("print('thing')\n")
    git(project, "add", "thing.py")
    git(project, "commit", "-qm", "Make the thing")
    code = git(project, "rev-parse", "HEAD").strip()
    assert run_cli("mark", "T001", "--done", "--now", "--evidence", code, cwd=project).returncode == 0
    entries = web.json("/api/feed/demo")
    assert entries[-1]["evidence"] == code and entries[-1]["tasks"] == [{"task": "T001", "status": "done"}]
    commit = web.json(f"/api/commits/{code[:12]}")
    assert commit["commit"] == code and commit["message"] == "Make the thing"
    assert commit["files"] == [{"path": "thing.py", "added": "1", "deleted": "0"}]
    assert web.get("/api/commits/--output=x")[0] == 400
    assert web.get("/api/commits/" + "0" * 40)[0] == 404
    assert web.get("/api/feed/..")[0] == 400
    assert web.get("/api/feed/demo?project=/elsewhere")[0] == 404


# -- the event stream ----------------------------------------------------------------------------


def test_one_event_per_change_naming_what_changed(web: WebProcess, project: Path) -> None:
    stream = web.stream()
    try:
        assert stream.headers["content-type"].startswith("text/event-stream")
        first = stream.next()
        assert first.name == "snapshot" and first.data["board"]["projects"][0]["root"] == str(project)
        # Writes in the repository that change nothing the page shows (a code commit) say nothing:
        # the next event is the mark's.
        (project / "code.py").write_text("x = 1\n")
        git(project, "add", "code.py")
        git(project, "commit", "-qm", "some code")
        assert run_cli("mark", "T001", "--done", "--now", cwd=project).returncode == 0
        commit = stream.next()
        assert commit.name == "commit" and commit.data["project"] == str(project)
        assert commit.data["entry"]["commit"] == tip(project)
        assert commit.data["entry"]["tasks"] == [{"task": "T001", "status": "done"}]
        # The next change is the next event: the mark above was said once.
        save(project, waiting_state())
        changed = stream.next()
        assert changed.name == "orchestration" and changed.data["orchestration"]["orchestration"] == "7f3c9a21"
        assert [c["task"] for c in changed.data["agents"]] == ["T002"]
        (project / ".specflow" / "workflows" / "orchestration-7f3c9a21.json").unlink()
        removed = stream.next()
        assert (removed.name, removed.data["orchestration"]) == ("removed", "7f3c9a21")
        broken = project / ".specflow" / "workflows" / "orchestration-0badc0de.json"
        broken.with_suffix(".tmp").write_text("{not json")
        broken.with_suffix(".tmp").rename(broken)  # state files are written whole, by rename
        problem = stream.next()
        assert problem.name == "problems" and "orchestration-0badc0de.json: unreadable" in problem.data["problems"][0]
        ids = [commit.id, changed.id, removed.id, problem.id]
        assert len(set(ids)) == 4 and all(ids)
    finally:
        stream.close()


def test_a_stream_that_reconnects_gets_what_it_missed(web: WebProcess, project: Path) -> None:
    stream = web.stream()
    try:
        snapshot = stream.next()
        for task in ("T001", "T002"):
            assert run_cli("mark", task, "--done", "--now", cwd=project).returncode == 0
        seen = [stream.next(), stream.next()]
    finally:
        stream.close()
    again = web.stream(last_id=snapshot.id)
    try:
        assert [(e.id, e.data) for e in (again.next(), again.next())] == [(e.id, e.data) for e in seen]
    finally:
        again.close()
    stranger = web.stream(last_id="0000-1")  # another server's id: the board again
    try:
        board = stranger.next()
        assert board.name == "snapshot"
        assert [e["commit"] for e in board.data["board"]["projects"][0]["feed"][-2:]] == \
            [e.data["entry"]["commit"] for e in seen]
    finally:
        stranger.close()


def test_closed_streams_end_their_threads(web: WebProcess) -> None:
    base = web.threads()
    streams = [web.stream() for _ in range(20)]
    for s in streams:
        assert s.next().name == "snapshot"
    assert web.threads() >= base + 20
    for s in streams:
        s.close()
    wait_for(lambda: web.threads() <= base, message="the streams' threads to end")


# -- the command line ----------------------------------------------------------------------------


def test_a_port_in_use_and_a_missing_project_are_said_in_one_line(web: WebProcess, project: Path,
                                                                 tmp_path: Path) -> None:
    r = run_cli("web", "-C", str(project), "--port", str(web.port), cwd=project, timeout=30)
    assert r.returncode == 1 and f"cannot listen on 127.0.0.1 port {web.port}" in r.stderr
    assert "Traceback" not in r.stderr
    r = run_cli("web", "-C", str(tmp_path / "nowhere"), cwd=project, timeout=30)
    assert r.returncode != 0 and "Traceback" not in r.stderr and "nowhere" in r.stderr


def test_sigterm_stops_it_cleanly(project: Path, tmp_path: Path) -> None:
    w = WebProcess(project, log=tmp_path / "web.log")
    stream = w.stream()
    assert stream.next().name == "snapshot"
    assert w.stop() == 0
    with pytest.raises((ConnectionError, OSError)):
        stream.next(timeout=10)
    stream.close()
    assert "Traceback" not in (tmp_path / "web.log").read_text()


def test_a_branch_moved_back_replaces_the_feed(web: WebProcess, project: Path) -> None:
    stream = web.stream()
    try:
        assert stream.next().name == "snapshot"
        assert run_cli("mark", "T001", "--done", "--now", cwd=project).returncode == 0
        marked = tip(project)
        assert stream.next().data["entry"]["commit"] == marked  # the page has it: now it goes
        git(project, "update-ref", "refs/heads/helix-design-docs", f"{marked}~1", marked)
        event = stream.next()
        assert event.name == "feed"
        assert [e["commit"] for e in event.data["entries"]][-1] == tip(project) != marked
    finally:
        stream.close()


def test_every_thread_of_it_yields_the_cpu_to_the_daemon(web: WebProcess) -> None:
    stream = web.stream()
    try:
        assert stream.next().name == "snapshot"  # a stream's thread is among them
        own = os.getpriority(os.PRIO_PROCESS, 0)
        for task in Path(f"/proc/{web.pid}/task").iterdir():
            nice = int((task / "stat").read_text().rsplit(")", 1)[1].split()[16])
            assert nice == min(19, own + 10), task.name
    finally:
        stream.close()
