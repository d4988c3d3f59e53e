"""Files that must never be seen half-written, and never reached through a planted link.

`atomic_write` is the one way specflowd replaces a file: a temp file made with
O_CREAT | O_EXCL | O_NOFOLLOW inside the target's folder (opened with O_NOFOLLOW, and written
relative to), its mode set whatever the umask, then renamed over the target. A reader, and a
crash, see the old file or the new one, never a part; a symlink planted where the temp file or
the target goes is never followed (the rename replaces a link, it does not write through it).

`read_beneath` and `write_beneath` go further for trees other people fill (the design-docs
worktree, which `git pull` can populate with links): every component of the path below the root
is opened with O_NOFOLLOW, so a link anywhere on the way is refused, never followed. Temp files
are named `.<name>.<pid>.<random>.tmp`, so that a crash's leftovers can be recognised and removed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
from pathlib import Path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$")


class NotRegularFile(OSError):
    """The path is (or passes through) a symlink, or is a folder, a FIFO or a device: not a file
    specflowd reads or writes."""

    def __init__(self, path: Path, what: str) -> None:
        super().__init__(errno.EINVAL, f"{path} is {what}, not a regular file")
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


def atomic_write(path: Path, data: bytes, *, mode: int | None = 0o600, fsync: bool = True,
                 tmp_dir: Path | None = None) -> None:
    """Replace `path` with `data`. `mode`: the file's permissions whatever the umask; None lets the
    umask decide, as for a file a person's tools write (one in their checkout). `fsync`: the data
    and the rename are on disk when this returns (state that must survive a power cut); without
    it, a crash may leave the old file. `tmp_dir`: where the temp file is made, when a watcher of
    `path`'s folder must see one arrival rather than a create and a write (same filesystem)."""
    folder = os.open(path.parent, _DIR_FLAGS)
    try:
        scratch = os.open(tmp_dir, _DIR_FLAGS) if tmp_dir is not None else folder
        try:
            _replace_in(folder, path.name, data, mode=mode, fsync=fsync, scratch=scratch)
        finally:
            if scratch != folder:
                os.close(scratch)
    finally:
        os.close(folder)


def _replace_in(folder: int, name: str, data: bytes, *, mode: int | None, fsync: bool, scratch: int) -> None:
    tmp = f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
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
        os.rename(tmp, name, src_dir_fd=scratch, dst_dir_fd=folder)
    except BaseException:
        with contextlib.suppress(OSError):  # the cleanup must not hide the failure
            os.unlink(tmp, dir_fd=scratch)
        raise
    if fsync:
        os.fsync(folder)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _open_folder_of(root: Path, rel: str, *, create: bool) -> int | None:
    """The folder holding `rel` (a relative path with `/`) beneath `root`, reached component by
    component without following any link; None when a folder on the way is missing (and not
    `create`d). NotRegularFile names the first component that is a link or not a folder."""
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # the root is the user's to place
    except FileNotFoundError:
        if create:
            raise
        return None
    here = root
    try:
        for part in rel.split("/")[:-1]:
            here = here / part
            try:
                step = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    os.close(fd)
                    return None
                os.mkdir(part, 0o777, dir_fd=fd)
                step = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as e:
                if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                raise NotRegularFile(here, describe(os.lstat(part, dir_fd=fd).st_mode)) from None
            os.close(fd)
            fd = step
        return fd
    except BaseException:
        os.close(fd)
        raise


def check_beneath(root: Path, rel: str) -> None:
    """NotRegularFile unless `rel` beneath `root` is a regular file or absent, and no folder on
    the way to it is a link."""
    folder = _open_folder_of(root, rel, create=False)
    if folder is None:
        return
    try:
        st = os.lstat(rel.rsplit("/", 1)[-1], dir_fd=folder)
    except FileNotFoundError:
        return
    finally:
        os.close(folder)
    if not stat.S_ISREG(st.st_mode):
        raise NotRegularFile(root / rel, describe(st.st_mode))


def read_beneath(root: Path, rel: str) -> bytes | None:
    """The bytes of `rel` beneath `root`, None when it does not exist; NotRegularFile when it, or a
    folder on the way, is a link, or it is not a regular file (a FIFO is never waited on)."""
    folder = _open_folder_of(root, rel, create=False)
    if folder is None:
        return None
    try:
        return _read_at(folder, rel.rsplit("/", 1)[-1], root / rel)
    finally:
        os.close(folder)


def write_beneath(root: Path, rel: str, data: bytes, *, mode: int | None = None) -> None:
    """`atomic_write` of `rel` beneath `root`, making missing folders, following no link on the way."""
    folder = _open_folder_of(root, rel, create=True)
    assert folder is not None
    try:
        _replace_in(folder, rel.rsplit("/", 1)[-1], data, mode=mode, fsync=False, scratch=folder)
    finally:
        os.close(folder)


def read_regular(path: Path, limit: int | None = None) -> bytes | None:
    """The bytes of `path` if it is a regular file (at most `limit` of them), None when it does not
    exist. A symlink, a folder, a FIFO or a device raises NotRegularFile: it is never followed,
    opened or waited on."""
    try:
        folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        return _read_at(folder, path.name, path, limit)
    finally:
        os.close(folder)


def _read_at(folder: int, name: str, path: Path, limit: int | None = None) -> bytes | None:
    try:
        fd = os.open(name, _READ_FLAGS, dir_fd=folder)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno not in (errno.ELOOP, errno.ENXIO, errno.EISDIR, errno.EACCES, errno.EPERM):
            raise
        raise NotRegularFile(path, describe(os.lstat(name, dir_fd=folder).st_mode)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(path, describe(st.st_mode))
        want = st.st_size if limit is None else min(limit, st.st_size)
        chunks = []
        got = 0
        while limit is None or got < limit:
            chunk = os.read(fd, max(want - got, 65536))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        data = b"".join(chunks)
        return data if limit is None else data[:limit]
    finally:
        os.close(fd)


def make_private_dirs(*folders: Path) -> None:
    """The folders (and their missing parents) as 0700, whatever the umask; an existing one made
    0700, and a link planted where one of ours belongs replaced by the folder itself. What
    specflowd keeps is its user's alone."""
    for folder in folders:
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISLNK(os.lstat(folder).st_mode):
                os.unlink(folder)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if stat.S_IMODE(os.lstat(folder).st_mode) != 0o700:
            os.chmod(folder, 0o700, follow_symlinks=False)


def stale_temp_files(folder: Path) -> list[Path]:
    """Temp files of `atomic_write` in `folder` whose writer is gone (a crash's leftovers)."""
    found = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError), os.scandir(folder) as entries:
        for entry in entries:
            m = TEMP_RE.match(entry.name)
            if m and not Path(f"/proc/{m['pid']}").exists():
                found.append(Path(entry.path))
    return found


def git_running_within(root: Path) -> bool:
    """Whether a git process we can see works inside `root` (its current directory is there)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if (proc / "comm").read_bytes().startswith(b"git") and Path(os.readlink(proc / "cwd")).is_relative_to(root):
                return True
    return False


def held_open(path: Path) -> bool:
    """Whether any process we can see has `path` open (a lock file's owner still at work)."""
    target = str(path)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == target:
                        return True
    return False
