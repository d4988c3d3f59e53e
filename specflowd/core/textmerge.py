"""Carrying line changes onto a file someone else changed meanwhile: a mark rewrites task lines in
place, so its change can be re-applied to a person's newer copy line by line, or, on many machines,
to the version of the task list another host pushed first. Pure."""

from __future__ import annotations


def reapply(base: bytes, ours: bytes, theirs: bytes) -> bytes | None:
    """`theirs` with the lines that changed from `base` to `ours` changed the same way; None when
    that cannot be done cleanly (lines added or removed by us, or a changed line not found once).
    A line `theirs` already changed the same way (two hosts marked one task) is left as it is."""
    b = base.splitlines(keepends=True)
    o = ours.splitlines(keepends=True)
    if len(b) != len(o):
        return None
    out = theirs.splitlines(keepends=True)
    for i, (before, after) in enumerate(zip(b, o, strict=True)):
        if before == after:
            continue
        if i < len(out) and out[i] in (before, after):
            out[i] = after
            continue
        hits = [j for j, line in enumerate(out) if line == before]
        if len(hits) == 1:
            out[hits[0]] = after
        elif hits or out.count(after) != 1:
            return None
    return b"".join(out)
