"""One daemon per project: an advisory lock on the project's `.specflow` folder itself, which the
kernel releases when the daemon dies, however it dies. The lock is on the folder, not on a file in
it, so that deleting a file cannot let a second daemon in; `daemon.lock` only tells the holder's pid."""

from __future__ import annotations

import fcntl
import os

from specflowd import fsio
from specflowd.errors import UserError
from specflowd.repo.project import Project

_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def acquire(project: Project) -> int:
    """Take the lock and note our pid; returns the fd to keep open. UserError naming the running
    daemon's pid when another holds it."""
    fd = os.open(project.specflow_dir, _FOLDER)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise UserError(f"a specflowd daemon (pid {_pid(project) or 'unknown'}) already serves {project.root}; "
                        "stop it first, or talk to it with the client commands") from None
    try:
        note(project)
    except BaseException:
        os.close(fd)
        raise
    return fd


def note(project: Project) -> None:
    """Write our pid into `daemon.lock` again, should it say another (or have been deleted)."""
    if _pid(project) != os.getpid():
        fsio.atomic_write(project.lock_path, f"{os.getpid()}\n".encode(), fsync=False)


def holder(project: Project) -> int | None:
    """The pid of the daemon serving this project (-1 when it cannot be read), or None when none runs."""
    try:
        fd = os.open(project.specflow_dir, _FOLDER)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _pid(project) or -1
    finally:
        os.close(fd)  # closing drops a shared lock we may have taken
    return None


def _pid(project: Project) -> int | None:
    try:
        text = (fsio.read_regular(project.lock_path, limit=32) or b"").decode().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None
