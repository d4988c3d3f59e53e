"""Task lists: parse a progress.md/tasks.md into tasks, and mark tasks without touching other bytes.

Pure functions over bytes. A mark rewrites only the line whose box changes (endings included), so
every other byte survives: CRLF, missing final newline, invalid UTF-8. Tasks are NamedTuples, not
pydantic models, and are built only on use: a 5,000-task file must parse and plan in a few
milliseconds, so parsing finds ids, boxes and lines in bulk (one regex split, loops in C).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import compress
from typing import NamedTuple

from specflowd.core.vocab import FINISHED, ErrorCode, TaskStatus

TASK_RE = re.compile(rb"^(\s*)([-*+]) \[([ xX~bB-])\] (.*)$", re.DOTALL)
# The contract's TASK_RE, tried at every line in one C-level split of "\n" + data at its line
# breaks: match k is the break before line k and, when line k is a task, its box and id. The
# lines it finds are the ones TASK_RE matches (tests hold them equal).
_TASK_START = (rb"[ \t\f\v]*[-*+] \[([ xX~bB-])\] [ \t]*(?:\*\*)?"
               rb"(T\d{3,}[a-z]?\b|\d+(?:\.\d+)*(?=\.?(?:[ \t\r\n]|$))|)")  # no id: empty, not None
SPLIT = re.compile(rb"\n(?:" + _TASK_START + rb")?")
LONE_CR_RE = re.compile(rb"\r(?!\n)")
# Whether any task is indented (one search); a flat list has no nesting to work out.
INDENTED_TASK_RE = re.compile(rb"[\r\n][ \t\f\v]+[-*+] \[[ xX~bB-]\] ")
HEADING_RE = re.compile(rb"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t#]*$")
FENCE_RE = re.compile(rb"^\s*(`{3,}|~{3,})")
SPEC_KIT_ID_RE = re.compile(r"^(?:\*\*)?(T\d{3,}[a-z]?)\b(?:\*\*)?:?", re.ASCII)
DOTTED_ID_RE = re.compile(r"^(\d+(?:\.\d+)*)\.?(?=[ \t\r\n]|$)", re.ASCII)
TAG_RE = re.compile(r"\[(P|US\d+)\]", re.ASCII)
DEPENDS_TAG_RE = re.compile(r"\[depends(?: on)?:\s*([^\]]*)\]", re.IGNORECASE | re.ASCII)
DEPENDS_TEXT_RE = re.compile(
    r"\b(?:depends on|after|requires)\s+(T\d{3,}[a-z]?(?:\s*(?:,|and|&)\s*T\d{3,}[a-z]?)*)", re.IGNORECASE | re.ASCII
)
# What a dependency must start with, in either form, read in the lowercased file: "after" and
# "requires" are common words, and only the few places that pass this are read closely.
DEPENDS_START_RE = re.compile(rb"depends(?: on)?:|(?:depends on|after|requires)\s+t\d{3}")
TASK_ID_RE = re.compile(r"T\d{3,}[a-z]?", re.ASCII)
# The reason is the last "(blocked: …)" of the line: a reason never holds another one, so text
# that happens to say "(blocked:" stays text.
BLOCKED_RE = re.compile(rb"( ?)\(blocked: ((?:(?!\(blocked: ).)*)\)(\s*)$", re.DOTALL)
BLOCKED_TEXT_RE = re.compile(r" ?\(blocked: ((?:(?!\(blocked: ).)*)\)\s*$", re.ASCII)
TAB_WIDTH = 4


BOX_STATUS: dict[bytes, TaskStatus] = {
    b" ": TaskStatus.PENDING,
    b"~": TaskStatus.IN_PROGRESS,
    b"x": TaskStatus.DONE,
    b"X": TaskStatus.DONE,
    b"b": TaskStatus.BLOCKED,
    b"B": TaskStatus.BLOCKED,
    b"-": TaskStatus.SKIPPED,
}
STATUS_BOX: dict[TaskStatus, bytes] = {
    TaskStatus.PENDING: b" ",
    TaskStatus.IN_PROGRESS: b"~",
    TaskStatus.DONE: b"x",
    TaskStatus.BLOCKED: b"b",
    TaskStatus.SKIPPED: b"-",
}
_UNFINISHED_BOXES = frozenset(box for box, status in BOX_STATUS.items() if status not in FINISHED)


class TaskListError(ValueError):
    """A request about a task list that cannot be honoured (unknown or ambiguous task)."""

    def __init__(self, message: str, *, code: ErrorCode = ErrorCode.UNKNOWN_TASK) -> None:
        super().__init__(message)
        self.code = code


class Task(NamedTuple):
    position: int  # among the file's tasks, 0-based
    id: str
    line: int  # 0-based line number of the task's line
    end_line: int  # last line of the task and its nested children
    indent: int
    box: str
    status: TaskStatus
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
        return _details(self.description, self.status is TaskStatus.BLOCKED)[0]

    @property
    def tags(self) -> tuple[str, ...]:
        return _details(self.description, self.status is TaskStatus.BLOCKED)[1]

    @property
    def depends(self) -> tuple[str, ...]:
        return tuple(d for d in _details(self.description, self.status is TaskStatus.BLOCKED)[2] if d != self.id)

    @property
    def blocked_reason(self) -> str | None:
        return _details(self.description, self.status is TaskStatus.BLOCKED)[3]

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class Section(NamedTuple):
    number: int  # 1-based
    name: str
    line: int


class _Found(NamedTuple):
    """What parsing found that marks do not change; a document shares it with its marked copies."""

    ids: list[str]
    at: list[int]  # the line of each task
    starts: list[int]  # the first task of each section: task i is in section bisect_right(starts, i)
    headings: list[tuple[int, int, str]]  # (line, level, title), for subsections
    by_id: dict[str, int]
    repeated: dict[str, list[int]]  # the ids that more than one task has, and where


class Document:
    """A parsed task list. Tasks are kept as columns (ids, boxes, lines) and built as Task tuples
    on use: planning needs only ids, boxes and sections, and must stay fast on 5,000-task files.
    The file's lines, and how tasks nest, are worked out on first use."""

    __slots__ = ("sections", "warnings", "_data", "_lines", "_boxes", "_found", "_shape", "_tasks")

    def __init__(self, data: bytes | None, lines: tuple[bytes, ...] | None, boxes: list[bytes], found: _Found,
                 sections: tuple[Section, ...], warnings: tuple[str, ...], shape: _Shape | None = None) -> None:
        self.sections = sections
        self.warnings = warnings
        self._data = data
        self._lines = lines
        self._boxes = boxes
        self._found = found
        self._shape = shape
        self._tasks: tuple[Task, ...] | None = None

    @property
    def lines(self) -> tuple[bytes, ...]:
        """The file's lines, each with its line ending."""
        if self._lines is None:
            assert self._data is not None
            self._lines = tuple(self._data.splitlines(keepends=True))
        return self._lines

    def __len__(self) -> int:
        return len(self._boxes)

    def to_bytes(self) -> bytes:
        return self._data if self._data is not None else b"".join(self.lines)

    def statuses(self) -> list[TaskStatus]:
        return list(map(BOX_STATUS.__getitem__, self._boxes))

    def ids(self) -> list[str]:
        return list(self._found.ids)

    def section_spans(self) -> list[tuple[int, int, int]]:
        """(section index, first task, end) of the preamble and of each section, in file order;
        task indexes start:end are the section's tasks (a section without tasks is empty)."""
        bounds = [0, *self._found.starts, len(self._boxes)]
        return [(k, bounds[k], bounds[k + 1]) for k in range(len(bounds) - 1)]

    def unfinished(self) -> list[bool]:
        """For each task, whether it still needs work (a loop in C: plans read 5,000 of these)."""
        return list(map(_UNFINISHED_BOXES.__contains__, self._boxes))

    def status(self, index: int) -> TaskStatus:
        return BOX_STATUS[self._boxes[index]]

    def id(self, index: int) -> str:
        return self._found.ids[index]

    def dependencies(self) -> dict[int, tuple[str, ...]]:
        """Task index -> ids it depends on, for the tasks that name any. One scan of the whole
        file finds the few lines that can name dependencies; only those are read closely."""
        data = _lf(self.to_bytes())
        text = data.lower()
        offsets = sorted(at for word in (b"depends", b"after", b"requires") for at in _find_all(text, word)
                         if DEPENDS_START_RE.match(text, at))
        at = self._found.at
        out: dict[int, tuple[str, ...]] = {}
        for offset, line in zip(offsets, _line_numbers(data, offsets), strict=True):
            index = bisect_left(at, line)
            if index < len(at) and at[index] == line and index not in out:
                m = TASK_RE.match(_line_around(data, offset)[1])
                assert m is not None
                body = _body(_decode(m.group(4)), m.group(3) in b"bB")[0]
                out[index] = tuple(d for d in _depends(body) if d != self._found.ids[index])
        return {i: deps for i, deps in sorted(out.items()) if deps}

    def task(self, index: int) -> Task:
        shape = self._shaped()
        line = self._found.at[index]
        box = self._boxes[index]
        m = TASK_RE.match(self.lines[line].rstrip(b"\r\n"))
        assert m is not None
        section_index = bisect_right(self._found.starts, index)
        section = self.sections[section_index - 1].name if section_index else None
        return Task(index, self._found.ids[index], line, shape.end_lines[index], shape.indents[index], box.decode(),
                    BOX_STATUS[box], _decode(m.group(4)), section, section_index, shape.subsections[index],
                    shape.parents[index], shape.children.get(index, ()))

    def _shaped(self) -> _Shape:
        if self._shape is None:
            nested = INDENTED_TASK_RE.search(b"\n" + self.to_bytes()) is not None
            self._shape = _shape(self.lines, self._found.at, self._found.headings, nested)
        return self._shape

    @property
    def tasks(self) -> tuple[Task, ...]:
        if self._tasks is None:
            self._tasks = tuple(self.task(i) for i in range(len(self._boxes)))
        return self._tasks

    def find(self, task_id: str) -> Task:
        """The task with this id (`T012`, `2.1`, or `#N` for the N-th task), or TaskListError."""
        return self.task(self.index_of(task_id))

    def index_of(self, task_id: str) -> int:
        """The index of the task with this id, or TaskListError (unknown, or ambiguous)."""
        key = task_id.strip()
        if key.startswith("#") and key[1:].isdigit():
            n = int(key[1:])
            if 1 <= n <= len(self._boxes):
                return n - 1
        found = self._found
        key = key if key in found.by_id else key.upper()
        if key in found.repeated:
            where = ", ".join(f"line {found.at[i] + 1}" for i in found.repeated[key])
            raise TaskListError(f"task id {key} is ambiguous: it appears at {where}; use #N", code=ErrorCode.CONFLICT)
        if key in found.by_id:
            return found.by_id[key]
        # `20` for `#20`: a shell drops an unquoted `#20` as a comment, so agents often pass the number.
        if key.isdigit() and 1 <= int(key) <= len(self._boxes) and found.ids[int(key) - 1] == f"#{key}":
            return int(key) - 1
        raise TaskListError(f"no task {task_id.strip()!r} in this task list")

    def with_line(self, index: int, new_line: bytes) -> Document:
        """A copy where task `index`'s line is replaced by a line with the same task on it (a
        new box or reason): ids, lines and nesting stay as they are."""
        lines = list(self.lines)
        lines[self._found.at[index]] = new_line
        m = TASK_RE.match(new_line.rstrip(b"\r\n"))
        assert m is not None
        boxes = list(self._boxes)
        boxes[index] = m.group(3)
        return Document(None, tuple(lines), boxes, self._found, self.sections, self.warnings, self._shape)


class _Shape(NamedTuple):
    """How tasks nest, and the subsection each is in: per task index."""

    indents: list[int]
    parents: list[int | None]
    children: dict[int, tuple[int, ...]]
    end_lines: list[int]
    subsections: list[str | None]


def _find_all(text: bytes, word: bytes) -> Iterator[int]:
    at = text.find(word)
    while at >= 0:
        yield at
        at = text.find(word, at + 1)


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


def _body(desc: str, blocked: bool) -> tuple[str, str | None]:
    """A task's text without its id and blocked reason, and the reason; only a blocked task has
    one, elsewhere "(blocked: …)" is just words."""
    rest = desc.lstrip()
    m = SPEC_KIT_ID_RE.match(rest) or DOTTED_ID_RE.match(rest)
    if m:
        rest = rest[m.end():]
    bm = BLOCKED_TEXT_RE.search(rest) if blocked else None
    if bm:
        return rest[: bm.start()], bm.group(1)
    return rest, None


def _details(desc: str, blocked: bool) -> tuple[str, tuple[str, ...], tuple[str, ...], str | None]:
    """(title, tags, depends, blocked reason) of a task's text."""
    rest, reason = _body(desc, blocked)
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
    scanned = _lf(data)
    # Loops run in C (split, compress, join): this is most of the time a 5,000-task plan takes.
    # Match k is the break before line k; on a task line it holds the box and id, else None.
    pieces = SPLIT.split(b"\n" + scanned)
    line_boxes = pieces[1::3]
    at = list(compress(range(len(line_boxes)), line_boxes))
    boxes = list(compress(line_boxes, line_boxes))
    ids = b"\0".join(compress(pieces[2::3], line_boxes)).decode().split("\0") if at else []
    heads = _heading_lines(scanned)
    lines = None
    if b"```" in data or b"~~~" in data or b"<!--" in data or data.startswith(b"---"):
        lines = tuple(data.splitlines(keepends=True))
        excluded = excluded_lines(lines)
        keep = [k not in excluded for k in at]
        at, boxes, ids = list(compress(at, keep)), list(compress(boxes, keep)), list(compress(ids, keep))
        heads = [(k, line) for k, line in heads if k not in excluded]
    if "" in ids:
        ids = [task_id or f"#{i + 1}" for i, task_id in enumerate(ids)]
    headings: list[tuple[int, int, str]] = []
    sections: list[Section] = []
    for k, content in heads:
        hm = HEADING_RE.match(content)
        if hm is None:
            continue
        level, title = len(hm.group(1)), _decode(hm.group(2) or b"").strip()
        headings.append((k, level, title))
        if level == 2:
            sections.append(Section(len(sections) + 1, title, k))
    by_id = dict(zip(ids, range(len(ids)), strict=True))
    repeated: dict[str, list[int]] = {}
    if len(by_id) != len(ids):
        for i, task_id in enumerate(ids):
            repeated.setdefault(task_id, []).append(i)
        repeated = {k: v for k, v in repeated.items() if len(v) > 1}
    warnings = tuple(f"task id {k} appears {len(v)} times (lines {', '.join(str(at[i] + 1) for i in v)})"
                     for k, v in repeated.items())
    starts = [bisect_left(at, section.line) for section in sections]
    found = _Found(ids, at, starts, headings, by_id, repeated)
    return Document(data, lines, boxes, found, tuple(sections), warnings)


def _heading_lines(text: bytes) -> list[tuple[int, bytes]]:
    """(line number, content) of each line that starts with "#" after at most three spaces,
    in `text` whose lines end in "\n" (see _lf)."""
    offsets, contents = [], []
    for offset in _find_all(text, b"#"):
        start, content = _line_around(text, offset)
        if offset - start <= 3 and content[: offset - start] == b" " * (offset - start):
            offsets.append(offset)
            contents.append(content)
    return list(zip(_line_numbers(text, offsets), contents, strict=True))


def _line_around(text: bytes, offset: int) -> tuple[int, bytes]:
    """Where the line that holds byte `offset` starts, and the line without its ending."""
    start = text.rfind(b"\n", 0, offset) + 1
    end = text.find(b"\n", offset)
    return start, text[start: end if end >= 0 else len(text)].rstrip(b"\r")


def _line_numbers(text: bytes, offsets: list[int]) -> list[int]:
    """The line of each of these (sorted) byte offsets."""
    out = []
    line = previous = 0
    for offset in offsets:
        line += text.count(b"\n", previous, offset)
        out.append(line)
        previous = offset
    return out


def _lf(data: bytes) -> bytes:
    """The file with the same lines, each ending in "\n" or "\r\n": bytes.splitlines also ends a
    line at a lone "\r", which only old Mac files have. Offsets and lines are read in this."""
    if b"\r" in data and LONE_CR_RE.search(data) is not None:
        return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return data


def _shape(lines: tuple[bytes, ...], at: list[int], headings: list[tuple[int, int, str]], nested: bool) -> _Shape:
    """Nesting and subsections. An indented task is the child of the nearest task above it with a
    smaller indent, while the list is open; a line that starts at the margin with anything but a
    task (a heading, a paragraph, another list item) closes the list."""
    n = len(at)
    subsections: list[str | None] = []
    current: str | None = None
    for line, level, title in headings:
        if level >= 2:  # a `## ` ends the subsection above it; a `# ` leaves it be
            start = bisect_left(at, line)
            subsections += [current] * (start - len(subsections))
            current = title if level > 2 else None
    subsections += [current] * (n - len(subsections))
    indents = [_indent(lines[k]) for k in at] if nested else [0] * n
    parents: list[int | None] = [None] * n
    children: dict[int, list[int]] = {}
    if any(indents):
        task_at = dict(zip(at, range(n), strict=True))
        stack: list[tuple[int, int]] = []  # (indent, task index) of open items
        for k, raw in enumerate(lines):
            index = task_at.get(k)
            if index is None:
                if stack and raw[:1] not in b" \t\r\n\f\v":
                    stack.clear()
                continue
            indent = indents[index]
            while stack and stack[-1][0] >= indent:
                stack.pop()
            if stack:
                parents[index] = stack[-1][1]
                children.setdefault(stack[-1][1], []).append(index)
            stack.append((indent, index))
    end_lines = list(at)
    for index in range(n - 1, -1, -1):  # children come after parents: fold spans upward
        if index in children:
            end_lines[index] = max(end_lines[index], *(end_lines[c] for c in children[index]))
    return _Shape(indents, parents, {p: tuple(c) for p, c in children.items()}, end_lines, subsections)


def _indent(raw: bytes) -> int:
    ws = raw[: len(raw) - len(raw.lstrip(b" \t\f\v"))]
    return len(ws) + (TAB_WIDTH - 1) * ws.count(b"\t")


@dataclass(frozen=True, slots=True)
class Mark:
    """A request to set one task's status (a reason only for blocked)."""

    task: str
    status: TaskStatus
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """One task whose status a mark changed; `derived` for parents that followed their children."""

    id: str
    title: str
    old: TaskStatus
    new: TaskStatus
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
    line = doc._found.at[index]
    if BOX_STATUS[box.encode()] is not TaskStatus.BLOCKED:
        reason = None
    new_line = _rewrite_line(doc.lines[line], box.encode(), reason)
    if new_line == doc.lines[line]:
        return doc
    return doc.with_line(index, new_line)


def _box_for(task: Task, status: TaskStatus) -> str:
    # Marking a task with the status it has keeps its spelling: `[X]` stays `[X]`.
    return task.box if task.status is status else STATUS_BOX[status].decode()


def apply_marks(doc: Document, marks: list[Mark]) -> tuple[Document, list[Change]]:
    """Apply marks, then let parents follow their children. Unknown ids raise TaskListError
    before anything changes. Marks that change nothing yield no Change."""
    targets = [(doc.index_of(m.task), m) for m in marks]
    before = doc
    for index, mark in targets:
        current = doc.task(index)
        reason = clean_reason(mark.reason or "") if mark.status is TaskStatus.BLOCKED else None
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
    parents = {p for i in touched if (p := doc.task(i).parent) is not None}
    # Deepest parents first, so that a grandparent sees its children's new boxes.
    queue = sorted(parents, reverse=True)
    while queue:
        p = queue.pop(0)
        parent = doc.task(p)
        statuses = [doc.status(c) for c in parent.children]
        all_finished = all(st in FINISHED for st in statuses) and TaskStatus.DONE in statuses
        new_status = None
        if all_finished and parent.status is not TaskStatus.DONE:
            new_status = TaskStatus.DONE
        elif not all_finished and parent.status is TaskStatus.DONE:
            new_status = TaskStatus.PENDING
        if new_status is not None:
            doc = set_box(doc, p, STATUS_BOX[new_status].decode())
            changed.add(p)
            if parent.parent is not None and parent.parent not in queue:
                queue.append(parent.parent)
                queue.sort(reverse=True)
    return doc, changed


def counts(doc: Document) -> dict[str, int]:
    """How many tasks have each status (all statuses present, zero when none)."""
    out = {s.value: 0 for s in TaskStatus}
    for box, n in Counter(doc._boxes).items():
        out[BOX_STATUS[box].value] += n
    return out
