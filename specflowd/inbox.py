"""The inbox on disk (SPEC §5): listing waiting requests, reading one safely, writing its answer
atomically and filing the request away with its bytes unchanged. Crash-safe by order: the answer is
written before the request moves, and a request whose answer exists is only moved."""

from __future__ import annotations

import fcntl
import json
import os
import stat
from pathlib import Path
from typing import Any

from specflowd.protocol import MAX_BYTES, FileFacts, is_request_name
from specflowd.statefile import atomic_write


class Inbox:
    def __init__(self, requests: Path, responses: Path) -> None:
        self.requests = requests
        self.responses = responses
        for folder in (requests / "tmp", requests / "done", requests / "failed", responses):
            folder.mkdir(parents=True, exist_ok=True)

    def waiting(self) -> list[str]:
        """Names of the requests waiting, oldest first."""
        found = []
        with os.scandir(self.requests) as it:
            for entry in it:
                if is_request_name(entry.name):
                    try:
                        found.append((entry.stat(follow_symlinks=False).st_mtime_ns, entry.name))
                    except FileNotFoundError:
                        continue
        return [name for _, name in sorted(found)]

    def read(self, name: str) -> tuple[bytes | None, FileFacts] | None:
        """The request's bytes (None when it must not be read) and what it is; None when it is gone or
        still open for writing."""
        path = self.requests / name
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None, FileFacts(name, False, st.st_uid, st.st_size)
        try:
            # O_NOFOLLOW|O_NONBLOCK: the file may have been swapped for a symlink or FIFO since lstat.
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            return None
        except OSError:
            return None, FileFacts(name, False, st.st_uid, st.st_size)
        try:
            st = os.fstat(fd)
            facts = FileFacts(name, stat.S_ISREG(st.st_mode), st.st_uid, st.st_size)
            if not facts.regular or st.st_size > MAX_BYTES:
                return None, facts
            if facts.uid == os.geteuid() and _being_written(fd):
                return None  # written in place, not renamed in: its close event brings it back
            return _read_at_most(fd, MAX_BYTES + 1), facts
        finally:
            os.close(fd)

    def answer_path(self, rid: str) -> Path:
        return self.responses / f"{rid}.json"

    def answered(self, rid: str) -> dict[str, Any] | None:
        try:
            return json.loads(self.answer_path(rid).read_bytes())
        except FileNotFoundError:
            return None
        except ValueError:  # cannot happen with atomic writes; a hand-damaged answer is answered again
            return None

    def answer(self, rid: str, response: dict[str, Any]) -> None:
        # Renamed into place, never fsynced: the order of the two renames is what makes a killed
        # daemon safe, and two fsyncs per answer would be most of a refused request's latency.
        # (State files, which nothing else can rebuild quickly, are fsynced.)
        atomic_write(self.answer_path(rid), json.dumps(response, indent=2).encode() + b"\n", durable=False)

    def file_away(self, name: str, ok: bool) -> Path:
        """Move the request to done/ or failed/, keeping an earlier request of the same name there."""
        folder = self.requests / ("done" if ok else "failed")
        target = folder / name
        n = 1
        while os.path.lexists(target):
            n += 1
            base, dot, ext = name.rpartition(".")
            target = folder / (f"{base}~{n}.{ext}" if dot and base else f"{name}~{n}")
        os.rename(self.requests / name, target)
        return target


def _being_written(fd: int) -> bool:
    """Whether any process has the file open for writing: a read lease is refused exactly then."""
    try:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except BlockingIOError:
        return True
    except OSError:  # leases unsupported here (some network filesystems): trust the writer to rename
        return False
    fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
    return False


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks = []
    total = 0
    while total < limit:
        chunk = os.read(fd, limit - total)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)
