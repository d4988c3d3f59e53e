"""Task lists: parse a progress.md/tasks.md into tasks, and mark tasks without touching other bytes.

Pure functions over bytes. The file is kept as its list of lines (endings included), so a mark
rewrites only the lines whose box changes and every other byte survives: CRLF, missing final
newline, invalid UTF-8. Tasks are frozen dataclasses rather than pydantic models because a
5,000-task file must parse in a few milliseconds; they are plain data all the same.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from enum import StrEnum
from itertools import accumulate
from typing import NamedTuple

TASK_RE = re.compile(rb"^(\s*)([-*+]) \[([ xX~bB-])\] (.*)$", re.DOTALL)
# The contract's TASK_RE, read in one C-level match on the raw line: indent, box, and the id
# when there is one. It matches exactly the lines TASK_RE matches (tests hold them equal).
TASK_LINE_RE = re.compile(
    rb"([ \t\f\v]*)[-*+] \[([ xX~bB-])\] [ \t]*(?:\*\*)?(?:(T\d{3,}[a-z]?)\b|(\d+(?:\.\d+)*)\.?(?=[ \t\r\n]|$))?"
)
HEADING_RE = re.compile(rb"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t#]*$")
FENCE_RE = re.compile(rb"^\s*(`{3,}|~{3,})")
SPEC_KIT_ID_RE = re.compile(r"^(?:\*\*)?(T\d{3,}[a-z]?)\b(?:\*\*)?:?")
DOTTED_ID_RE = re.compile(r"^(\d+(?:\.\d+)*)\.?(?=\s|$)")
TAG_RE = re.compile(r"\[(P|US\d+)\]")
DEPENDS_TAG_RE = re.compile(r"\[depends(?: on)?:\s*([^\]]*)\]", re.IGNORECASE)
DEPENDS_TEXT_RE = re.compile(
    r"\b(?:depends on|after|requires)\s+(T\d{3,}[a-z]?(?:\s*(?:,|and|&)\s*T\d{3,}[a-z]?)*)", re.IGNORECASE
)
TASK_ID_RE = re.compile(r"T\d{3,}[a-z]?")
# The reason is the last "(blocked: …)" of the line: a reason never holds another one, so text
# that happens to say "(blocked:" stays text.
BLOCKED_RE = re.compile(rb"( ?)\(blocked: ((?:(?!\(blocked: ).)*)\)(\s*)$", re.DOTALL)
BLOCKED_TEXT_RE = re.compile(r" ?\(blocked: ((?:(?!\(blocked: ).)*)\)\s*$")
TAB_WIDTH = 4


class Status(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    BLOCKED = "blocked"
    SKIPPED = "skipped"


BOX_STATUS: dict[bytes, Status] = {
    b" ": Status.PENDING,
    b"~": Status.IN_PROGRESS,
    b"x": Status.DONE,
    b"X": Status.DONE,
    b"b": Status.BLOCKED,
    b"B": Status.BLOCKED,
    b"-": Status.SKIPPED,
}
STATUS_BOX: dict[Status, bytes] = {
    Status.PENDING: b" ",
    Status.IN_PROGRESS: b"~",
    Status.DONE: b"x",
    Status.BLOCKED: b"b",
    Status.SKIPPED: b"-",
}
# Finished tasks need no more work: they close a parent and they leave a batch.
FINISHED = frozenset({Status.DONE, Status.SKIPPED})


class TaskListError(ValueError):
    """A request about a task list that cannot be honoured (unknown or ambiguous task)."""

    def __init__(self, message: str, *, code: str = "unknown_task") -> None:
        super().__init__(message)
        self.code = code


class Task(NamedTuple):
    index: int  # position among the file's tasks, 0-based
    id: str
    line: int  # 0-based line number of the task's line
    end_line: int  # last line of the task and its nested children
    indent: int
    box: str
    status: Status
    description: str  # everything after the box, decoded for display
    section: str | None  # the `## ` heading above it; None above the first one
    section_index: int  # 0 above the first `## `, then 1, 2, ...
    subsection: str | None
    parent: int | None
    children: tuple[int, ...]

    # Derived on use: parsing stays cheap and these read only a task's own text.
    @property
    def title(self) -> str:
        """The description without id, tags, dependencies and blocked reason."""
        return _details(self.description, self.status is Status.BLOCKED)[0]

    @property
    def tags(self) -> tuple[str, ...]:
        return _details(self.description, self.status is Status.BLOCKED)[1]

    @property
    def depends(self) -> tuple[str, ...]:
        return tuple(d for d in _details(self.description, self.status is Status.BLOCKED)[2] if d != self.id)

    @property
    def blocked_reason(self) -> str | None:
        return _details(self.description, self.status is Status.BLOCKED)[3]

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class Section(NamedTuple):
    index: int
    name: str
    line: int


class Document:
    """A parsed task list. Tasks are kept as columns and built as Task tuples on first use:
    planning needs only ids, boxes and sections, and must stay fast on 5,000-task files."""

    __slots__ = ("lines", "sections", "warnings", "_rows", "_by_id", "_tasks")

    def __init__(self, lines: tuple[bytes, ...], rows: list[tuple], sections: tuple[Section, ...],
                 by_id: dict[str, list[int]] | None = None, warnings: tuple[str, ...] = ()) -> None:
        self.lines = lines
        self.sections = sections
        self.warnings = warnings
        # rows[i] = (id, line, end_line, indent, box, section_index, subsection, parent, children)
        self._rows = rows
        self._by_id = by_id  # id -> task indexes, built on the first lookup
        self._tasks: tuple[Task, ...] | None = None

    def __len__(self) -> int:
        return len(self._rows)

    def to_bytes(self) -> bytes:
        return b"".join(self.lines)

    def statuses(self) -> list[Status]:
        return [BOX_STATUS[row[4]] for row in self._rows]

    def ids(self) -> list[str]:
        return [row[0] for row in self._rows]

    def section_indices(self) -> list[int]:
        return [row[5] for row in self._rows]

    def status(self, index: int) -> Status:
        return BOX_STATUS[self._rows[index][4]]

    def id(self, index: int) -> str:
        return self._rows[index][0]

    def section_index(self, index: int) -> int:
        return self._rows[index][5]

    def dependencies(self) -> dict[int, tuple[str, ...]]:
        """Task index -> ids it depends on, for the tasks that name any. One scan of the whole
        file finds the few lines that can name dependencies; only those are read closely."""
        starts = list(accumulate(map(len, self.lines), initial=0))
        text = self.to_bytes().lower()
        hit_lines: set[int] = set()
        for word in (b"depend", b"after", b"require"):
            at = text.find(word)
            while at >= 0:
                hit_lines.add(bisect_right(starts, at) - 1)
                at = text.find(word, at + 1)
        if not hit_lines:
            return {}
        task_lines = [row[1] for row in self._rows]
        out: dict[int, tuple[str, ...]] = {}
        for line in sorted(hit_lines):
            index = bisect_left(task_lines, line)
            if index < len(task_lines) and task_lines[index] == line:
                m = TASK_RE.match(self.lines[line].rstrip(b"\r\n"))
                assert m is not None
                deps = tuple(d for d in _depends(_decode(m.group(4))) if d != self._rows[index][0])
                if deps:
                    out[index] = deps
        return out

    def task(self, index: int) -> Task:
        task_id, line, end_line, indent, box, section_index, subsection, parent, children = self._rows[index]
        m = TASK_RE.match(self.lines[line].rstrip(b"\r\n"))
        assert m is not None
        section = self.sections[section_index - 1].name if section_index else None
        return Task(index, task_id, line, end_line, indent, box.decode(), BOX_STATUS[box], _decode(m.group(4)),
                    section, section_index, subsection, parent, children)

    @property
    def tasks(self) -> tuple[Task, ...]:
        if self._tasks is None:
            self._tasks = tuple(self.task(i) for i in range(len(self._rows)))
        return self._tasks

    def find(self, task_id: str) -> Task:
        """The task with this id (`T012`, `2.1`, or `#N` for the N-th task), or TaskListError."""
        return self.task(self.index_of(task_id))

    def index_of(self, task_id: str) -> int:
        """The index of the task with this id, or TaskListError (unknown, or ambiguous)."""
        key = task_id.strip()
        if key.startswith("#") and key[1:].isdigit():
            n = int(key[1:])
            if 1 <= n <= len(self._rows):
                return n - 1
        if self._by_id is None:
            self._by_id = _index(self._rows)
        hits = self._by_id.get(key) or self._by_id.get(key.upper()) or []
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            where = ", ".join(f"line {self._rows[i][1] + 1}" for i in hits)
            raise TaskListError(f"task id {key} is ambiguous: it appears at {where}; use #N", code="conflict")
        raise TaskListError(f"no task {key!r} in this task list")

    def with_line(self, index: int, new_line: bytes) -> Document:
        """A copy where task `index`'s line is replaced by a line with the same task on it."""
        row = self._rows[index]
        lines = list(self.lines)
        lines[row[1]] = new_line
        m = TASK_LINE_RE.match(new_line)
        assert m is not None
        rows = list(self._rows)
        rows[index] = row[:4] + (m.group(2),) + row[5:]
        return Document(tuple(lines), rows, self.sections, self._by_id, self.warnings)



def _decode(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def _depends(text: str) -> tuple[str, ...]:
    """Task ids a task's text names as dependencies, in both forms."""
    found: list[str] = []
    for dm in DEPENDS_TAG_RE.finditer(text):
        ids = TASK_ID_RE.findall(dm.group(1))
        found.extend(ids or [d.strip() for d in dm.group(1).split(",") if d.strip()])
    for dm in DEPENDS_TEXT_RE.finditer(DEPENDS_TAG_RE.sub("", text)):
        found.extend(TASK_ID_RE.findall(dm.group(1)))
    return tuple(dict.fromkeys(found))


def _details(desc: str, blocked: bool) -> tuple[str, tuple[str, ...], tuple[str, ...], str | None]:
    """(title, tags, depends, blocked reason) of a task's text; only a blocked task has a reason,
    elsewhere "(blocked: …)" is just words."""
    rest = desc.lstrip()
    m = SPEC_KIT_ID_RE.match(rest) or DOTTED_ID_RE.match(rest)
    if m:
        rest = rest[m.end():]
    reason = None
    bm = BLOCKED_TEXT_RE.search(rest) if blocked else None
    if bm:
        reason = bm.group(1)
        rest = rest[: bm.start()]
    depends = _depends(rest)
    rest = DEPENDS_TAG_RE.sub("", rest)
    tags = tuple(TAG_RE.findall(rest))
    rest = TAG_RE.sub("", rest)
    return " ".join(rest.split()), tags, depends, reason


def excluded_lines(lines: tuple[bytes, ...]) -> set[int]:
    """Lines that cannot hold tasks or headings: YAML front matter, fenced code, HTML comments.

    Only lines that open or close such a region need a closer look, and they are rare, so the
    scan tests each line with the cheapest check first."""
    excluded: set[int] = set()
    n = len(lines)
    i = 0
    if n and lines[0].rstrip(b"\r\n") == b"---":
        i = 1
        while i < n and lines[i].rstrip() not in (b"---", b"..."):
            i += 1
        excluded.update(range(0, min(i + 1, n)))
        i += 1
    while i < n:
        raw = lines[i]
        if b"```" in raw or b"~~~" in raw:
            fm = FENCE_RE.match(raw)
            if fm:
                fence = fm.group(1)
                j = i + 1
                while j < n:
                    stripped = lines[j].strip()
                    if stripped.startswith(fence) and stripped.strip(fence[:1]) == b"":
                        break
                    j += 1
                excluded.update(range(i, min(j + 1, n)))
                i = j + 1
                continue
        if b"<!--" in raw:
            opens = raw.rfind(b"<!--")
            if raw.lstrip().startswith(b"<!--"):
                excluded.add(i)
            if raw.find(b"-->", opens) < 0:
                j = i + 1
                while j < n and b"-->" not in lines[j]:
                    j += 1
                # The closing line may reopen a comment; restart the scan there.
                excluded.update(range(i + 1, min(j + 1, n)))
                if j < n:
                    tail = lines[j][lines[j].find(b"-->"):]
                    if b"<!--" in tail and tail.find(b"-->", tail.rfind(b"<!--")) < 0:
                        i = j
                        continue
                i = j + 1
                continue
        i += 1
    return excluded


def parse(data: bytes) -> Document:
    """Parse a task list. Never fails: odd bytes give odd descriptions, not errors."""
    lines = tuple(data.splitlines(keepends=True))
    excluded = excluded_lines(lines) if (b"```" in data or b"~~~" in data or b"<!--" in data
                                          or data.startswith(b"---")) else ()
    match = TASK_LINE_RE.match
    heading = HEADING_RE.match
    rows: list[tuple] = []
    sections: list[Section] = []
    children: dict[int, list[int]] = {}
    section_index = 0
    subsection: str | None = None
    stack: list[tuple[int, int]] = []  # (indent, task index) of open list items
    for i, raw in enumerate(lines):
        first = raw[:1]
        if first == b" " or first == b"\t":
            first = raw.lstrip()[:1]
        if first == b"-" or first == b"*" or first == b"+":
            m = match(raw)
            if m is None or (excluded and i in excluded):
                if raw[:1] == first:
                    stack.clear()
                continue
            ws, box, kit_id, dotted_id = m.groups()
            index = len(rows)
            if ws:
                indent = len(ws) + (TAB_WIDTH - 1) * ws.count(b"\t")
                while stack and stack[-1][0] >= indent:
                    stack.pop()
                parent = stack[-1][1] if stack else None
                if parent is not None:
                    children.setdefault(parent, []).append(index)
                stack.append((indent, index))
            else:  # the common flat list: a top-level item closes every open one
                indent = 0
                parent = None
                stack = [(0, index)]
            task_id = (kit_id or dotted_id or b"").decode() or f"#{index + 1}"
            rows.append((task_id, i, i, indent, box, section_index, subsection, parent, ()))
        elif first == b"#":
            hm = heading(raw.rstrip(b"\r\n"))
            if hm is None or (excluded and i in excluded):
                continue
            level = len(hm.group(1))
            title = _decode(hm.group(2) or b"").strip()
            if level == 2:
                section_index += 1
                subsection = None
                sections.append(Section(section_index, title, i))
            elif level > 2:
                subsection = title
            stack.clear()
        elif stack and first and first not in b" \t\r\n\f\v" and raw[:1] not in b" \t":
            stack.clear()  # an unindented paragraph ends the list
    if children:
        _fold_children(rows, children)
    by_id = None
    warnings: tuple[str, ...] = ()
    if len({row[0] for row in rows}) != len(rows):  # a C-level check; the index only when needed
        by_id = _index(rows)
        warnings = tuple(
            f"task id {k} appears {len(v)} times (lines {', '.join(str(rows[i][1] + 1) for i in v)})"
            for k, v in by_id.items() if len(v) > 1
        )
    return Document(lines, rows, tuple(sections), by_id, warnings)


def _index(rows: list[tuple]) -> dict[str, list[int]]:
    """Task id -> the indexes of the tasks with it (one, unless an id repeats)."""
    ids = [row[0] for row in rows]
    by_id = {task_id: [i] for i, task_id in enumerate(ids)}
    if len(by_id) != len(ids):  # an id repeats: gather every place it stands
        by_id = {}
        for i, task_id in enumerate(ids):
            by_id.setdefault(task_id, []).append(i)
    return by_id


def _fold_children(rows: list[tuple], children: dict[int, list[int]]) -> None:
    """Give parents their children and the line span that covers them (rows change in place)."""
    for index in range(len(rows) - 1, -1, -1):  # children come after parents: fold ends upward
        row = rows[index]
        end_line = row[2]
        if index in children:
            end_line = max(end_line, *(rows[c][2] for c in children[index]))
            row = row[:2] + (end_line,) + row[3:8] + (tuple(children[index]),)
            rows[index] = row


@dataclass(frozen=True, slots=True)
class Mark:
    """A request to set one task's status (a reason only for blocked)."""

    task: str
    status: Status
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """One task whose status a mark changed; `derived` for parents that followed their children."""

    id: str
    title: str
    old: Status
    new: Status
    derived: bool = False
    reason: str | None = None  # the blocked reason, when the new status is blocked


def clean_reason(reason: str) -> str:
    """A blocked reason fit for one line of a task list (and one commit trailer)."""
    text = " ".join("".join(c if c.isprintable() else " " for c in reason).split())
    # A reason holds no "(blocked: " of its own, or it would not read back as one reason.
    return text.replace("(blocked: ", "(blocked ") or "no reason given"


def _rewrite_line(raw: bytes, box: bytes, reason: str | None) -> bytes:
    """The task line `raw` with a new box, and the blocked reason set (str) or removed (None)."""
    content = raw.rstrip(b"\r\n")
    ending = raw[len(content):]
    m = TASK_RE.match(content)
    assert m is not None, "only task lines are rewritten"
    head = content[: m.start(3)] + box + content[m.end(3): m.start(4)]
    desc = m.group(4)
    bm = BLOCKED_RE.search(desc)
    was_blocked = m.group(3) in b"bB"
    if reason is None:
        # Only a reason written the way specflowd writes it (after one space, or alone) is taken
        # out; one run into the text stays text, so that unmarking gives the bytes back.
        if bm and was_blocked and (bm.group(1) or bm.start() == 0):
            desc = desc[: bm.start()] + bm.group(3)
        return head + desc + ending
    new = clean_reason(reason).encode()
    if bm and bm.group(2) == new:
        return head + desc + ending  # already says so
    if bm and was_blocked:
        return head + desc[: bm.start(2)] + new + desc[bm.end(2):] + ending
    trail = len(desc) - len(desc.rstrip())
    body, tail = (desc[: len(desc) - trail], desc[len(desc) - trail:]) if trail else (desc, b"")
    desc = body + (b" " if body else b"") + b"(blocked: " + new + b")" + tail
    return head + desc + ending


def set_box(doc: Document, index: int, box: str, reason: str | None = None) -> Document:
    """A new document with task `index` given exactly this box character (and blocked reason)."""
    line = doc._rows[index][1]
    if BOX_STATUS[box.encode()] is not Status.BLOCKED:
        reason = None
    new_line = _rewrite_line(doc.lines[line], box.encode(), reason)
    if new_line == doc.lines[line]:
        return doc
    return doc.with_line(index, new_line)


def _box_for(task: Task, status: Status) -> str:
    # Marking a task with the status it has keeps its spelling: `[X]` stays `[X]`.
    return task.box if task.status is status else STATUS_BOX[status].decode()


def apply_marks(doc: Document, marks: list[Mark]) -> tuple[Document, list[Change]]:
    """Apply marks, then let parents follow their children. Unknown ids raise TaskListError
    before anything changes. Marks that change nothing yield no Change."""
    targets = [(doc.index_of(m.task), m) for m in marks]
    before = doc
    for index, mark in targets:
        current = doc.task(index)
        reason = clean_reason(mark.reason or "") if mark.status is Status.BLOCKED else None
        if current.status is mark.status and reason == current.blocked_reason:
            continue
        doc = set_box(doc, index, _box_for(current, mark.status), reason)
    asked = {index for index, _ in targets}
    doc, derived = _follow_parents(doc, asked)
    changes = []
    for index in sorted(asked | derived):
        old, new = before.task(index), doc.task(index)
        if old.status is not new.status or old.blocked_reason != new.blocked_reason:
            changes.append(Change(new.id, new.title, old.status, new.status, derived=index not in asked,
                                  reason=new.blocked_reason))
    return doc, changes


def _follow_parents(doc: Document, touched: set[int]) -> tuple[Document, set[int]]:
    """A parent is done when all its children are finished, and no longer done when one is not.
    Returns the new document and the parents it changed."""
    changed: set[int] = set()
    parents = {doc.task(i).parent for i in touched} - {None}
    # Deepest parents first, so that a grandparent sees its children's new boxes.
    queue = sorted(parents, reverse=True)
    while queue:
        p = queue.pop(0)
        parent = doc.task(p)
        statuses = [doc.status(c) for c in parent.children]
        all_finished = all(st in FINISHED for st in statuses) and Status.DONE in statuses
        new_status = None
        if all_finished and parent.status is not Status.DONE:
            new_status = Status.DONE
        elif not all_finished and parent.status is Status.DONE:
            new_status = Status.PENDING
        if new_status is not None:
            doc = set_box(doc, p, STATUS_BOX[new_status].decode())
            changed.add(p)
            if parent.parent is not None and parent.parent not in queue:
                queue.append(parent.parent)
                queue.sort(reverse=True)
    return doc, changed


def counts(doc: Document) -> dict[str, int]:
    """How many tasks have each status (all statuses present, zero when none)."""
    out = {s.value: 0 for s in Status}
    for row in doc._rows:
        out[BOX_STATUS[row[4]].value] += 1
    return out
