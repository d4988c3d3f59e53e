"""Marks as commits: the one code path that turns "T012 is done" into a commit on the design-docs
branch, used by `specflowd mark --now` and by the daemon alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from specflowd.core.lint import lint, removal
from specflowd.core.tasklist import Change, Document, Mark, TaskListError, apply_marks, parse
from specflowd.core.trailers import edit_message, mark_message
from specflowd.core.vocab import ErrorCode, MarkSource, TaskStatus
from specflowd.errors import UserError
from specflowd.repo.designdocs import DesignDocs, FileChange, Snapshot


@dataclass
class MarkOutcome:
    spec: str
    commit: str | None = None  # None when nothing changed
    changes: list[Change] = field(default_factory=list)
    hand_edit_commit: str | None = None  # pending hand edits committed first, if any

    def as_dict(self) -> dict[str, Any]:
        """The outcome as `mark --json` prints it and the daemon answers it."""
        return {"spec": self.spec, "commit": self.commit, "hand_edit_commit": self.hand_edit_commit,
                "changes": [{"task": c.id, "from": c.old.value, "to": c.new.value, "derived": c.derived}
                            for c in self.changes]}


def resolve_spec(docs: DesignDocs, spec: str | None, hint: str | None = None) -> str:
    """The spec a mark is about: the one given, else the hint (an agent's SPECFLOW_SPEC or the code
    worktree it runs in), else the only spec on the branch."""
    if spec:
        return spec
    if hint:
        return hint
    specs = docs.snapshot().specs()
    if len(specs) == 1:
        return specs[0]
    if not specs:
        raise UserError("there are no specs yet: add one with `specflowd new SPEC-ID`", code=ErrorCode.UNKNOWN_SPEC,
                        field="spec")
    raise UserError(f"which spec? there are several ({', '.join(specs)}): pass --spec", code=ErrorCode.INVALID_FIELD,
                    field="spec")


def mark(docs: DesignDocs, spec: str, marks: list[Mark], *, orchestration: str | None = None,
         batch: str | None = None, evidence: str | None = None, source: MarkSource | None = None,
         host: str | None = None) -> MarkOutcome:
    """Commit the marks (and parents that follow) as one commit. Uncommitted hand edits of the task
    list are committed first, as their own commit, so a mark never overwrites them."""
    outcome = MarkOutcome(spec=spec)
    with docs.lock():
        outcome.hand_edit_commit = commit_hand_edits_locked(docs, spec)

        def build(snap: Snapshot) -> tuple[list[FileChange], str] | None:
            path = snap.task_file(spec)
            doc = docs.document(snap, path)
            try:
                new_doc, changes = apply_marks(doc, marks)
            except TaskListError as e:
                raise UserError(f"{spec}: {e}", code=e.code, field="task") from None
            outcome.changes = changes
            if not changes:
                return None
            data = new_doc.to_bytes()
            docs.remember(data, new_doc)
            message = mark_message(spec, changes, orchestration=orchestration, batch=batch, evidence=evidence,
                                   source=source, host=host)
            return [FileChange(path, data, base=doc.to_bytes())], message

        outcome.commit = docs.commit_locked(build)
    return outcome


def commit_hand_edits(docs: DesignDocs, spec: str) -> str | None:
    with docs.lock():
        return commit_hand_edits_locked(docs, spec)


def commit_hand_edits_locked(docs: DesignDocs, spec: str) -> str | None:
    """Commit a person's uncommitted edit of a spec's task list, with a trailer for every task whose
    status changed. An edit that breaks the task list, or removes most of it, is refused, and
    nothing is committed: the person commits it themselves if they meant it."""
    # The common case, answered without a git process: the worktree holds what is committed.
    snap = docs.snapshot()
    path = snap.task_file(spec)
    if docs.worktree_bytes(path) in (None, snap.read(path)):
        return None

    def build(snap: Snapshot) -> tuple[list[FileChange], str] | None:
        path = snap.task_file(spec)
        edited = docs.worktree_bytes(path)
        committed = snap.read(path)
        if edited is None or edited == committed:
            return None
        new_doc = parse(edited)
        problems = lint(new_doc)
        if problems:
            raise UserError(f"{path} has uncommitted edits that break the task list: {problems[0]}; "
                            "fix them in the design-docs worktree", code=ErrorCode.CONFLICT, field="task")
        old_doc = docs.document(snap, path)
        too_big = removal(old_doc, new_doc)
        if too_big:
            raise UserError(f"{path} has an uncommitted edit that {too_big}; specflowd does not commit that "
                            f"for you: if you meant it, commit it yourself (`git -C {docs.worktree} commit -a`), "
                            "else restore the file", code=ErrorCode.CONFLICT, field="task")
        changes = status_changes(old_doc, new_doc)
        docs.remember(edited, new_doc)
        if changes:
            message = mark_message(spec, changes, source=MarkSource.HAND_EDIT)
        else:
            message = edit_message(spec, path.rsplit("/", 1)[-1])
        return [FileChange(path, edited)], message

    return docs.commit_locked(build)


def status_changes(old: Document, new: Document) -> list[Change]:
    """Tasks whose status differs between two versions of a task list, matched by id."""
    before = {t.id: t for t in old.tasks}
    out = []
    for t in new.tasks:
        prior = before.get(t.id)
        if prior is not None and (prior.status is not t.status or prior.blocked_reason != t.blocked_reason):
            out.append(Change(t.id, t.title, prior.status, t.status, reason=t.blocked_reason))
        elif prior is None and t.status is not TaskStatus.PENDING:
            out.append(Change(t.id, t.title, TaskStatus.PENDING, t.status))
    return out
