"""Marks a run's commits carry: after every agent run, the `Specflow-Task:` trailers of the commits it
added to the work branch become marks, with the commit as evidence, unless they are recorded already.

The post-commit hook is the fast path, not the guarantee: Gemini CLI runs git with hooks switched
off, a person may uninstall them, a hook may find no `specflowd`. Reading the trailers again after
the run, before the batch is judged, makes a mark depend on the commit alone.
"""

from __future__ import annotations

import logging

from specflowd.core.tasklist import Mark
from specflowd.core.trailers import commit_tasks
from specflowd.core.vocab import FINISHED, MarkSource, TaskStatus
from specflowd.errors import UserError
from specflowd.repo import git
from specflowd.repo.designdocs import DesignDocs
from specflowd.repo.marks import mark
from specflowd.repo.project import Project

log = logging.getLogger("specflowd.evidence")


def apply_trailers(project: Project, docs: DesignDocs, spec: str, since: str, branch: str, *,
                   statuses: dict[str, TaskStatus], orchestration: str) -> list[str]:
    """Mark done every task a commit of `since..branch` names in its trailers and `statuses` does not
    have finished yet, one mark commit per code commit, each with its commit as evidence. Returns the
    tasks marked. A trailer naming another spec, or a task the list does not have, is skipped."""
    marked: list[str] = []
    for sha, message in git.messages(project.root, f"{since}..{branch}"):
        named, tasks = commit_tasks(message)
        if named not in (None, spec):
            continue
        todo = [t for t in tasks if statuses.get(t) not in FINISHED and t not in marked]
        if not todo:
            continue
        try:
            mark(docs, spec, [Mark(t, TaskStatus.DONE) for t in todo], orchestration=orchestration, evidence=sha,
                 source=MarkSource.TRAILER)
        except UserError as e:
            log.warning("commit %s: its trailers were not applied: %s", sha[:12], e.message)
            continue
        marked += todo
    return marked
