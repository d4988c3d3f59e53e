"""Following a file another process appends to."""

from __future__ import annotations

import os
import select
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from specflowd.agents.tail import Follower, Inotify


def test_partial_lines_wait_for_their_end(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_bytes(b"old\n")
    follower = Follower(log, offset=4)
    try:
        with log.open("ab", buffering=0) as w:
            w.write(b"one\ntw")
            assert follower.read_lines() == ["one"]
            w.write("o \u00e9\nthree".encode())
            assert follower.read_lines() == ["two \u00e9"]
            assert follower.rest() == "three"
    finally:
        follower.close()


def test_one_inotify_tells_which_files_grew(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"")
    b.write_bytes(b"")
    inotify = Inotify()
    try:
        wa, wb = inotify.watch(a), inotify.watch(b)
        with b.open("ab") as w:
            w.write(b"x\n")
        assert select.select([inotify], [], [], 5)[0] == [inotify]
        assert inotify.fired() == {wb}
        assert select.select([inotify], [], [], 0)[0] == []  # fired() drained the notices
        inotify.unwatch(wb)
        for path in (a, b):
            with path.open("ab") as w:
                w.write(b"y\n")
        assert select.select([inotify], [], [], 5)[0] == [inotify]
        assert inotify.fired() == {wa}
    finally:
        inotify.close()


def test_keys_select_whole_lines_once(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_bytes(b'"tool_use" first\nplain text\nboth "subtype" and "tool_use"\nlast "subtype"\nunfinished "subtype"')
    follower = Follower(log, keys=('"subtype"', '"tool_use"'))
    try:
        assert follower.read_lines() == ['"tool_use" first', 'both "subtype" and "tool_use"', 'last "subtype"']
        assert follower.rest() == 'unfinished "subtype"'
    finally:
        follower.close()


@settings(deadline=None)  # file I/O on a loaded machine is not a slow test
@given(st.lists(st.sampled_from(["a", "key", "b key c", "", "x\u00e9key"]), max_size=20), st.integers(1, 40))
def test_selection_equals_filtering_every_line(tmp_path_factory, lines: list[str], piece: int) -> None:
    log = tmp_path_factory.mktemp("t") / "log"
    log.write_bytes(b"")
    follower = Follower(log, keys=("key",))
    data = "".join(f"{line}\n" for line in lines).encode()
    got: list[str] = []
    try:
        fd = os.open(log, os.O_WRONLY | os.O_APPEND)
        for i in range(0, len(data), piece):  # written in arbitrary pieces, read in between
            os.write(fd, data[i:i + piece])
            got += follower.read_lines()
        os.close(fd)
    finally:
        follower.close()
    assert got == [line for line in lines if "key" in line]
