"""Waiting for one name to appear in one folder, with the kernel's inotify read directly (ctypes).

A client (`mark --wait`, `start --wait`, every request command) waits once for its answer file and
exits; watchdog would start an observer thread and cost an import a dozen times dearer than the
wait itself. The daemon and the long-lived followers (`log -f`, `status --watch`, `web`) keep
watchdog (`repo/follow.py`, `daemon/watch.py`).
"""

from __future__ import annotations

import ctypes
import os
import select
import struct
import time
from pathlib import Path
from types import TracebackType

IN_CREATE = 0x00000100
IN_MOVED_TO = 0x00000080
IN_Q_OVERFLOW = 0x00004000
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name (NUL-padded)


class NameWatch:
    """Watches `folder` for `name` being created or renamed in. Open it before making the thing
    that will be answered, so that a quick answer cannot slip in before the watch starts."""

    def __init__(self, folder: Path, name: str) -> None:
        self.name = os.fsencode(name)
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.inotify_init1(os.O_CLOEXEC | os.O_NONBLOCK)
        if fd < 0:
            raise OSError(ctypes.get_errno(), f"inotify_init1: {os.strerror(ctypes.get_errno())}")
        self.fd: int = fd
        if libc.inotify_add_watch(fd, os.fsencode(folder), IN_CREATE | IN_MOVED_TO) < 0:
            err = ctypes.get_errno()
            os.close(fd)
            raise OSError(err, f"inotify_add_watch {folder}: {os.strerror(err)}")

    def wait(self, timeout: float) -> bool:
        """True once `name` was seen (or the kernel's queue overflowed: look again), False when
        `timeout` seconds passed without it."""
        deadline = time.monotonic() + timeout
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not poller.poll(left * 1000):
                return False
            if self._seen(os.read(self.fd, 65536)):
                return True

    def _seen(self, data: bytes) -> bool:
        at = 0
        while at + _EVENT.size <= len(data):
            _, mask, _, length = _EVENT.unpack_from(data, at)
            name = data[at + _EVENT.size:at + _EVENT.size + length].rstrip(b"\0")
            at += _EVENT.size + length
            if mask & IN_Q_OVERFLOW or name == self.name:
                return True
        return False

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> NameWatch:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
