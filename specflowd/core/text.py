"""Untrusted text made safe to show or to keep on one line. Task descriptions and headings, agent
output, commit subjects and file names come from other people and programs: on a terminal a raw
ESC or BEL could set the clipboard (OSC 52), the window title (OSC 0) or clear the screen; in a log
a newline forges a line; in a commit subject it breaks the message's shape."""

from __future__ import annotations

import re

# C0 controls but tab, DEL, the C1 controls, and the bidirectional overrides that can make text
# read in another order than it runs.
_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """`text` with every control character shown as an escape (`\\x1b`), so that it reads as text."""
    return _UNSAFE.sub(_escape, text)


def visible_lines(text: str) -> str:
    """`visible` for a block of lines: each line made safe, the line breaks kept."""
    return "\n".join(visible(line) for line in text.split("\n"))


def quoted(text: str) -> str:
    """`text` in quotes with its control characters shown: for a log line that names a file."""
    return f"'{visible(text)}'"


def one_line(text: str, limit: int = 120) -> str:
    """Text fit for a commit subject or trailer: control characters and newlines become spaces,
    runs of spaces one, and it is cut at `limit` characters."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
