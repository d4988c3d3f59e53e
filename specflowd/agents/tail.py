"""Following files other processes append to: one inotify instance for all, large reads, whole lines."""

from __future__ import annotations

import ctypes
import os
import re
import struct
from pathlib import Path

_IN_MODIFY = 0x2
_EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (then len bytes of name)
_CHUNK = 1 << 20
_libc = ctypes.CDLL(None, use_errno=True)


def _check(value: int, what: str) -> int:
    if value < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return value


class Inotify:
    """Growth notices for many files through one descriptor.

    One instance serves every run: instances are few per user (128 by default), and closing one
    waits for an RCU grace period (10-20 ms), which would sit between an agent's exit and its result.
    """

    def __init__(self) -> None:
        self._fd = _check(_libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC), "inotify_init1")

    def fileno(self) -> int:
        return self._fd

    def watch(self, path: Path) -> int:
        return _check(_libc.inotify_add_watch(self._fd, os.fsencode(path), _IN_MODIFY), f"inotify on {path}")

    def unwatch(self, wd: int) -> None:
        _libc.inotify_rm_watch(self._fd, wd)  # fails only when the file is gone already: nothing to undo

    def fired(self) -> set[int]:
        """The watches that saw a write since the last call."""
        wds: set[int] = set()
        try:
            while data := os.read(self._fd, 65536):
                offset = 0
                while offset < len(data):
                    wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
                    if mask & _IN_MODIFY:  # not the IN_IGNORED that follows an unwatch
                        wds.add(wd)
                    offset += _EVENT.size + length
        except BlockingIOError:
            pass
        return wds

    def close(self) -> None:
        os.close(self._fd)


class Follower:
    """Reads a growing file from an offset, in large chunks, handing over whole lines.

    With `keys`, only lines holding one of them are handed over, found by a scan in C: turning
    every line of a fast stream into a Python string would hold the GIL for nothing.
    """

    def __init__(self, path: Path, offset: int = 0, keys: tuple[str, ...] = ()) -> None:
        self._pattern = re.compile(b"|".join(re.escape(k.encode()) for k in keys)) if keys else None
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        os.lseek(self._fd, offset, os.SEEK_SET)
        self._rest = b""

    def read_lines(self) -> list[str]:
        """Every complete line written since the last call; a partial last line waits for its end."""
        chunks = [self._rest]
        while data := os.read(self._fd, _CHUNK):
            chunks.append(data)
            if len(data) < _CHUNK:
                break
        data = b"".join(chunks)
        end = data.rfind(b"\n") + 1
        complete, self._rest = data[:end], data[end:]
        return [line.decode("utf-8", "replace") for line in self._select(complete)]

    def _select(self, complete: bytes) -> list[bytes]:
        if self._pattern is None:
            return complete.split(b"\n")[:-1]
        lines: list[bytes] = []
        line_end = -1
        for m in self._pattern.finditer(complete):
            if m.start() <= line_end:
                continue  # another key on a line already taken
            start = complete.rfind(b"\n", 0, m.start()) + 1
            line_end = complete.find(b"\n", m.end())
            lines.append(complete[start:line_end])
        return lines

    def rest(self) -> str:
        """The unfinished last line (a writer that died mid-line leaves one)."""
        return self._rest.decode("utf-8", "replace")

    def close(self) -> None:
        os.close(self._fd)
