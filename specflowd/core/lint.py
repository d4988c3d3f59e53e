"""Problems that make a task list unsafe to commit: near-miss task lines and duplicate ids."""

from __future__ import annotations

import re

from specflowd.core.tasklist import TASK_RE, Document, excluded_lines

# A checkbox the contract would accept, written so that the contract's regex does not match it.
NEAR_TASK_RE = re.compile(rb"^\s*[-*+]\s*\[[ xX~bB-]\](?:\S|$)|^\s*[-*+](?:| {2,}|\t)\[[ xX~bB-]\]")


def removal(old: Document, new: Document) -> str | None:
    """Why an edit from `old` to `new` is too big to commit for a person who did not ask: it removes
    every task, or more than half of them (a 0-byte save, an editor that crashed mid-write)."""
    before = set(old.ids())
    if not before:
        return None
    gone = len(before - set(new.ids()))
    if len(new) == 0 or gone * 2 > len(before):
        return f"removes {gone} of {len(before)} tasks"
    return None


def lint(doc: Document) -> list[str]:
    """Human-readable problems, each naming its line; empty when the list is fine to commit."""
    problems = []
    skip = excluded_lines(doc.lines)
    for i, raw in enumerate(doc.lines):
        content = raw.rstrip(b"\r\n")
        if i in skip or not NEAR_TASK_RE.match(content) or TASK_RE.match(content):
            continue
        text = content.decode("utf-8", "replace").strip()
        problems.append(f"line {i + 1}: {text[:60]!r} looks like a task but is not one "
                        "(write it as `- [ ] T001 text`: dash, space, box, space)")
    problems.extend(doc.warnings)
    return problems
