"""`specflowd inbox`: the requests still waiting for a daemon, what is wrong with those it will
refuse, and dropping one. Reads requests as the daemon does (`core.protocol`)."""

from __future__ import annotations

import contextlib
import os
import stat
import time
from pathlib import Path
from typing import Any

from specflowd import fsio
from specflowd.core import protocol
from specflowd.errors import UserError
from specflowd.repo.project import Project


def pending(project: Project) -> list[dict[str, Any]]:
    """The requests waiting in the inbox, oldest first: id, file, action, the fields that say what it
    asks, its age, and what is wrong with it when the daemon will refuse it."""
    out = []
    now = time.time()
    found = []
    with contextlib.suppress(FileNotFoundError), os.scandir(project.requests) as listing:
        for item in listing:
            if protocol.is_request_name(item.name):
                with contextlib.suppress(FileNotFoundError):
                    found.append((item.stat(follow_symlinks=False), item.name))
    for st, name in sorted(found, key=lambda f: (f[0].st_mtime_ns, f[1])):
        try:
            raw = fsio.read_regular(project.requests / name, limit=protocol.MAX_BYTES + 1)
        except OSError:
            raw = None
        facts = protocol.FileFacts(name, stat.S_ISREG(st.st_mode), st.st_uid, st.st_size)
        rid, parsed = protocol.parse_request(raw, facts, os.geteuid())
        entry: dict[str, Any] = {"id": rid, "file": name, "action": None, "fields": {},
                                 "age_s": round(max(0.0, now - st.st_mtime), 1), "problem": None}
        if isinstance(parsed, protocol.ErrorBody):
            entry["problem"] = parsed.message
        else:
            entry["action"] = parsed.action.value
            entry["fields"] = parsed.model_dump(mode="json", exclude_none=True,
                                                exclude={"id", "action", "config", "budget"})
        out.append(entry)
    return out


def drop_pending(project: Project, request_id: str) -> Path:
    """Remove a waiting request, named by its id or its file name; UserError when none waits so."""
    for r in pending(project):
        if request_id in (r["id"], r["file"]):
            path: Path = project.requests / r["file"]
            path.unlink()
            return path
    raise UserError(f"no request {request_id!r} is waiting in {project.requests} (`specflowd inbox` lists them)")
