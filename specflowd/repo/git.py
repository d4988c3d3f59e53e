"""Git for specflowd: running git safely, reading and writing objects and refs, and committing to a
branch that is checked out in a worktree, with compare-and-swap on the ref.

Commits to the design-docs branch are built in-process (blob, trees and commit written as loose
objects, as libgit2 would) and published with `git update-ref NEW OLD`, which fails if anyone
moved the branch meanwhile. Only two git processes run per commit: the ref update and the index
refresh that keeps the checked-out worktree clean. No GitPython here: its cached `cat-file`
processes are what leaks in a long-running daemon.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import subprocess
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from specflowd.errors import UserError

# Variables a git hook runs with; inherited, they would point our git calls at the wrong repository.
_GIT_LOCATION_VARS = (
    "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_PREFIX", "GIT_NAMESPACE", "GIT_QUARANTINE_PATH",
    "GIT_REFLOG_ACTION", "GIT_EDITOR",
)
# Our own commits run no hooks and start no `git maintenance` (SPEC §4).
QUIET_CONFIG = ("-c", "core.hooksPath=/dev/null", "-c", "maintenance.auto=false", "-c", "gc.auto=0")
ZERO = "0" * 40


def git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _GIT_LOCATION_VARS}
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["LC_ALL"] = "C"
    return env


class GitError(Exception):
    def __init__(self, args: list[str], returncode: int, stderr: str) -> None:
        super().__init__(f"git {' '.join(args)} failed ({returncode}): {stderr.strip()}")
        self.git_args = args
        self.returncode = returncode
        self.stderr = stderr


def git(cwd: Path, *args: str, input: bytes | None = None, check: bool = True, quiet: bool = False) -> str:
    """Run git in `cwd`; stdout as text. `quiet` adds the no-hooks/no-maintenance config."""
    argv = ["git", *(QUIET_CONFIG if quiet else ()), *args]
    r = subprocess.run(argv, cwd=cwd, input=input, capture_output=True, env=git_env())
    if check and r.returncode != 0:
        raise GitError(list(args), r.returncode, r.stderr.decode("utf-8", "replace"))
    return r.stdout.decode("utf-8", "surrogateescape")


def git_ok(cwd: Path, *args: str) -> bool:
    """Whether a git command that answers by exit code (merge-base --is-ancestor, …) said yes."""
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, env=git_env()).returncode == 0


def git_bytes(cwd: Path, *args: str) -> bytes:
    r = subprocess.run(["git", *args], cwd=cwd, capture_output=True, env=git_env())
    if r.returncode != 0:
        raise GitError(list(args), r.returncode, r.stderr.decode("utf-8", "replace"))
    return r.stdout


# ---------------------------------------------------------------------------------------------
# Objects


def object_id(kind: str, data: bytes) -> str:
    return hashlib.sha1(b"%s %d\0" % (kind.encode(), len(data)) + data).hexdigest()


@dataclass(frozen=True, slots=True)
class TreeEntry:
    mode: str
    name: bytes
    sha: str


def parse_tree(data: bytes) -> list[TreeEntry]:
    entries = []
    i = 0
    while i < len(data):
        sp = data.index(b" ", i)
        nul = data.index(b"\0", sp)
        entries.append(TreeEntry(data[i:sp].decode(), data[sp + 1:nul], data[nul + 1:nul + 21].hex()))
        i = nul + 21
    return entries


def _tree_sort_key(e: TreeEntry) -> bytes:
    return e.name + b"/" if e.mode == "40000" else e.name


def format_tree(entries: list[TreeEntry]) -> bytes:
    return b"".join(b"%s %s\0%s" % (e.mode.encode(), e.name, bytes.fromhex(e.sha))
                    for e in sorted(entries, key=_tree_sort_key))


class ObjectStore:
    """Loose-object reads and writes in-process; packed objects are read through git."""

    def __init__(self, common_dir: Path, cwd: Path) -> None:
        self.objects = common_dir / "objects"
        self.cwd = cwd
        # Content-addressed, so never stale: trees we read or wrote, by id.
        self._trees: dict[str, list[TreeEntry]] = {}

    def _path(self, sha: str) -> Path:
        return self.objects / sha[:2] / sha[2:]

    def write(self, kind: str, data: bytes) -> str:
        sha = object_id(kind, data)
        path = self._path(sha)
        if path.exists():
            return sha
        path.parent.mkdir(exist_ok=True)
        tmp = path.parent / f"tmp_obj_{os.getpid()}_{sha[:8]}"
        # Level 1: these are small, short-lived loose objects that gc repacks anyway.
        payload = zlib.compress(b"%s %d\0" % (kind.encode(), len(data)) + data, 1)
        with open(tmp, "wb") as f:
            f.write(payload)
        os.chmod(tmp, 0o444)
        os.replace(tmp, path)
        return sha

    def read(self, sha: str, kind: str) -> bytes:
        try:
            raw = zlib.decompress(self._path(sha).read_bytes())
        except FileNotFoundError:
            return git_bytes(self.cwd, "cat-file", kind, sha)
        nul = raw.index(b"\0")
        return raw[nul + 1:]

    def tree(self, sha: str) -> list[TreeEntry]:
        entries = self._trees.get(sha)
        if entries is None:
            entries = parse_tree(self.read(sha, "tree"))
            self._trees[sha] = entries
        return entries

    def write_tree(self, entries: list[TreeEntry]) -> str:
        sha = self.write("tree", format_tree(entries))
        self._trees[sha] = entries
        return sha

    def commit_tree(self, sha: str) -> str:
        """The tree id of a commit."""
        head = self.read(sha, "commit").split(b"\n", 1)[0]
        return head.split(b" ")[1].decode()

    def blob_at(self, tree: str, path: str) -> tuple[str, bytes] | None:
        """(blob id, bytes) of `path` in `tree`, or None when it is not there."""
        sha = self.lookup(tree, path)
        if sha is None:
            return None
        return sha, self.read(sha, "blob")

    def lookup(self, tree: str, path: str) -> str | None:
        current = tree
        parts = path.encode().split(b"/")
        for k, part in enumerate(parts):
            entry = next((e for e in self.tree(current) if e.name == part), None)
            if entry is None:
                return None
            if k == len(parts) - 1:
                return entry.sha
            if entry.mode != "40000":
                return None
            current = entry.sha
        return None

    def replace_paths(self, tree: str | None, blobs: dict[str, str | None]) -> str:
        """A new root tree where each path holds its blob (None removes it); only the trees on
        those paths are written, once each, so no intermediate tree is left dangling."""
        return self._replace(tree, {tuple(p.encode().split(b"/")): b for p, b in blobs.items()})

    def _replace(self, tree: str | None, changes: dict[tuple[bytes, ...], str | None]) -> str:
        current = {e.name: e for e in (self.tree(tree) if tree else [])}
        nested: dict[bytes, dict[tuple[bytes, ...], str | None]] = {}
        for parts, blob in changes.items():
            if len(parts) == 1:
                old = current.pop(parts[0], None)
                if blob is not None:
                    mode = old.mode if old is not None and old.mode in ("100644", "100755") else "100644"
                    current[parts[0]] = TreeEntry(mode, parts[0], blob)
            else:
                nested.setdefault(parts[0], {})[parts[1:]] = blob
        for name, sub_changes in nested.items():
            old = current.pop(name, None)
            sub = old.sha if old is not None and old.mode == "40000" else None
            new_sub = self._replace(sub, sub_changes)
            if self.tree(new_sub):
                current[name] = TreeEntry("40000", name, new_sub)
        return self.write_tree(list(current.values()))


# ---------------------------------------------------------------------------------------------
# Refs and identity


def read_ref(common_dir: Path, ref: str) -> str | None:
    """The object id a ref points at, read the way git stores it (loose file, else packed-refs)."""
    try:
        value = (common_dir / ref).read_text().strip()
        if len(value) == 40:
            return value
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        pass
    try:
        with open(common_dir / "packed-refs", "rb") as f:
            target = ref.encode()
            for line in f:
                if line.endswith(b" " + target + b"\n") and not line.startswith((b"#", b"^")):
                    return line[:40].decode()
    except FileNotFoundError:
        pass
    return None


_ident_cache: dict[str, str] = {}


def committer_ident(cwd: Path) -> str:
    """`Name <email>` of whoever git would commit as, or specflowd's own when none is set."""
    key = str(cwd)
    if key not in _ident_cache:
        try:
            raw = git(cwd, "var", "GIT_COMMITTER_IDENT").strip()
            _ident_cache[key] = raw.rsplit(" ", 2)[0]
        except GitError:
            _ident_cache[key] = "specflowd <specflowd@localhost>"
    return _ident_cache[key]


def timestamp() -> str:
    now = time.time()
    offset = time.localtime(now).tm_gmtoff
    sign = "+" if offset >= 0 else "-"
    offset = abs(offset)
    return f"{int(now)} {sign}{offset // 3600:02d}{offset % 3600 // 60:02d}"


def format_commit(tree: str, parents: list[str], ident: str, message: str) -> bytes:
    lines = [f"tree {tree}"] + [f"parent {p}" for p in parents]
    stamp = timestamp()
    lines += [f"author {ident} {stamp}", f"committer {ident} {stamp}"]
    body = message if message.endswith("\n") else message + "\n"
    return ("\n".join(lines) + "\n\n" + body).encode("utf-8", "surrogateescape")


class RefMoved(Exception):
    """The branch moved between reading and updating it: re-read and try again."""


def update_ref(cwd: Path, ref: str, new: str, old: str | None, reason: str) -> None:
    """Compare-and-swap `ref` from `old` (None: must not exist) to `new`, in a one-off process."""
    try:
        git(cwd, "update-ref", "-m", reason, ref, new, old or ZERO, quiet=True)
    except GitError as e:
        _raise_ref_error(e.stderr)
        raise


def _raise_ref_error(msg: str) -> None:
    if "index.lock" in msg or ".lock" in msg and "File exists" in msg:
        raise UserError(_lock_message(msg), code="conflict")
    if "but expected" in msg or "is at" in msg or "reference already exists" in msg or "unable to resolve" in msg:
        raise RefMoved(msg)


class RefUpdater:
    """Compare-and-swap ref updates through one long-lived `git update-ref --stdin`, one
    transaction per update: a commit then costs no process start for its ref. The process is
    ours to close (`close()`); a failed transaction ends it, and the next update starts another."""

    def __init__(self, cwd: Path, reason: str) -> None:
        self.cwd = cwd
        self.reason = reason
        self._proc: subprocess.Popen[str] | None = None

    def update(self, ref: str, new: str, old: str | None) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            proc = self._proc = subprocess.Popen(
                ["git", *QUIET_CONFIG, "update-ref", "-m", self.reason, "--stdin"], cwd=self.cwd, env=git_env(), text=True,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        try:
            proc.stdin.write(f"start\nupdate {ref} {new} {old or ZERO}\nprepare\ncommit\n")
            proc.stdin.flush()
            answers = [proc.stdout.readline() for _ in range(3)]
        except BrokenPipeError:
            answers = []
        if answers == ["start: ok\n", "prepare: ok\n", "commit: ok\n"]:
            return
        stderr = self.close()
        _raise_ref_error(stderr)
        raise GitError(["update-ref", "--stdin"], proc.returncode or 1, stderr)

    def close(self) -> str:
        """End the process (EOF on its input) and return what it said on stderr."""
        proc, self._proc = self._proc, None
        if proc is None:
            return ""
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        stderr = proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
        return stderr


def _lock_message(stderr: str) -> str:
    found = re.search(r"'([^']+\.lock)'", stderr)
    path = found.group(1) if found else "a .lock file"
    return (f"git could not lock {path}: another git process is running, or one crashed and left it. "
            f"If no git process is running, remove {path} and try again.")
