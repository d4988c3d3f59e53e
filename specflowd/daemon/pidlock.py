"""One daemon per project: an advisory lock on `.specflow/daemon.lock` holding the daemon's pid, which
the kernel releases when the daemon dies, however it dies."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from specflowd.errors import UserError
from specflowd.repo.project import Project


def acquire(project: Project) -> int:
    """Take the lock and write our pid into it; returns the fd to keep open. UserError naming the
    running daemon's pid when another holds it."""
    path = project.lock_path
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        pid = _read_pid(path)
        raise UserError(f"a specflowd daemon (pid {pid or 'unknown'}) already serves {project.root}; "
                        "stop it first, or talk to it with the client commands") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def holder(project: Project) -> int | None:
    """The pid of the daemon serving this project (-1 when it cannot be read), or None when none runs."""
    path = project.lock_path
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except (FileNotFoundError, OSError):
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_pid(path) or -1
    finally:
        os.close(fd)  # closing drops a shared lock we may have taken
    return None


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
