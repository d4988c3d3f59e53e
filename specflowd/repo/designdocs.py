"""The design-docs branch and its worktree: reading specs, and committing to the branch so that the
checked-out worktree stays clean and nobody's concurrent commit is lost."""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from specflowd import fsio
from specflowd.core import ids
from specflowd.core.tasklist import Document, parse
from specflowd.core.textmerge import reapply
from specflowd.core.vocab import ErrorCode
from specflowd.errors import UserError
from specflowd.repo import git
from specflowd.repo.git import GitError, ObjectStore, RefLocked, RefMoved, RefUpdater
from specflowd.repo.project import Project

log = logging.getLogger("specflowd.designdocs")
TASK_FILES = ("progress.md", "tasks.md")
MAX_RETRIES = 20
STALE_LOCK_S = 10
LOCK_WAIT_S = 2.0  # how long a writer waits for another git's lock before it refuses


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
            entry = None if self.tree is None else self.store.entry(self.tree, path)
            if entry is None:
                continue
            if entry.mode not in git.REGULAR_MODES:
                # A link committed as the task list (arriving by `git pull`) must never be read
                # through: its target could be any file of whoever runs specflowd.
                raise UserError(f"{path} on the design-docs branch is {git.describe_mode(entry.mode)}, not a "
                                "regular file: specflowd reads task lists from regular files only; replace it "
                                "with the file itself", code=ErrorCode.CONFLICT, field="spec")
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
        self._repairs: list[str] = []  # what `repair` and commits found broken and put right
        self._index_lock: tuple[tuple[int, int, int], Path] | None = None  # by the `.git` file it was read for
        self.committed: Callable[[], None] | None = None  # told of each commit (many machines push it)

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
        """The file at `path` in the worktree, None when absent. A link (the file or a folder on the
        way), a folder or a FIFO there is refused, never followed: nothing is read or committed."""
        try:
            return fsio.read_beneath(self.worktree, path)
        except fsio.NotRegularFile as e:
            raise UserError(_not_regular(e, self.worktree), code=ErrorCode.CONFLICT, field="task") from None

    # -- writing ---------------------------------------------------------------------------

    @contextmanager
    def lock(self) -> Iterator[None]:
        fsio.make_private_dirs(self.project.specflow_dir)
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
            self._check_targets(changes)
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
            except RefLocked as e:  # another writer's transaction, or a dead one's lock
                self._wait_for_lock(e.path or self.project.common_dir / f"{self.ref}.lock")
                continue
            self._write_worktree(changes)
            self._synced = new
            if self.committed is not None:
                self.committed()
            return new
        raise UserError(f"the branch {self.project.branch} kept moving while committing; try again",
                        code=ErrorCode.CONFLICT)

    def _require_worktree(self) -> None:
        dotgit = self.worktree / ".git"
        try:
            st = dotgit.stat()
        except FileNotFoundError:
            raise UserError(
                f"the design-docs worktree {self.worktree} is missing: run `specflowd init` to recreate it "
                f"(`specflowd doctor` explains)", code=ErrorCode.INTERNAL) from None
        # Where git keeps this worktree's index, asked once per `.git` file: a worktree made again
        # has a new one (asking git costs a process, a sixth of a mark).
        identity = (st.st_ino, st.st_mtime_ns, st.st_size)
        if self._index_lock is None or self._index_lock[0] != identity:
            self._index_lock = (identity, git.git_path(self.worktree, "index.lock"))
        # Checked before publishing: once the ref moved, a locked index would leave the worktree
        # showing our commit reversed.
        self._wait_for_lock(self._index_lock[1])

    def _wait_for_lock(self, lock: Path) -> None:
        """Wait a little for another git to finish with `lock`; clear it when its git is dead. Dead
        means nobody has it open, and either no git runs in the project (a killed daemon's git: its
        successor clears the lock at once) or it has not moved for a while (git closes a ref lock
        between a transaction's prepare and commit, so a closed lock alone proves nothing).
        UserError when it is still held."""
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                age = time.time() - lock.stat().st_mtime
            except FileNotFoundError:
                return
            if (age >= STALE_LOCK_S or not fsio.git_running_within(self.project.root)) and not fsio.held_open(lock):
                lock.unlink(missing_ok=True)  # its git was killed, and what it guarded is as it was
                self.note_repair(f"removed {lock}, left by a git process that was killed")
                return
            if time.monotonic() >= deadline:
                raise UserError(f"{lock} exists: a git command is running in the design-docs worktree; try "
                                f"again when it has finished (a lock nobody holds is cleared after {STALE_LOCK_S} s)",
                                code=ErrorCode.CONFLICT)
            time.sleep(0.01)

    def _check_targets(self, changes: list[FileChange]) -> None:
        """Refuse, before anything is published, to write where a link, a folder or a FIFO stands."""
        for ch in changes:
            try:
                fsio.check_beneath(self.worktree, ch.path)
            except fsio.NotRegularFile as e:
                raise UserError(_not_regular(e, self.worktree), code=ErrorCode.CONFLICT, field="task") from None

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
            # A person's file in a checkout: the umask decides, as for any file git writes.
            fsio.write_beneath(self.worktree, ch.path, data)
        git.update_index(self.worktree, [ch.path for ch in changes])

    def in_step(self, tip: str | None) -> bool:
        """Whether the worktree is known (to this process) to be at `tip` already."""
        return tip is not None and tip == self._synced

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
        tip_tree = self.store.commit_tree(tip)
        if index_tree != tip_tree:
            index_tree = self._restage_files_at(tip, index_tree)
        if index_tree != tip_tree:
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

    def _restage_files_at(self, tip: str, index_tree: str) -> str:
        """A crash between writing a commit's files and refreshing the index leaves the files at
        the branch tip and the index behind it: restage exactly those files (each one's bytes are
        the tip's), so that the carry-forward below has nothing left to refuse. A person's edit
        matches no tip blob and stays as it is. Returns the index's tree now."""
        snap = self.snapshot(tip)
        at_tip = []
        for path in git.staged_differences(self.worktree, tip):
            try:
                current = fsio.read_beneath(self.worktree, path)
            except fsio.NotRegularFile:
                continue
            if current is not None and current == snap.read(path):
                at_tip.append(path)
        if not at_tip:
            return index_tree
        git.update_index(self.worktree, at_tip)
        self.note_repair(f"restaged {', '.join(at_tip)}: the index was behind {self.project.branch} "
                         "(a crash between a commit and its index refresh)")
        return git.index_tree(self.worktree)

    def repair(self) -> list[str]:
        """Put right what a crash can leave in the worktree, lock held: our temp files, a stale
        index lock, an index behind the branch. What was done, for the log (also noted for doctor)."""
        self._repairs = []
        for folder, _dirs, _files in os.walk(self.worktree):
            if "/.git" in folder or folder.endswith("/.git"):
                continue
            for stale in fsio.stale_temp_files(Path(folder)):
                stale.unlink(missing_ok=True)
                self.note_repair(f"removed {stale}, a temp file left by a killed specflowd")
        self._require_worktree()
        self._synced = None
        self.sync_worktree(self.tip())
        return self._repairs

    def note_repair(self, what: str) -> None:
        """Keep a line of what was repaired, for `specflowd doctor` (and the caller's log)."""
        self._repairs.append(what)
        log.warning("design-docs worktree %s: %s", self.worktree, what)
        line = f"{datetime.now(UTC).isoformat(timespec='seconds')} {what}\n".encode()
        path = self.project.repairs_log
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def _commit_with_tree(self, tip: str, tree: str) -> str | None:
        """The most recent commit behind `tip` (first parents) whose tree is `tree`."""
        out = git.log(self.worktree, tip, "%H %T", limit=500, first_parent=True)
        for line in out.splitlines():
            commit, commit_tree = line.split()
            if commit_tree == tree:
                return commit
        return None


def _not_regular(e: fsio.NotRegularFile, worktree: Path) -> str:
    where = e.path.relative_to(worktree) if e.path.is_relative_to(worktree) else e.path
    return (f"{where} in the design-docs worktree {worktree} is {e.what}, not a regular file: specflowd never "
            "follows links and reads and writes task lists as regular files only; replace it with the file "
            "itself (nothing was committed)")
