"""The inbox on disk (SPEC §5): listing waiting requests, reading one safely, writing its answer
atomically and filing the request away with its bytes unchanged. Crash-safe by order: the answer is
written before the request moves, and a request whose answer exists is only moved."""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import stat
from pathlib import Path
from typing import Any

from specflowd import fsio
from specflowd.core.protocol import MAX_BYTES, FileFacts, is_request_name


class Inbox:
    """One project's requests/ and responses/ folders."""

    def __init__(self, requests: Path, responses: Path) -> None:
        self.requests = requests
        self.responses = responses
        self.digests = responses / ".digests"
        fsio.make_private_dirs(requests, requests / "tmp", requests / "done", requests / "failed", responses,
                               responses / ".tmp", self.digests)

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
            if facts.uid == os.geteuid() and stat.S_IMODE(st.st_mode) != 0o600:
                os.fchmod(fd, 0o600)  # dropped by hand: like everything under .specflow/, the user's alone
            return _read_at_most(fd, MAX_BYTES + 1), facts
        finally:
            os.close(fd)

    def answer_path(self, rid: str) -> Path:
        return self.responses / f"{rid}.json"

    def answered(self, rid: str) -> tuple[dict[str, Any], str | None] | None:
        """The answer already given to `rid`, and the digest of the request it answered (None for
        answers older than digests); None when `rid` was never answered."""
        try:
            answer = json.loads(fsio.read_regular(self.answer_path(rid)) or b"null")
            digest = fsio.read_regular(self.digests / rid)
        except (OSError, ValueError):  # a hand-damaged answer: the request is answered again
            return None
        if not isinstance(answer, dict):
            return None
        return answer, digest.decode("ascii", "replace") if digest else None

    def unused_id(self, rid: str) -> str:
        """`rid~2` (`~3`, …): the name of an answer apart from the one `rid` already has."""
        return next(f"{rid}~{n}" for n in itertools.count(2) if not self.answer_path(f"{rid}~{n}").exists())

    def answer(self, rid: str, response: dict[str, Any], digest: str | None = None) -> None:
        """Write the answer atomically. The temp file lives in `responses/.tmp/`, not next to the answer:
        a rename inside a watched folder reaches watchdog as a rename-away plus a rename-in, and a
        rename-away can hold up a watcher's events for 0.5 s; arriving from elsewhere it is one event.
        Not fsynced: the order of the writes is what makes a killed daemon safe, and two fsyncs would
        be most of a refused request's latency (state files, which matter more, are fsynced)."""
        if digest is not None:  # first: an answer is never without the digest of what it answers
            fsio.atomic_write(self.digests / rid, digest.encode(), fsync=False)
        fsio.atomic_write(self.answer_path(rid), json.dumps(response, indent=2).encode() + b"\n", fsync=False,
                          tmp_dir=self.responses / ".tmp")

    def file_away(self, name: str, ok: bool) -> Path:
        """Move the request to done/ or failed/, keeping an earlier request of the same name there.
        Linked and unlinked rather than renamed, for the watcher's sake (see `answer`); killed between
        the two, the next call finds the link in place and only unlinks."""
        src = self.requests / name
        folder = self.requests / ("done" if ok else "failed")
        base, dot, ext = name.rpartition(".")
        for n in itertools.count(1):
            target = folder / (name if n == 1 else f"{base}~{n}.{ext}" if dot and base else f"{name}~{n}")
            if os.path.lexists(target):
                if _same_file(src, target):
                    break
                continue
            try:
                os.link(src, target, follow_symlinks=False)
            except PermissionError:  # a folder cannot be hard-linked
                os.rename(src, target)
                return target
            break
        os.unlink(src)
        return target


def _same_file(a: Path, b: Path) -> bool:
    sa, sb = os.lstat(a), os.lstat(b)
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


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
