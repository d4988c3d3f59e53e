"""Validating request files: every bad request gets the right error code, a good one its model."""

from __future__ import annotations

import json
import os

import pytest

from specflowd.core.protocol import (
    MAX_BYTES,
    ErrorBody,
    FileFacts,
    MarkRequest,
    RecoverRequest,
    StartRequest,
    fallback_id,
    is_request_name,
    parse_request,
    schemas,
)

UID = os.geteuid()


def parse(data: bytes | str | dict, name: str = "r1.json", uid: int = UID, regular: bool = True):
    raw = data if isinstance(data, bytes) else (data.encode() if isinstance(data, str) else json.dumps(data).encode())
    return parse_request(raw, FileFacts(name, regular, uid, len(raw)), UID)


def error(data, **kw) -> ErrorBody:
    _, got = parse(data, **kw)
    assert isinstance(got, ErrorBody), got
    return got


def test_a_mark_request_parses_with_the_file_name_as_id() -> None:
    rid, req = parse({"action": "mark", "spec": "demo", "task": "T001", "status": "done"}, name="m-1.json")
    assert rid == "m-1"
    assert isinstance(req, MarkRequest) and req.task_ids == ["T001"]


def test_the_id_field_names_the_answer() -> None:
    rid, _ = parse({"id": "mine", "action": "pause", "orchestration": "0123abcd"})
    assert rid == "mine"


def test_toml_requests_parse() -> None:
    rid, req = parse('id = "t"\naction = "start"\nspec = "demo"\n[config]\nauto_merge = true\n', name="x.toml")
    assert isinstance(req, StartRequest)
    assert req.config == {"auto_merge": True}  # only the keys given: they override the project config


def test_recover_needs_a_known_choice() -> None:
    _, req = parse({"action": "recover", "orchestration": "0123abcd", "choice": "skip"})
    assert isinstance(req, RecoverRequest)
    assert error({"action": "recover", "orchestration": "0123abcd", "choice": "maybe"}).field == "choice"


@pytest.mark.parametrize(("data", "name", "code", "field"), [
    (b"{not json", "a.json", "invalid_json", None),
    (b"action = [", "a.toml", "invalid_toml", None),
    (b'{"action": "mark", "x": "\xff"}', "a.json", "invalid_json", None),
    (b"[1, 2]", "a.json", "invalid_json", None),
    ({"action": "explode"}, "a.json", "unknown_action", "action"),
    ({"spec": "demo"}, "a.json", "invalid_field", "action"),
    ({"action": "start", "spec": "demo", "colour": "red"}, "a.json", "invalid_field", "colour"),
    ({"action": "start", "spec": "../../etc"}, "a.json", "invalid_field", "spec"),
    ({"action": "start", "spec": "demo", "config": {"auto_merge": "often"}}, "a.json", "invalid_field",
     "config.auto_merge"),
    ({"action": "start", "spec": "demo", "config": {"nope": 1}}, "a.json", "invalid_field", "config.nope"),
    ({"action": "pause", "orchestration": "../x"}, "a.json", "invalid_field", "orchestration"),
    ({"action": "pause"}, "a.json", "invalid_field", "orchestration"),
    ({"action": "mark", "task": "T001", "status": "finished"}, "a.json", "invalid_field", "status"),
    ({"action": "mark", "status": "done"}, "a.json", "invalid_field", None),
    ({"action": "mark", "task": "T1", "tasks": ["T2"], "status": "done"}, "a.json", "invalid_field", None),
    ({"action": "mark", "task": "T1", "status": "done", "reason": "why"}, "a.json", "invalid_field", None),
    ({"action": "mark", "task": "T1", "status": "done", "evidence": "not-a-sha"}, "a.json", "invalid_field",
     "evidence"),
    ({"id": "../../x", "action": "pause", "orchestration": "0123abcd"}, "a.json", "invalid_field", "id"),
])
def test_bad_requests_get_their_code(data, name: str, code: str, field: str | None) -> None:
    got = error(data, name=name)
    assert (got.code, got.field) == (code, field)
    assert got.message


def test_file_facts_are_checked_before_the_bytes() -> None:
    assert error({"action": "pause"}, regular=False).code == "not_regular_file"
    assert error({"action": "pause"}, uid=UID + 1).code == "wrong_owner"
    big = json.dumps({"action": "mark", "task": "T1", "status": "done", "reason": "x" * MAX_BYTES})
    assert error(big).code == "too_large"


def test_an_unsafe_file_name_still_gets_a_safe_answer_name() -> None:
    rid = fallback_id("we ird..na/me.json")
    assert "/" not in rid and ".." not in rid and rid.endswith(".json") is False
    rid2, _ = parse({"action": "explode"}, name="we ird.json")
    assert rid2 != "we ird" and " " not in rid2


def test_files_being_written_are_never_requests() -> None:
    assert is_request_name("a.json")
    for name in (".a.json", "a.json.tmp", "tmp", "done", "failed", ""):
        assert not is_request_name(name)


def test_schemas_cover_requests_responses_and_state() -> None:
    found = schemas()
    assert set(found) == {"request", "response", "state"}
    assert "mark" in json.dumps(found["request"])
    assert "schema_version" in found["state"]["properties"]
