"""The task-list parser and marks: what is a task, what it carries, and byte-exact round trips."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specflowd.core.tasklist import (
    HEADING_RE,
    STATUS_BOX,
    TAB_WIDTH,
    TASK_RE,
    Mark,
    TaskListError,
    apply_marks,
    excluded_lines,
    parse,
    set_box,
)
from specflowd.core.vocab import TaskStatus
from tests.conftest import CORPUS_FILES, TASKLISTS


def other_status(status: TaskStatus) -> TaskStatus:
    return TaskStatus.PENDING if status is TaskStatus.DONE else TaskStatus.DONE


def roundtrip(data: bytes) -> bytes:
    """Mark every task with another status, one mark at a time, then put every box back."""
    doc = parse(data)
    original = [(t.position, t.box, t.blocked_reason) for t in doc.tasks]
    for t in doc.tasks:
        doc, _ = apply_marks(doc, [Mark(f"#{t.position + 1}", other_status(doc.tasks[t.position].status))])
    for index, box, reason in original:
        doc = set_box(doc, index, box, reason)
    return doc.to_bytes()


# -- the corpus -------------------------------------------------------------------------------

def test_the_tests_own_task_lists_are_there() -> None:
    assert len(list(TASKLISTS.glob("*.md"))) >= 7, f"expected the task lists at {TASKLISTS}"


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_corpus_parses_and_round_trips(path) -> None:
    data = path.read_bytes()
    doc = parse(data)
    assert doc.tasks, "every corpus file holds tasks"
    assert doc.to_bytes() == data
    assert roundtrip(data) == data
    # Every task line really is a checklist line of the contract's form.
    for t in doc.tasks:
        assert TASK_RE.match(doc.lines[t.line].rstrip(b"\r\n"))


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_corpus_marks_all_done_then_back(path) -> None:
    data = path.read_bytes()
    doc = parse(data)
    done, _ = apply_marks(doc, [Mark(f"#{t.position + 1}", TaskStatus.DONE) for t in doc.tasks])
    assert all(t.status is TaskStatus.DONE for t in done.tasks)
    back = done
    for t in doc.tasks:
        back = set_box(back, t.position, t.box, t.blocked_reason)
    assert back.to_bytes() == data


def test_spec_kit_style_skips_front_matter_comments_fences_and_near_misses() -> None:
    data = (TASKLISTS / "spec-kit.md").read_bytes()
    doc = parse(data)
    ids = [t.id for t in doc.tasks]
    assert "T900" not in ids and "T901" not in ids and "T999" not in ids  # a comment, a fence
    assert doc.tasks[0].id == "T001" and doc.tasks[0].line > 3  # front matter skipped
    assert len(ids) == 12 and not any("tasks =" in t.description for t in doc.tasks)
    assert [t.status.value for t in doc.tasks[:7]] == ["done", "done", "pending", "pending", "in_progress",
                                                       "blocked", "skipped"]
    assert doc.find("T006").blocked_reason == "waiting on the API"
    assert doc.find("T004").depends == ("T001", "T002") and doc.find("T005").tags == ("P", "US1")


def test_kiro_and_id_less_styles() -> None:
    kiro = parse((TASKLISTS / "kiro.md").read_bytes())
    assert [t.id for t in kiro.tasks] == ["1", "2", "2.1", "2.2", "2.2.1", "2.2.2", "3", "3.1", "3.2"]
    assert kiro.find("2.2.1").parent == kiro.index_of("2.2")
    helix = parse((TASKLISTS / "helix-no-ids.md").read_bytes())
    assert [t.id for t in helix.tasks] == [f"#{n}" for n in range(1, 8)]
    assert helix.find("#5").parent == helix.index_of("#4")  # a tab-indented child


# -- what is a task ---------------------------------------------------------------------------

def test_ids_spec_kit_kiro_and_position() -> None:
    doc = parse(
        b"- [ ] T012 [P] [US1] Add the planner\n"
        b"- [x] 2.1 Kiro style\n"
        b"- [ ] 3. Numbered with a dot\n"
        b"- [ ] 2.5.1 Deep\n"
        b"- [ ] no id here\n"
        b"- [ ] T013a suffix\n"
    )
    assert [t.id for t in doc.tasks] == ["T012", "2.1", "3", "2.5.1", "#5", "T013a"]
    assert doc.tasks[0].tags == ("P", "US1")
    assert doc.tasks[0].title == "Add the planner"
    assert doc.find("#5").title == "no id here"
    assert doc.find("t012").id == "T012"


def test_statuses_from_every_box() -> None:
    doc = parse(b"- [ ] a\n- [~] b\n- [x] c\n- [X] d\n- [b] e (blocked: api down)\n- [B] f\n- [-] g\n")
    assert [t.status for t in doc.tasks] == [
        TaskStatus.PENDING, TaskStatus.IN_PROGRESS, TaskStatus.DONE, TaskStatus.DONE, TaskStatus.BLOCKED, TaskStatus.BLOCKED,
        TaskStatus.SKIPPED]
    assert doc.tasks[4].blocked_reason == "api down"
    assert doc.tasks[4].title == "e"


def test_things_that_are_not_tasks() -> None:
    doc = parse(
        b"---\n- [ ] T900 front matter\n---\n"
        b"- [P] tasks = different files\n"
        b"- **[P]**: can run in parallel\n"
        b"```\n- [ ] T901 fenced\n```\n"
        b"~~~~md\n- [ ] T902 tilde fenced\n~~~~\n"
        b"<!--\n- [ ] T903 commented\n-->\n"
        b"<!-- - [ ] T904 inline comment -->\n"
        b"- [y] not a box\n"
        b"-[ ] no space\n"
        b"- [ ]no space after\n"
        b"- [ ] T001 real\n"
    )
    assert [t.id for t in doc.tasks] == ["T001"]


def test_sections_subsections_and_preamble() -> None:
    doc = parse(
        b"# Title\n- [ ] T001 before\n## Setup\n- [ ] T002 a\n### Sub\n- [ ] T003 b\n## Core ##\n- [ ] T004 c\n"
    )
    t1, t2, t3, t4 = doc.tasks
    assert (t1.section, t1.section_index) == (None, 0)
    assert (t2.section, t2.subsection) == ("Setup", None)
    assert (t3.section, t3.subsection) == ("Setup", "Sub")
    assert (t4.section, t4.section_index) == ("Core", 2)


def test_dependencies_in_both_forms() -> None:
    doc = parse(
        b"- [ ] T001 first\n"
        b"- [ ] T002 [depends: T001] second\n"
        b"- [ ] T003 third (depends on T001, T002)\n"
        b"- [ ] T004 After T003 do this\n"
        b"- [ ] T005 Requires T004 and T002\n"
        b"- [ ] T006 runs after lunch\n"
    )
    deps = {t.id: t.depends for t in doc.tasks}
    assert deps == {"T001": (), "T002": ("T001",), "T003": ("T001", "T002"), "T004": ("T003",),
                    "T005": ("T004", "T002"), "T006": ()}
    assert doc.tasks[1].title == "second"
    assert doc.dependencies() == {i: deps[f"T00{i + 1}"] for i in range(1, 5)}


def test_nesting_and_spans() -> None:
    doc = parse(b"- [ ] 1. Parent\n  - [ ] 1.1 Child\n    - [ ] 1.1.1 Grandchild\n  - [ ] 1.2 Child two\n- [ ] 2. Next\n")
    p, c, g, c2, nxt = doc.tasks
    assert p.children == (1, 3) and c.children == (2,)
    assert c.parent == 0 and g.parent == 1 and c2.parent == 0 and nxt.parent is None
    assert (p.line, p.end_line) == (0, 3)


def test_parent_follows_children_both_ways() -> None:
    doc = parse(b"- [ ] 1. Parent\n  - [x] 1.1 a\n  - [ ] 1.2 b\n")
    done, changes = apply_marks(doc, [Mark("1.2", TaskStatus.DONE)])
    assert [(c.id, c.new, c.derived) for c in changes] == [("1", TaskStatus.DONE, True), ("1.2", TaskStatus.DONE, False)]
    assert done.to_bytes() == b"- [x] 1. Parent\n  - [x] 1.1 a\n  - [x] 1.2 b\n"
    undone, changes = apply_marks(done, [Mark("1.1", TaskStatus.PENDING)])
    assert undone.to_bytes() == b"- [ ] 1. Parent\n  - [ ] 1.1 a\n  - [x] 1.2 b\n"
    assert {c.id for c in changes} == {"1", "1.1"}


def test_grandparent_follows_too() -> None:
    doc = parse(b"- [ ] 1 Top\n  - [ ] 1.1 Mid\n    - [ ] 1.1.1 Leaf\n")
    done, changes = apply_marks(doc, [Mark("1.1.1", TaskStatus.DONE)])
    assert all(t.status is TaskStatus.DONE for t in done.tasks)
    assert len(changes) == 3


def test_blocked_reason_added_replaced_removed() -> None:
    data = b"- [ ] T001 Do it  \r\n- [ ] T002 other"
    doc = parse(data)
    blocked, changes = apply_marks(doc, [Mark("T001", TaskStatus.BLOCKED, "api\ndown")])
    assert blocked.lines[0] == b"- [b] T001 Do it (blocked: api down)  \r\n"
    assert changes[0].reason == "api down"
    again, _ = apply_marks(blocked, [Mark("T001", TaskStatus.BLOCKED, "still down")])
    assert again.tasks[0].blocked_reason == "still down"
    cleared, _ = apply_marks(again, [Mark("T001", TaskStatus.PENDING)])
    assert cleared.to_bytes() == data


def test_marking_keeps_spelling_and_reports_nothing_when_unchanged() -> None:
    doc = parse(b"- [X] T001 done already\n")
    same, changes = apply_marks(doc, [Mark("T001", TaskStatus.DONE)])
    assert changes == [] and same.to_bytes() == doc.to_bytes()


def test_unknown_and_ambiguous_ids() -> None:
    doc = parse(b"- [ ] T001 a\n- [ ] T001 b\n- [ ] T002 c\n")
    with pytest.raises(TaskListError, match="no task 'T404'"):
        apply_marks(doc, [Mark("T002", TaskStatus.DONE), Mark("T404", TaskStatus.DONE)])
    with pytest.raises(TaskListError, match="ambiguous"):
        doc.find("T001")
    assert doc.find("#2").title == "b"
    assert "T001 appears 2 times" in doc.warnings[0]


def test_odd_bytes_survive() -> None:
    data = b"\xef\xbb\xbf## S\r\n- [ ] T001 caf\xe9 \xff\xfe\r- [ ] T002 tab\there\n\t- [ ] T003 tabbed child"
    doc = parse(data)
    assert [t.id for t in doc.tasks] == ["T001", "T002", "T003"]
    assert doc.tasks[2].parent == 1
    marked, _ = apply_marks(doc, [Mark("T001", TaskStatus.DONE), Mark("T003", TaskStatus.DONE)])
    assert marked.lines[1] == b"- [x] T001 caf\xe9 \xff\xfe\r"
    assert marked.to_bytes().endswith(b"\t- [x] T003 tabbed child")
    assert roundtrip(data) == data


def test_five_thousand_tasks() -> None:
    data = b"".join(b"- [ ] T%04d task %d\n" % (i, i) for i in range(1, 5001))
    doc = parse(data)
    assert len(doc.tasks) == 5000 and doc.tasks[-1].id == "T5000"
    marked, changes = apply_marks(doc, [Mark("T2500", TaskStatus.DONE)])
    assert len(changes) == 1
    assert sum(a != b for a, b in zip(doc.lines, marked.lines, strict=True)) == 1


# -- generated files --------------------------------------------------------------------------

ENDINGS = st.sampled_from([b"\n", b"\r\n", b"\r"])
BOXES = st.sampled_from([b" ", b"x", b"X", b"~", b"b", b"B", b"-"])
TEXT = st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b""))


@st.composite
def task_line(draw) -> bytes:
    indent = draw(st.sampled_from([b"", b"  ", b"    ", b"\t"]))
    bullet = draw(st.sampled_from([b"-", b"*", b"+"]))
    ident = draw(st.sampled_from([b"", b"T%03d " % draw(st.integers(0, 999)), b"2.1 ", b"3. "]))
    reason = draw(st.booleans())
    body = ident + draw(TEXT)
    if reason:
        # A reason is written as "(blocked: why)" after the text and one space (README): other
        # spacing cannot be told apart from the text's own once the reason is gone.
        body = body.rstrip()
        body += (b" " if body else b"") + b"(blocked: waiting)"
    return indent + bullet + b" [" + draw(BOXES) + b"] " + body


@st.composite
def task_file(draw) -> bytes:
    parts = []
    if draw(st.booleans()):
        parts.append(b"---\ntitle: x\n---\n")
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.sampled_from(["task", "task", "task", "heading", "text", "fence", "comment", "blank"]))
        line = {
            "task": lambda: draw(task_line()),
            "heading": lambda: draw(st.sampled_from([b"## Section", b"### Sub", b"# Title", b"## "])),
            "text": lambda: draw(TEXT),
            "fence": lambda: b"```\n" + draw(task_line()) + b"\n```",
            "comment": lambda: b"<!--\n" + draw(task_line()) + b"\n-->",
            "blank": lambda: b"",
        }[kind]()
        parts.append(line + draw(ENDINGS))
    data = b"".join(parts)
    if draw(st.booleans()) and data.endswith((b"\n", b"\r")):
        data = data.rstrip(b"\r\n")  # no final newline
    return data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(task_file())
def test_generated_files_round_trip(data: bytes) -> None:
    doc = parse(data)
    assert doc.to_bytes() == data
    assert roundtrip(data) == data


@settings(max_examples=200, deadline=None)
@given(task_file(), st.data())
def test_a_mark_changes_only_task_lines(data: bytes, pick) -> None:
    doc = parse(data)
    if not doc.tasks:
        return
    t = pick.draw(st.sampled_from(doc.tasks))
    status = pick.draw(st.sampled_from(list(TaskStatus)))
    new, changes = apply_marks(doc, [Mark(f"#{t.position + 1}", status, "why")])
    task_lines = {x.line for x in doc.tasks}
    for i, (a, b) in enumerate(zip(doc.lines, new.lines, strict=True)):
        if a != b:
            assert i in task_lines
    assert new.tasks[t.position].status is status or changes == [] or t.children
    assert len(new.to_bytes()) - len(data) == sum(len(b) - len(a) for a, b in zip(doc.lines, new.lines, strict=True))


# -- the parser against a plain reading of the contract -------------------------------------

ID_RE = re.compile(rb"[ \t]*(?:\*\*)?(?:(T\d{3,}[a-z]?)\b|(\d+(?:\.\d+)*)\.?(?=[ \t\r\n]|$))")


def reference(data: bytes) -> list[tuple]:
    """SPEC §3 read one line at a time, as plainly as it can be written: the parser's bulk scan
    must find the same tasks, ids, boxes, sections and nesting."""
    lines = data.splitlines(keepends=True)
    skip = excluded_lines(tuple(lines))
    tasks: list[list] = []
    section, subsection = 0, None
    stack: list[tuple[int, int]] = []
    for k, raw in enumerate(lines):
        content = raw.rstrip(b"\r\n")
        m = TASK_RE.match(content) if k not in skip else None
        if m is None:
            heading = HEADING_RE.match(content) if k not in skip else None
            if heading and len(heading.group(1)) == 2:
                section, subsection = section + 1, None
            elif heading and len(heading.group(1)) > 2:
                subsection = heading.group(2).decode("utf-8", "replace").strip() if heading.group(2) else ""
            if raw[:1] not in b" \t\r\n\f\v":  # anything at the margin closes the list
                stack.clear()
            continue
        ws = m.group(1)
        indent = len(ws) + (TAB_WIDTH - 1) * ws.count(b"\t")
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1] if stack else None
        index = len(tasks)
        ident = ID_RE.match(m.group(4))
        task_id = (ident.group(1) or ident.group(2)).decode() if ident and ident.group(1) or ident and ident.group(2) \
            else f"#{index + 1}"
        tasks.append([task_id, m.group(3).decode(), k, k, section, subsection, parent, []])
        if parent is not None:
            tasks[parent][7].append(index)
        stack.append((indent, index))
    for index in range(len(tasks) - 1, -1, -1):
        for child in tasks[index][7]:
            tasks[index][3] = max(tasks[index][3], tasks[child][3])
    return [tuple(t[:7]) + (tuple(t[7]),) for t in tasks]


def parsed(data: bytes) -> list[tuple]:
    return [(t.id, t.box, t.line, t.end_line, t.section_index, t.subsection, t.parent, t.children)
            for t in parse(data).tasks]


# Lines made of what matters to the scan, so that near misses are common: a margin, a start
# (a box, a near box, a heading, a fence), and odd pieces after it.
MARGIN = st.sampled_from([b"", b"", b" ", b"  ", b"   ", b"    ", b"\t", b"\f", b"\v", b" \f"])
START = st.sampled_from([b"- [ ] ", b"* [x] ", b"+ [b] ", b"- [~] ", b"- [y] ", b"-[ ] ", b"- [ ]", b"- ", b"#", b"## ",
                         b"### ", b"####### ", b"```", b"~~~", b"<!--", b"-->", b"---", b"text", b""])
NEAR = st.lists(st.sampled_from([b"-", b" ", b"[", b"]", b"x", b"#", b"\t", b"\f", b"\v", b"T", b"0", b"12", b"T001",
                                 b"T0001a", b"2.1", b"3.", b".", b"**", b"a", b"- [ ] ", b"\xff", b"-->",
                                 b"depends on T001", b"[depends: T001]", b" (blocked: after T001)"]),
                max_size=6).map(b"".join)
LINE = st.tuples(MARGIN, START, NEAR).map(b"".join)


@settings(max_examples=600, deadline=None)
@given(st.lists(st.tuples(LINE, ENDINGS), max_size=12), st.booleans())
def test_scan_agrees_with_the_contract_line_by_line(rows: list[tuple[bytes, bytes]], final: bool) -> None:
    data = b"".join(line + ending for line, ending in rows)
    if not final:
        data = data.rstrip(b"\r\n")
    assert parsed(data) == reference(data)
    # The planner's bulk read of dependencies says what each task says of itself.
    doc = parse(data)
    assert doc.dependencies() == {t.position: t.depends for t in doc.tasks if t.depends}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(task_file())
def test_scan_agrees_with_the_contract_on_generated_files(data: bytes) -> None:
    assert parsed(data) == reference(data)


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_scan_agrees_with_the_contract_on_the_corpus(path) -> None:
    data = path.read_bytes()
    assert parsed(data) == reference(data)


@given(st.sampled_from([b"- [ ] T001 x", b"  * [~] 2.1 y", b"+ [b] z (blocked: q)"]))
def test_contract_lines_with_every_status(line: bytes) -> None:
    doc = parse(line)
    for status, box in STATUS_BOX.items():
        new, _ = apply_marks(doc, [Mark("#1", status, "r")])
        assert new.tasks[0].box.encode() in (box, box.upper())
