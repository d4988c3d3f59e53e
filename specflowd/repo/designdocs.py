"""The design-docs branch and its worktree: reading specs, and committing to the branch so that the
checked-out worktree stays clean and nobody's concurrent commit is lost."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from specflowd import fsio
from specflowd.core import ids
from specflowd.core.tasklist import Document, parse
from specflowd.core.textmerge import reapply
from specflowd.core.vocab import ErrorCode
from specflowd.errors import UserError
from specflowd.repo import git
from specflowd.repo.git import GitError, ObjectStore, RefMoved, RefUpdater
from specflowd.repo.project import Project

TASK_FILES = ("progress.md", "tasks.md")
MAX_RETRIES = 20


@dataclass(frozen=True)
class FileChange:
    path: str  # relative to the branch root
    data: bytes | None  # None removes the file
    # What the worktree file held when the change was made. If a person saved the file since,
    # the change is carried onto their copy instead of overwriting it.
    base: bytes | None = None


# What a commit builder returns: the files to write and the message, or None for "no commit".
Build = Callable[["Snapshot"], "tuple[list[FileChange], str] | None"]


class Snapshot:
    """The branch as of one commit: what a commit builder reads to decide what to change."""

    def __init__(self, store: ObjectStore, commit: str | None, tree: str | None) -> None:
        self.store = store
        self.commit = commit
        self.tree = tree

    def read(self, path: str) -> bytes | None:
        blob = self.blob_id(path)
        return None if blob is None else self.store.read(blob, "blob")

    def blob_id(self, path: str) -> str | None:
        """The blob at `path`, if a file is there."""
        entry = None if self.tree is None else self.store.entry(self.tree, path)
        return entry.sha if entry is not None and entry.mode in git.REGULAR_MODES else None

    def specs(self) -> list[str]:
        entry = None if self.tree is None else self.store.entry(self.tree, "specs")
        if entry is None or entry.mode != git.DIRECTORY:
            return []
        return sorted(e.name.decode("utf-8", "replace") for e in self.store.tree(entry.sha) if e.mode == git.DIRECTORY)

    def task_file(self, spec: str) -> str:
        """The path of a spec's task list: progress.md, else tasks.md; UserError when no such spec."""
        try:
            ids.check_spec_id(spec)
        except ValueError as e:
            raise UserError(str(e), code=ErrorCode.INVALID_FIELD, field="spec") from None
        for name in TASK_FILES:
            path = f"specs/{spec}/{name}"
            if self.blob_id(path) is not None:
                return path
        if spec in self.specs():
            return f"specs/{spec}/progress.md"
        known = ", ".join(self.specs()) or "none yet"
        raise UserError(f"no spec {spec!r} on the design-docs branch (specs: {known})", code=ErrorCode.UNKNOWN_SPEC,
                        field="spec")


class DesignDocs:
    """Commits to the design-docs branch. One instance per project and process; every write takes
    an advisory lock, so the CLI and the daemon never interleave their commits."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.worktree = project.design_docs
        self.ref = project.branch_ref
        self.store = ObjectStore(project.common_dir)
        self._docs: dict[str, Document] = {}  # blob id -> parsed task list
        self._synced: str | None = None  # the tip the worktree is known to match (this process)
        self._refs = RefUpdater(self.worktree, "specflowd")

    def close(self) -> None:
        """Stop the helper git process; the instance can still be used (it restarts it)."""
        self._refs.close()

    def __enter__(self) -> DesignDocs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ---------------------------------------------------------------------------

    def tip(self) -> str | None:
        return git.read_ref(self.project.common_dir, self.ref)

    def snapshot(self, commit: str | None = None) -> Snapshot:
        commit = commit or self.tip()
        if commit is None:
            raise UserError(f"branch {self.project.branch} does not exist: run `specflowd init`")
        return Snapshot(self.store, commit, self.store.commit_tree(commit))

    def document(self, snap: Snapshot, path: str) -> Document:
        """The parsed task list at `path`, cached by blob id (content-addressed, never stale)."""
        blob = snap.blob_id(path)
        if blob is None:
            return parse(b"")
        doc = self._docs.get(blob)
        if doc is None:
            doc = parse(self.store.read(blob, "blob"))
            if len(self._docs) > 64:
                self._docs.clear()
            self._docs[blob] = doc
        return doc

    def remember(self, data: bytes, doc: Document) -> None:
        """Cache a document we are about to commit, so the next mark need not parse it again."""
        self._docs[git.object_id("blob", data)] = doc

    def worktree_bytes(self, path: str) -> bytes | None:
        try:
            return (self.worktree / path).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    # -- writing ---------------------------------------------------------------------------

    @contextmanager
    def lock(self) -> Iterator[None]:
        self.project.specflow_dir.mkdir(exist_ok=True)
        fd = os.open(self.project.docs_lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def commit(self, build: Build, *, allow_empty: bool = False) -> str | None:
        """Build a commit from the branch tip and publish it with compare-and-swap; when the branch
        moved meanwhile, read it again and rebuild. Returns the new commit, or None when `build`
        decided nothing changes. Takes the lock itself."""
        with self.lock():
            return self.commit_locked(build, allow_empty=allow_empty)

    def commit_locked(self, build: Build, *, allow_empty: bool = False) -> str | None:
        """`commit` for a caller that holds the lock. With `allow_empty`, a build that changes no
        file still makes its commit (orchestration events are commits even when nothing changed)."""
        self._require_worktree()
        for _ in range(MAX_RETRIES):
            tip = self.tip()
            self.sync_worktree(tip)
            snap = self.snapshot(tip)
            built = build(snap)
            if built is None:
                return None
            changes, message = built
            blobs = {ch.path: None if ch.data is None else self.store.write("blob", ch.data) for ch in changes}
            tree = self.store.replace_paths(snap.tree, blobs) if blobs else snap.tree
            if tree == snap.tree and not allow_empty:
                return None
            assert tree is not None
            ident = git.committer_ident(self.worktree)
            new = self.store.write("commit", git.format_commit(tree, [tip] if tip else [], ident, message))
            try:
                self._refs.update(self.ref, new, tip)
            except RefMoved:
                continue
            self._write_worktree(changes)
            self._synced = new
            return new
        raise UserError(f"the branch {self.project.branch} kept moving while committing; try again",
                        code=ErrorCode.CONFLICT)

    def _require_worktree(self) -> None:
        dotgit = self.worktree / ".git"
        if not dotgit.exists():
            raise UserError(
                f"the design-docs worktree {self.worktree} is missing: run `specflowd init` to recreate it "
                f"(`specflowd doctor` explains)", code=ErrorCode.INTERNAL)
        # Checked before publishing: once the ref moved, a locked index would leave the worktree
        # showing our commit reversed.
        gitdir = self.worktree / dotgit.read_text().removeprefix("gitdir:").strip() if dotgit.is_file() else dotgit
        lock = gitdir / "index.lock"
        if lock.exists():
            raise UserError(
                f"{lock} exists: a git command is running in the design-docs worktree, or one crashed "
                f"and left it. If no git process is running, remove {lock} and try again.", code=ErrorCode.CONFLICT)

    def _write_worktree(self, changes: list[FileChange]) -> None:
        """Bring the worktree's files and index to the commit just published, so it stays clean."""
        if not changes:
            return
        for ch in changes:
            target = self.worktree / ch.path
            if ch.data is None:
                target.unlink(missing_ok=True)
                continue
            data = ch.data
            if ch.base is not None:
                current = self.worktree_bytes(ch.path)
                if current is not None and current not in (ch.base, ch.data):
                    # Saved by someone between our reading and our writing: keep their edit, with
                    # our change carried onto it; it is committed as their hand edit next.
                    data = reapply(ch.base, ch.data, current) or current
            target.parent.mkdir(parents=True, exist_ok=True)
            # A person's file in a checkout: the umask decides, as for any file git writes.
            fsio.atomic_write(target, data, mode=None, fsync=False)
        git.update_index(self.worktree, [ch.path for ch in changes])

    def sync_worktree(self, tip: str | None) -> None:
        """When the branch moved without the worktree (a commit pushed by plumbing, a fetch, a crash
        between publishing a commit and writing its files), carry the worktree forward with a
        two-tree merge from the commit its index matches. That merge keeps a person's unstaged
        edits and refuses to overwrite them; staged edits that match no commit stop us instead."""
        if tip is None or tip == self._synced:
            return
        try:
            index_tree = git.index_tree(self.worktree)
        except GitError as e:
            raise UserError(f"the design-docs worktree {self.worktree} has unresolved conflicts: "
                            f"resolve them there and commit ({e.stderr.strip()})", code=ErrorCode.CONFLICT) from None
        if index_tree != self.store.commit_tree(tip):
            old = self._commit_with_tree(tip, index_tree)
            if old is None:
                raise UserError(
                    f"the design-docs worktree {self.worktree} has staged changes while {self.project.branch} "
                    f"moved: commit them there, or unstage them (`git -C {self.worktree} reset`)", code=ErrorCode.CONFLICT)
            try:
                git.carry_forward(self.worktree, old, tip)
            except GitError as e:
                raise UserError(
                    f"the design-docs worktree {self.worktree} has uncommitted edits that conflict with "
                    f"new commits on {self.project.branch}: commit or discard them there ({e.stderr.strip()})",
                    code=ErrorCode.CONFLICT) from None
        self._synced = tip

    def _commit_with_tree(self, tip: str, tree: str) -> str | None:
        """The most recent commit behind `tip` (first parents) whose tree is `tree`."""
        out = git.log(self.worktree, tip, "%H %T", limit=500, first_parent=True)
        for line in out.splitlines():
            commit, commit_tree = line.split()
            if commit_tree == tree:
                return commit
        return None
