"""Following a file another process appends to: inotify wake-ups, large reads, whole lines."""

from __future__ import annotations

import ctypes
import os
import re
from pathlib import Path

_IN_MODIFY = 0x2
_CHUNK = 1 << 20
_libc = ctypes.CDLL(None, use_errno=True)


class Follower:
    """Reads a growing file from an offset; `fileno()` becomes readable when the file grows.

    With `keys`, only lines holding one of them are returned, found by a scan in C: a reader
    that turned every line of a fast stream into a Python string would hold the GIL for it.
    """

    def __init__(self, path: Path, offset: int = 0, keys: tuple[str, ...] = ()) -> None:
        self._pattern = re.compile(b"|".join(re.escape(k.encode()) for k in keys)) if keys else None
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self._inotify = _libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self._inotify < 0 or _libc.inotify_add_watch(self._inotify, os.fsencode(path), _IN_MODIFY) < 0:
            err = ctypes.get_errno()
            self.close()
            raise OSError(err, f"inotify on {path}: {os.strerror(err)}")
        os.lseek(self._fd, offset, os.SEEK_SET)
        self._rest = b""

    def fileno(self) -> int:
        return self._inotify

    def read_lines(self) -> list[str]:
        """Every complete line written since the last call; a partial last line waits for its end."""
        # Drain the wake-ups first: a write after this point wakes the next poll.
        try:
            while os.read(self._inotify, 65536):
                pass
        except BlockingIOError:
            pass
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
        for fd in (self._fd, self._inotify):
            if fd >= 0:
                os.close(fd)
        self._fd = self._inotify = -1
