"""The progress feed: the design-docs branch's history read back as entries (time, spec, tasks,
statuses, event, orchestration, evidence). `repo/follow.py` follows it as it grows."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from specflowd.core.trailers import parse_trailers, task_statuses
from specflowd.repo import git
from specflowd.repo.git import ObjectStore
from specflowd.repo.project import Project

RECORD = "\x1e"
FIELD = "\x1f"
LOG_FORMAT = f"%H{FIELD}%ct{FIELD}%an{FIELD}%B{RECORD}"


def entry_from(sha: str, ctime: int, author: str, message: str) -> dict[str, Any]:
    trailers = parse_trailers(message)
    values: dict[str, str] = {}
    for k, v in trailers:
        values.setdefault(k, v)
    return {
        "commit": sha,
        "time": datetime.fromtimestamp(ctime, UTC).isoformat().replace("+00:00", "Z"),
        "author": author,
        "subject": message.split("\n", 1)[0],
        "spec": values.get("Spec"),
        "event": values.get("Event"),
        "tasks": [{"task": t, "status": s} for t, s in task_statuses(trailers)],
        "orchestration": values.get("Orchestration"),
        "batch": values.get("Batch"),
        "evidence": values.get("Evidence"),
        "cost_usd": float(values["Cost-USD"]) if _is_number(values.get("Cost-USD")) else None,
        "source": values.get("Source"),
        "host": values.get("Host"),  # many machines (SPEC §10): the host that wrote it
    }


def _is_number(v: str | None) -> bool:
    try:
        float(v)  # type: ignore[arg-type]
        return True
    except (TypeError, ValueError):
        return False


def read(project: Project, spec: str | None = None, limit: int | None = 50, since: str | None = None,
         until: str | None = None, orchestration: str | None = None) -> list[dict[str, Any]]:
    """Entries, oldest first: the last `limit` of the branch (or those after commit `since`), of
    one spec or one orchestration when it is given (git picks them by their trailer)."""
    rev = until or project.branch_ref
    grep = (f"^Specflow-Orchestration: {re.escape(orchestration)}$" if orchestration is not None
            else f"^Specflow-Spec: {re.escape(spec)}$" if spec is not None else None)
    out = git.log(project.root, f"{since}..{rev}" if since else rev, LOG_FORMAT, limit=limit, grep=grep)
    entries: list[dict[str, Any]] = []
    for record in out.split(RECORD):
        record = record.lstrip("\n")
        if not record:
            continue
        sha, ctime, author, message = record.split(FIELD, 3)
        entries.append(entry_from(sha, int(ctime), author, message))
    entries.reverse()
    return entries


def read_new(store: ObjectStore, since: str, until: str, limit: int) -> list[dict[str, Any]] | None:
    """The entries after commit `since` up to `until`, oldest first, read in-process (no git
    process: a watcher calls this at every move of the branch). None when the history between them
    is not a line of at most `limit` commits (a merge, a rewrite, a long jump): `read` knows then."""
    entries: list[dict[str, Any]] = []
    sha = until
    while sha != since:
        if len(entries) >= limit:
            return None
        headers, _, message = store.read(sha, "commit").partition(b"\n\n")
        fields = dict(line.split(b" ", 1) for line in headers.split(b"\n") if not line.startswith(b" "))
        parents = [line[7:] for line in headers.split(b"\n") if line.startswith(b"parent ")]
        if len(parents) != 1 or b"encoding" in fields:  # git log would re-encode the message
            return None
        author = fields[b"author"]
        ctime = int(fields[b"committer"].rsplit(b" ", 2)[1])
        entries.append(entry_from(sha, ctime, author[:author.rfind(b" <")].decode("utf-8", "surrogateescape"),
                                  message.decode("utf-8", "surrogateescape")))
        sha = parents[0].decode()
    entries.reverse()
    return entries
