"""Hostile and broken requests: 10,000 generated ones through the pure validator, and the nasty
hand-made cases through a live daemon. Each gets exactly one clear answer, the daemon keeps serving,
nothing outside `.specflow/` is touched, and inside it only the answer and the moved request change."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specflowd.core import ids
from specflowd.core.protocol import ErrorBody, FileFacts, parse_request
from specflowd.core.vocab import ErrorCode
from tests.conftest import git, wait_for
from tests.daemon.conftest import make_project

UID = os.geteuid()
NASTY = st.sampled_from(["../../etc/passwd", "/etc/shadow", "a\x00b", "line\nbreak", "$(touch /tmp/x)",
                         "`id`", "; rm -rf /", "T001\r\n", "🙂" * 50, "x" * 3000, "", " ", "..", "T001,T002"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
                    st.floats(allow_nan=True), st.text(max_size=40), NASTY)
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3), st.dictionaries(st.text(max_size=8), SCALARS, max_size=3))
KEYS = st.sampled_from(["id", "action", "spec", "task", "tasks", "status", "reason", "evidence", "orchestration",
                        "choice", "config", "extra"])
ACTIONS = st.sampled_from(["start", "pause", "resume", "cancel", "merge", "recover", "mark", "nope", "", None])
REQUESTS = st.builds(lambda action, rest: {"action": action, **rest}, ACTIONS,
                     st.dictionaries(KEYS, VALUES, max_size=6))
tried = {"n": 0}


def check(raw: bytes, name: str) -> None:
    rid, parsed = parse_request(raw, FileFacts(name, True, UID, len(raw)), UID)
    tried["n"] += 1
    ids.check_request_id(rid)  # the answer's file name is always safe
    if isinstance(parsed, ErrorBody):
        assert parsed.code in set(ErrorCode) and parsed.message
        assert "\n" not in parsed.code
    else:
        assert parsed.action in ("start", "pause", "resume", "cancel", "merge", "recover", "mark")


@settings(max_examples=6000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=300), st.sampled_from(["r.json", "r.toml", "../x.json", "a b.json", "\x01.toml"]))
def random_bytes(raw: bytes, name: str) -> None:
    check(raw, name)


@settings(max_examples=2500, deadline=None, suppress_health_check=list(HealthCheck))
@given(REQUESTS)
def structured_json(request: dict) -> None:
    check(json.dumps(request, allow_nan=True).encode(), "r.json")


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.text(max_size=200))
def toml_text(text: str) -> None:
    check(text.encode("utf-8", "surrogatepass"), "r.toml")


def test_ten_thousand_generated_requests_each_get_one_clear_answer() -> None:
    """Random bytes, structured JSON and TOML text: 10,000 requests between them, in one test (the
    tests run in several processes, so a count kept across tests would not add up)."""
    before = tried["n"]
    random_bytes()
    structured_json()
    toml_text()
    assert tried["n"] - before >= 10_000


def test_hand_made_cases() -> None:
    cases = {
        b'{"action": "mark", "action": "start", "spec": "x"}': None,  # duplicate keys: the last wins
        b"[" * 30_000 + b"]" * 30_000: "invalid_json",
        b"a = " + b"[" * 30_000 + b"]" * 30_000: "invalid_json",
        b'{"action": "mark", "task": "T1", "status": "done", "spec": "' + b"a" * 60_000 + b'"}': "invalid_field",
        b'{"action": "start", "spec": 1e999999}': "invalid_field",
        b'{"action": "start", "spec": 123456789012345678901234567890}': "invalid_field",
        b'\xef\xbb\xbf{"action": "pause", "orchestration": "0123abcd"}': None,
        b"\x00\x00": "invalid_json",
        b'{"action": "start", "spec": "../../x"}': "invalid_field",
        b'{"action": "start", "spec": "/etc"}': "invalid_field",
        b'{"id": "../../x", "action": "pause", "orchestration": "0123abcd"}': "invalid_field",
        b'{"action": "pause", "orchestration": "0123abcd", "x": 1}': "invalid_field",
    }
    for raw, code in cases.items():
        rid, parsed = parse_request(raw, FileFacts("r.json", True, UID, len(raw)), UID)
        ids.check_request_id(rid)
        if code is None:
            assert isinstance(parsed, ErrorBody) or parsed.action in ("start", "pause")
        else:
            assert isinstance(parsed, ErrorBody) and parsed.code == code, (raw[:60], parsed)


# -- through a live daemon ------------------------------------------------------------------------

def tree_digest(root: Path, *skip: str) -> dict[str, str]:
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(skip) or path.is_symlink() or not path.is_file():
            continue
        out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def other_refs(project: Path) -> list[str]:
    return [r for r in git(project, "for-each-ref").splitlines() if not r.endswith("refs/heads/helix-design-docs")]


def test_nasty_files_in_the_inbox_of_a_live_daemon(repo: Path, tmp_path: Path, start_daemon) -> None:
    project = make_project(repo)
    d = start_daemon(project)
    inbox = project / ".specflow" / "requests"
    outside = tmp_path / "secret.txt"
    outside.write_text("do not touch\n")
    before_outside = outside.read_bytes()
    # The marks asked for below are commits on the design-docs branch: git's own files change with
    # them; the work tree and every other ref must not.
    before = tree_digest(project, ".specflow", ".git")
    refs_before = other_refs(project)
    specflow_before = tree_digest(project / ".specflow", "requests")
    # Dropped straight into the inbox, as an attacker or a broken script would.
    (inbox / "link.json").symlink_to(outside)
    os.mkfifo(inbox / "fifo.json")
    (inbox / "folder.json").mkdir()
    with open(inbox / "huge.json", "wb") as f:
        f.truncate(100 * 1024 * 1024)  # 100 MB, sparse: must not be read
    names = {"link.json": "not_regular_file", "fifo.json": "not_regular_file", "folder.json": "not_regular_file",
             "huge.json": "too_large"}
    raw = {
        "nul.json": (b'{"action": "mark", "task": "T\x00", "status": "done"}', "invalid_json"),
        "deep.json": (b"[" * 50_000, "invalid_json"),
        "shell.json": (json.dumps({"action": "start", "spec": "$(touch pwned)"}).encode(), "invalid_field"),
        "dots.json": (json.dumps({"action": "mark", "spec": "../..", "task": "T001", "status": "done"}).encode(),
                      "invalid_field"),
        "bad.toml": (b"action = [", "invalid_toml"),
        "latin1.json": ('{"action": "pause", "orchestration": "é"}'.encode("latin-1"), "invalid_json"),
        "ghost.json": (b'{"action": "pause", "orchestration": "0123abcd"}', "unknown_orchestration"),
        "nospec.json": (b'{"action": "start", "spec": "nope"}', "unknown_spec"),
        "notask.json": (b'{"action": "mark", "spec": "demo", "task": "T999", "status": "done"}', "unknown_task"),
    }
    for name, (data, code) in raw.items():
        d.drop(data, name)
        names[name] = code
    # The same id twice at once: one effect, one answer shared.
    twins = [json.dumps({"id": "twin", "action": "mark", "spec": "demo", "task": "T001", "status": "done"})] * 2
    threads = [threading.Thread(target=d.drop, args=(t, f"twin-{i}.json")) for i, t in enumerate(twins)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name, code in names.items():
        d.filed(name, timeout=30)
        stem = name.rsplit(".", 1)[0]
        answer = json.loads((project / ".specflow" / "responses" / f"{stem}.json").read_text())
        assert answer["ok"] is False and answer["error"]["code"] == code, (name, answer)
        assert answer["error"]["message"]
    assert d.answer("twin")["ok"] is True
    d.filed("twin-0.json")
    d.filed("twin-1.json")
    marks = [line for line in (project / ".specflow" / "design-docs").joinpath("specs/demo/progress.md")
             .read_text().splitlines() if line.startswith("- [x]")]
    assert marks == ["- [x] T001 Create the thing"]
    # Still serving.
    d.drop({"id": "after", "action": "mark", "spec": "demo", "task": "T002", "status": "done"}, "after.json")
    assert d.answer("after")["ok"] is True
    # Nothing outside .specflow changed, nor the file a symlink pointed at, nor .specflow itself
    # apart from the answers, the filed requests and the committed marks.
    assert outside.read_bytes() == before_outside
    assert tree_digest(project, ".specflow", ".git") == before
    assert other_refs(project) == refs_before
    assert not (project / "pwned").exists()
    after = tree_digest(project / ".specflow", "requests")
    changed = {k for k in after if after[k] != specflow_before.get(k)} - {
        k for k in after if k.startswith(("responses/", "design-docs/", "workflows/"))}
    assert changed == set(), changed
    wait_for(lambda: not any(p.name.endswith(".json") for p in inbox.iterdir() if p.is_file()), 10,
             message="an empty inbox")
