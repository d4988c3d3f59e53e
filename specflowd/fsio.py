"""Files that must never be seen half-written, and never reached through a planted link.

`atomic_write` is the one way specflowd replaces a file: a temp file made with
O_CREAT | O_EXCL | O_NOFOLLOW inside the target's folder (opened with O_NOFOLLOW, and written
relative to), its mode set whatever the umask, then renamed over the target. A reader, and a
crash, see the old file or the new one, never a part; a symlink planted where the temp file or
the target goes is never followed (the rename replaces a link, it does not write through it).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def atomic_write(path: Path, data: bytes, *, mode: int | None = 0o600, fsync: bool = True,
                 tmp_dir: Path | None = None) -> None:
    """Replace `path` with `data`. `mode`: the file's permissions whatever the umask; None lets the
    umask decide, as for a file a person's tools write (one in their checkout). `fsync`: the data and the rename are on disk when this returns
    (state that must survive a power cut); without it, a crash may leave the old file. `tmp_dir`:
    where the temp file is made, when a watcher of `path`'s folder must see one arrival rather
    than a create and a write (it must be on the same filesystem)."""
    folder = os.open(path.parent, _DIR_FLAGS)
    try:
        scratch = os.open(tmp_dir, _DIR_FLAGS) if tmp_dir is not None else folder
        try:
            tmp = f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
            fd = os.open(tmp, _NEW_FLAGS, 0o666 if mode is None else mode, dir_fd=scratch)
            try:
                try:
                    if mode is not None:
                        os.fchmod(fd, mode)
                    _write_all(fd, data)
                    if fsync:
                        os.fsync(fd)
                finally:
                    os.close(fd)
                os.rename(tmp, path.name, src_dir_fd=scratch, dst_dir_fd=folder)
            except BaseException:
                with contextlib.suppress(OSError):  # the cleanup must not hide the failure
                    os.unlink(tmp, dir_fd=scratch)
                raise
        finally:
            if scratch != folder:
                os.close(scratch)
        if fsync:
            os.fsync(folder)
    finally:
        os.close(folder)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class NotRegularFile(OSError):
    """The path is a symlink, a folder, a FIFO or a device: not a file specflowd reads."""

    def __init__(self, path: Path, what: str) -> None:
        super().__init__(f"{path} is {what}, not a regular file")
        self.path = path
        self.what = what


def describe(mode: int) -> str:
    """What kind of file a mode says, in words for a message."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def read_regular(path: Path, limit: int | None = None) -> bytes | None:
    """The bytes of `path` if it is a regular file, None when it does not exist. A symlink, a
    folder, a FIFO or a device raises NotRegularFile: it is never followed, opened or waited on.
    `limit`: read at most this many bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None  # a parent is a file: so this path does not exist
    except OSError as e:
        try:
            st = os.lstat(path)
        except OSError:
            raise e from None
        raise NotRegularFile(path, describe(st.st_mode)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(path, describe(st.st_mode))
        chunks = []
        left = st.st_size if limit is None else min(limit, st.st_size)
        while True:
            chunk = os.read(fd, max(left, 65536))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
            if limit is not None and sum(map(len, chunks)) >= limit:
                break
        data = b"".join(chunks)
        return data if limit is None else data[:limit]
    finally:
        os.close(fd)


def make_private_dirs(*folders: Path) -> None:
    """Create the folders (and their parents) as 0700, and make existing ones 0700 too: what
    specflowd keeps is the user's alone, whatever the umask."""
    for folder in folders:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.lstat(folder)
        if stat.S_ISLNK(st.st_mode):
            raise NotRegularFile(folder, "a symbolic link")
        if stat.S_IMODE(st.st_mode) != 0o700:
            os.chmod(folder, 0o700)
