"""The one door to git: every git command specflowd runs is a named function here, as pre-commit
keeps its own in `git.py`; nothing else in specflowd builds a git command line.

Every call runs with `git_env()`: a git hook runs with GIT_DIR, GIT_INDEX_FILE and friends set,
and inherited they would point our calls at the wrong repository. Commands that write for the
daemon pass `quiet`: our own commits run no hooks and start no `git maintenance` (SPEC §4).

Objects are read and written in-process through GitPython's object database (gitdb): loose
objects are written by its `LooseObjectDB`, packed ones read by its `PackedDB`, so a commit costs
no `git` process but the compare-and-swap of its ref. Not GitPython's `Repo`: its cached
`git cat-file` processes are what leaks in a long-running daemon. gitdb is SHA-1 only, so
SHA-256 repositories are refused when a project is located (`object_format`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import subprocess
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specflowd.core.environment import GIT_LOCATION_VARS
from specflowd.core.vocab import ErrorCode
from specflowd.errors import UserError

# Our own commits run no hooks and start no `git maintenance` (SPEC §4).
QUIET_CONFIG = ("-c", "core.hooksPath=/dev/null", "-c", "maintenance.auto=false", "-c", "gc.auto=0")
ZERO = "0" * 40
MIN_VERSION = (2, 38)  # `git merge-tree --write-tree`, which merges without touching a checkout


def git_env(keep: tuple[str, ...] = ()) -> dict[str, str]:
    """The environment for a git process: ours, without the location variables (but `keep`)."""
    env = {k: v for k, v in os.environ.items() if k not in GIT_LOCATION_VARS or k in keep}
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["LC_ALL"] = "C"
    return env


class GitError(Exception):
    def __init__(self, args: list[str], returncode: int, stderr: str) -> None:
        super().__init__(f"git {' '.join(args)} failed ({returncode}): {stderr.strip()}")
        self.git_args = args
        self.returncode = returncode
        self.stderr = stderr


def _run(cwd: Path, *args: str, input: bytes | None = None, quiet: bool = False,
         keep: tuple[str, ...] = ()) -> subprocess.CompletedProcess[bytes]:
    argv = ["git", *(QUIET_CONFIG if quiet else ()), *args]
    return subprocess.run(argv, cwd=cwd, input=input, capture_output=True, env=git_env(keep))


def _bytes(cwd: Path, *args: str, input: bytes | None = None, quiet: bool = False,
           keep: tuple[str, ...] = ()) -> bytes:
    r = _run(cwd, *args, input=input, quiet=quiet, keep=keep)
    if r.returncode != 0:
        raise GitError(list(args), r.returncode, r.stderr.decode("utf-8", "replace"))
    return r.stdout


def _text(cwd: Path, *args: str, quiet: bool = False, keep: tuple[str, ...] = ()) -> str:
    return _bytes(cwd, *args, quiet=quiet, keep=keep).decode("utf-8", "surrogateescape")


def _ok(cwd: Path, *args: str, quiet: bool = False) -> bool:
    """Whether a git command that answers by its exit code said yes."""
    return _run(cwd, *args, quiet=quiet).returncode == 0


# ---------------------------------------------------------------------------------------------
# The repository


def version() -> tuple[int, int]:
    """git's (major, minor) version; (0, 0) when git is not there."""
    try:
        out = subprocess.run(["git", "--version"], capture_output=True, text=True, env=git_env()).stdout
    except OSError:
        return (0, 0)
    m = re.search(r"(\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


@dataclass(frozen=True)
class Location:
    common_dir: Path  # the repository's .git, shared by its worktrees
    bare: bool
    object_format: str  # sha1 or sha256


def locate(cwd: Path) -> Location | None:
    """The repository around `cwd`, or None when there is none."""
    try:
        r = _run(cwd, "rev-parse", "--path-format=absolute", "--git-common-dir", "--is-bare-repository",
                 "--show-object-format")
    except (NotADirectoryError, FileNotFoundError):
        return None
    if r.returncode != 0:
        return None
    common, bare, fmt = r.stdout.decode("utf-8", "surrogateescape").split("\n")[:3]
    return Location(Path(common), bare == "true", fmt or "sha1")


@dataclass(frozen=True)
class Worktree:
    path: Path
    branch: str | None  # the full ref checked out, None when detached
    locked: bool


def worktrees(cwd: Path) -> list[Worktree]:
    """Every worktree of the repository, the main one first (`git worktree list --porcelain`)."""
    out: list[Worktree] = []
    path: Path | None = None
    branch: str | None = None
    locked = False
    for line in [*_text(cwd, "worktree", "list", "--porcelain").splitlines(), ""]:
        if line.startswith("worktree "):
            path, branch, locked = Path(line.removeprefix("worktree ")), None, False
        elif line.startswith("branch "):
            branch = line.removeprefix("branch ")
        elif line == "locked" or line.startswith("locked "):
            locked = True
        elif not line and path is not None:
            out.append(Worktree(path, branch, locked))
            path = None
    return out


def checked_out_at(cwd: Path, branch: str) -> Path | None:
    """The worktree that has `branch` (a short name) checked out, if any."""
    ref = f"refs/heads/{branch}"
    return next((w.path for w in worktrees(cwd) if w.branch == ref), None)


def has_commits(cwd: Path) -> bool:
    return _ok(cwd, "rev-parse", "--verify", "-q", "HEAD^{commit}")


def current_branch(cwd: Path) -> str | None:
    """The branch checked out in `cwd`'s worktree (short name), None when HEAD is detached."""
    r = _run(cwd, "symbolic-ref", "-q", "--short", "HEAD")
    return r.stdout.decode().strip() or None if r.returncode == 0 else None


def default_branch(cwd: Path) -> str | None:
    """The branch work lands on: the remote's HEAD (origin's first), else the branch checked out here."""
    heads = {}
    for line in _text(cwd, "for-each-ref", "--format=%(refname) %(symref)", "refs/remotes/*/HEAD").splitlines():
        ref, _, target = line.partition(" ")
        remote = ref.removeprefix("refs/remotes/").removesuffix("/HEAD")
        if target.startswith(f"refs/remotes/{remote}/"):
            heads[remote] = target.removeprefix(f"refs/remotes/{remote}/")
    if heads:
        return heads.get("origin") or heads[sorted(heads)[0]]
    return current_branch(cwd)


def branches(cwd: Path) -> list[str]:
    """The local branches' short names."""
    return _text(cwd, "for-each-ref", "--format=%(refname:short)", "refs/heads/").split()


def toplevel(cwd: Path) -> Path:
    return Path(_text(cwd, "rev-parse", "--show-toplevel").strip()).resolve()


def git_path(cwd: Path, name: str) -> Path:
    """Where git keeps `name` for this worktree (`hooks` honours core.hooksPath), absolute."""
    path = Path(_text(cwd, "rev-parse", "--git-path", name).strip())
    return path if path.is_absolute() else (cwd / path).resolve()


def git_dirs(cwd: Path) -> tuple[Path, Path]:
    """(git directory, common git directory) of the worktree at `cwd`: for a linked worktree
    `.git/worktrees/<name>` and `.git`; for the main one, `.git` twice."""
    lines = _text(cwd, "rev-parse", "--path-format=absolute", "--git-dir", "--git-common-dir").splitlines()
    return Path(lines[0]), Path(lines[1])


def is_ignored(cwd: Path, path: str) -> bool:
    return _ok(cwd, "check-ignore", "-q", path)


def changed_files(cwd: Path, *, untracked: bool = True) -> list[str]:
    """`git status --porcelain` lines: what is uncommitted in `cwd`'s worktree."""
    args = ["status", "--porcelain"] + ([] if untracked else ["--untracked-files=no"])
    return _text(cwd, *args).splitlines()


def remote_branches(cwd: Path, branch: str) -> list[str]:
    """Remote-tracking refs of `branch` (`refs/remotes/<remote>/<branch>`)."""
    return _text(cwd, "for-each-ref", "--format=%(refname)", f"refs/remotes/*/{branch}").split()


def resolve_commit(cwd: Path, rev: str) -> str | None:
    """The full id of the commit `rev` names in the repository around `cwd`, or None."""
    r = _run(cwd, "rev-parse", "--verify", "-q", f"{rev}^{{commit}}")
    return r.stdout.decode().strip() or None if r.returncode == 0 else None


def is_ancestor(cwd: Path, a: str, b: str) -> bool:
    return _ok(cwd, "merge-base", "--is-ancestor", a, b)


def commit_message(cwd: Path, commit: str) -> str:
    return _text(cwd, "log", "-1", "--format=%B", commit)


def commit_numstat(cwd: Path, commit: str) -> list[tuple[str, str, str]]:
    """(lines added, lines deleted, path) of each file `commit` changed from its parent (`-` counts
    for a binary file; nothing for a merge)."""
    out = _text(cwd, "diff-tree", "-r", "--root", "--no-commit-id", "--numstat", "--no-renames", "-z", commit)
    rows = []
    for record in out.split("\0"):
        if record:
            added, deleted, path = record.split("\t", 2)
            rows.append((added, deleted, path))
    return rows


def log(cwd: Path, rev: str, fmt: str, *, limit: int | None = None, grep: str | None = None,
        first_parent: bool = False) -> str:
    """`git log` of `rev` (a ref, a commit, or `a..b`) in format `fmt`, newest first."""
    args = ["log", f"--format={fmt}"]
    if limit is not None:
        args.append(f"-n{limit}")
    if first_parent:
        args.append("--first-parent")
    if grep is not None:
        args += ["-E", f"--grep={grep}"]
    return _text(cwd, *args, rev)


def messages(cwd: Path, rev: str) -> list[tuple[str, str]]:
    """(commit, message) of every commit of `rev` (`a..b`), oldest first."""
    out = _text(cwd, "log", "--reverse", "--format=%H%x00%B%x1e", rev)
    return [(sha.strip(), body) for sha, _, body in (e.partition("\0") for e in out.split("\x1e")) if sha.strip()]


def staged_paths(cwd: Path, *patterns: str) -> list[str]:
    """Files added or modified in the index, of those matching `patterns`. Run by a hook, so the
    index is the one git gave it (GIT_INDEX_FILE: a temporary index for `commit -a` or a path)."""
    out = _text(cwd, "diff", "--cached", "--name-only", "-z", "--diff-filter=AM", "--", *patterns,
                keep=("GIT_INDEX_FILE",))
    return [p for p in out.split("\0") if p]


def staged_blob(cwd: Path, path: str) -> bytes:
    """The bytes of `path` in the index (see `staged_paths`)."""
    return _bytes(cwd, "show", f":{path}", keep=("GIT_INDEX_FILE",))


# ---------------------------------------------------------------------------------------------
# Setting repositories, branches and worktrees up


def init_repository(path: Path, branch: str) -> None:
    _text(path, "init", "-q", "-b", branch)


def commit_everything(path: Path, message: str, *, name: str, email: str) -> str:
    """`git add -A` and a commit by `name <email>` in the worktree at `path`; the new commit."""
    _text(path, "add", "-A")
    _text(path, "-c", f"user.name={name}", "-c", f"user.email={email}", "commit", "-q", "-m", message)
    return _text(path, "rev-parse", "HEAD").strip()


def create_branch(cwd: Path, branch: str, start: str) -> None:
    _text(cwd, "branch", branch, start)


def add_worktree(cwd: Path, path: Path, branch: str) -> None:
    """Check `branch` out at `path` (a stale registration of a removed worktree is pruned first)."""
    _text(cwd, "worktree", "prune")
    _text(cwd, "worktree", "add", "-q", str(path), branch)


def lock_worktree(cwd: Path, path: Path, reason: str) -> None:
    """`git worktree lock`: `git worktree prune` leaves it alone. Best effort (it may be locked)."""
    _run(cwd, "worktree", "lock", "--reason", reason, str(path))


def unlock_worktree(cwd: Path, path: Path) -> None:
    _run(cwd, "worktree", "unlock", str(path))


def remove_worktree(cwd: Path, path: Path, *, force: bool = False) -> None:
    _text(cwd, "worktree", "remove", *(["--force"] if force else []), str(path))


# ---------------------------------------------------------------------------------------------
# The index and checked-out files of a worktree


def update_index(worktree: Path, paths: list[str]) -> None:
    """Bring the index entries of `paths` to what the files hold (removed files leave it)."""
    _text(worktree, "update-index", "-q", "--add", "--remove", "--", *paths, quiet=True)


def index_tree(worktree: Path) -> str:
    """The tree the worktree's index holds; GitError when it has unresolved conflicts."""
    return _text(worktree, "write-tree", quiet=True).strip()


def carry_forward(worktree: Path, old: str, new: str) -> None:
    """A two-tree merge (`read-tree -m -u old new`): the index and files go from commit `old` to
    `new`, keeping unstaged edits and refusing to overwrite them (GitError)."""
    _text(worktree, "read-tree", "-m", "-u", old, new, quiet=True)


def staged_differences(worktree: Path, commit: str) -> list[str]:
    """Paths whose index entry differs from `commit` in this worktree."""
    return [p for p in _text(worktree, "diff-index", "--cached", "--name-only", "-z", commit).split("\0") if p]


def edited_paths(worktree: Path, commit: str, under: str) -> list[str]:
    """Paths under `under` whose checked-out file may differ from `commit` in this worktree: git
    trusts its stat cache, so unchanged files are not read; a file touched but the same is named."""
    return [p for p in _text(worktree, "diff-index", "--name-only", "-z", commit, "--", under).split("\0") if p]


def merge_tree(cwd: Path, base: str, other: str) -> tuple[str, list[str]]:
    """The tree of merging `other` into `base`, without a checkout, and the files in conflict."""
    r = _run(cwd, "merge-tree", "--write-tree", "--name-only", "--no-messages", base, other)
    lines = r.stdout.decode("utf-8", "surrogateescape").splitlines()
    if not lines:
        raise GitError(["merge-tree", base, other], r.returncode, r.stderr.decode("utf-8", "replace"))
    return lines[0].strip(), sorted({ln for ln in lines[1:] if ln.strip()})


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


DIRECTORY = "40000"
SYMLINK = "120000"
SUBMODULE = "160000"
REGULAR_MODES = frozenset({"100644", "100755"})


def describe_mode(mode: str) -> str:
    """What a tree entry's mode makes it, in words for a message."""
    return {DIRECTORY: "a folder", SYMLINK: "a symbolic link", SUBMODULE: "a submodule"}.get(mode, "a regular file")
_CACHED_TREES = 512


class ObjectStore:
    """A repository's objects, in-process: gitdb's loose and packed databases. Trees are cached by
    id (content-addressed, so never stale), the most recent few hundred. gitdb is imported and its
    databases opened at the first object read or written: a read command that needs no object
    (`list`, `log`) does not pay for them."""

    def __init__(self, common_dir: Path) -> None:
        self.common_dir = common_dir
        self._dbs: tuple[Any, Any] | None = None
        self._trees: OrderedDict[str, list[TreeEntry]] = OrderedDict()

    def _open(self) -> tuple[Any, Any]:
        if self._dbs is None:
            from gitdb import LooseObjectDB
            from gitdb.db import PackedDB

            objects = self.common_dir / "objects"
            self._dbs = (LooseObjectDB(str(objects)), PackedDB(str(objects / "pack")))
        return self._dbs

    def write(self, kind: str, data: bytes) -> str:
        from gitdb import IStream

        stored = self._open()[0].store(IStream(kind.encode(), len(data), io.BytesIO(data)))
        sha: bytes = stored.hexsha
        return sha.decode()

    def loose_path(self, sha: str) -> Path:
        return self.common_dir / "objects" / sha[:2] / sha[2:]

    def exists(self, sha: str) -> bool:
        binsha = bytes.fromhex(sha)
        return self.loose_path(sha).exists() or bool(self._open()[1].has_object(binsha))

    def read(self, sha: str, kind: str) -> bytes:
        from gitdb.exc import BadObject

        binsha = bytes.fromhex(sha)
        loose, packs = self._open()
        for attempt in range(2):
            for db in (loose, packs):
                try:
                    data: bytes = db.stream(binsha).read()
                    return data
                except BadObject:
                    continue
            # Packed since we last looked (gc, a fetch): read the pack folder again, once.
            if attempt == 0 and not packs.update_cache(force=True):
                break
        # An alternate object store (a clone with --reference), or a repository we cannot read:
        # git itself knows.
        return _bytes(self.common_dir, "cat-file", kind, sha)

    def tree(self, sha: str) -> list[TreeEntry]:
        entries = self._trees.get(sha)
        if entries is None:
            entries = parse_tree(self.read(sha, "tree"))
            self._remember(sha, entries)
        return entries

    def _remember(self, sha: str, entries: list[TreeEntry]) -> None:
        self._trees[sha] = entries
        if len(self._trees) > _CACHED_TREES:
            self._trees.popitem(last=False)

    def write_tree(self, entries: list[TreeEntry]) -> str:
        sha = self.write("tree", format_tree(entries))
        self._remember(sha, entries)
        return sha

    def commit_tree(self, sha: str) -> str:
        """The tree id of a commit."""
        head = self.read(sha, "commit").split(b"\n", 1)[0]
        return head.split(b" ")[1].decode()

    def entry(self, tree: str, path: str) -> TreeEntry | None:
        """The entry at `path` in `tree` (any mode), or None when it is not there."""
        current = tree
        parts = path.encode().split(b"/")
        for k, part in enumerate(parts):
            found = next((e for e in self.tree(current) if e.name == part), None)
            if found is None:
                return None
            if k == len(parts) - 1:
                return found
            if found.mode != DIRECTORY:
                return None
            current = found.sha
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
                    mode = old.mode if old is not None and old.mode in REGULAR_MODES else "100644"
                    current[parts[0]] = TreeEntry(mode, parts[0], blob)
            else:
                nested.setdefault(parts[0], {})[parts[1:]] = blob
        for name, sub_changes in nested.items():
            old = current.pop(name, None)
            sub = old.sha if old is not None and old.mode == DIRECTORY else None
            new_sub = self._replace(sub, sub_changes)
            if self.tree(new_sub):
                current[name] = TreeEntry(DIRECTORY, name, new_sub)
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
            raw = _text(cwd, "var", "GIT_COMMITTER_IDENT").strip()
            _ident_cache[key] = raw.rsplit(" ", 2)[0]
        except GitError:
            _ident_cache[key] = "specflowd <specflowd@localhost>"
    return _ident_cache[key]


def identity(cwd: Path) -> dict[str, str]:
    """GIT_AUTHOR_NAME/_EMAIL and GIT_COMMITTER_NAME/_EMAIL as git would commit in `cwd` (from its
    configuration and environment); nothing for a role git knows no identity for."""
    out: dict[str, str] = {}
    for role in ("AUTHOR", "COMMITTER"):
        try:
            raw = _text(cwd, "var", f"GIT_{role}_IDENT").strip()
        except GitError:
            continue
        m = re.fullmatch(r"(.*) <(.*)> \d+ [+-]\d{4}", raw)
        if m:
            out[f"GIT_{role}_NAME"], out[f"GIT_{role}_EMAIL"] = m.group(1), m.group(2)
    return out


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
        _text(cwd, "update-ref", "-m", reason, ref, new, old or ZERO, quiet=True)
    except GitError as e:
        _raise_ref_error(e.stderr)
        raise


def delete_ref(cwd: Path, ref: str, old: str) -> None:
    """Delete `ref` if it still points at `old`; nothing when it moved or is gone."""
    _run(cwd, "update-ref", "-d", ref, old, quiet=True)


class RefLocked(UserError):
    """Another git process holds the ref's lock (or left it behind): wait, or clear a dead one."""

    def __init__(self, stderr: str) -> None:
        found = re.search(r"'([^']+\.lock)'", stderr)
        self.path = Path(found.group(1)) if found else None
        super().__init__(_lock_message(stderr), code=ErrorCode.CONFLICT)


def _raise_ref_error(msg: str) -> None:
    if "index.lock" in msg or ".lock" in msg and "File exists" in msg:
        raise RefLocked(msg)
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
                ["git", *QUIET_CONFIG, "update-ref", "-m", self.reason, "--stdin"], cwd=self.cwd, env=git_env(),
                text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
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


# ---------------------------------------------------------------------------------------------
# Remotes (SPEC §10): every call that talks to another repository has a deadline.

NETWORK_TIMEOUT_S = 60.0


class Unreachable(GitError):
    """The remote could not be reached (down, moved, no network, too slow): nothing was changed there."""


def _network(cwd: Path, args: list[str], timeout: float) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", *QUIET_CONFIG, *args], cwd=cwd, capture_output=True, env=git_env(),
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Unreachable(args, -1, f"no answer within {timeout:g} s") from None


def remote_url(cwd: Path, name: str) -> str | None:
    """The URL of remote `name` as the repository's config has it, None when there is no such remote."""
    r = _run(cwd, "remote", "get-url", "--", name)
    return r.stdout.decode("utf-8", "surrogateescape").strip() or None if r.returncode == 0 else None


def fetch(cwd: Path, remote: str, refspecs: list[str], *, timeout: float = NETWORK_TIMEOUT_S) -> None:
    """`git fetch --prune` of `refspecs` from `remote`; Unreachable when it cannot be reached."""
    r = _network(cwd, ["fetch", "--quiet", "--prune", "--no-tags", "--no-write-fetch-head", remote, *refspecs], timeout)
    if r.returncode != 0:
        raise Unreachable(["fetch", remote], r.returncode, r.stderr.decode("utf-8", "replace"))


def push(cwd: Path, remote: str, refspecs: list[str], leases: dict[str, str], *,
         timeout: float = NETWORK_TIMEOUT_S) -> str:
    """One `git push --atomic --porcelain`: all of `refspecs` land, or none. `leases`: ref -> the
    value the remote must still hold for it to be replaced ("" = the ref must not exist), as
    `--force-with-lease=<ref>:<expected>`; every other ref is pushed without force. Returns the
    porcelain report (a refusal is in it); Unreachable when the remote said nothing about the refs."""
    args = ["push", "--atomic", "--porcelain", *(f"--force-with-lease={ref}:{old}" for ref, old in leases.items()),
            remote, *refspecs]
    r = _network(cwd, args, timeout)
    out = r.stdout.decode("utf-8", "replace")
    if r.returncode != 0 and "\t" not in out:
        raise Unreachable(["push", remote], r.returncode, r.stderr.decode("utf-8", "replace"))
    return out


def ls_remote(cwd: Path, remote: str, patterns: list[str], *, timeout: float = NETWORK_TIMEOUT_S) -> dict[str, str]:
    """The remote's refs matching `patterns`: ref -> object id."""
    r = _network(cwd, ["ls-remote", "--", remote, *patterns], timeout)
    if r.returncode != 0:
        raise Unreachable(["ls-remote", remote], r.returncode, r.stderr.decode("utf-8", "replace"))
    out = {}
    for line in r.stdout.decode("utf-8", "surrogateescape").splitlines():
        sha, _, ref = line.partition("\t")
        out[ref] = sha
    return out


def ref_commits(cwd: Path, prefix: str) -> list[tuple[str, str, int, str]]:
    """(ref, commit, committer time, message) of every ref under `prefix`, in one process."""
    fmt = "%(refname)%00%(objectname)%00%(committerdate:unix)%00%(contents)%1e"
    out = []
    for record in _text(cwd, "for-each-ref", f"--format={fmt}", prefix).split("\x1e"):
        fields = record.lstrip("\n").split("\0")
        if len(fields) == 4 and fields[2].isdigit():
            out.append((fields[0], fields[1], int(fields[2]), fields[3]))
    return out


def commits_between(cwd: Path, base: str | None, tip: str) -> list[str]:
    """The commits reachable from `tip` but not from `base`, oldest first."""
    return _text(cwd, "rev-list", "--reverse", "--topo-order", tip, *([f"^{base}"] if base else []), "--").split()


def set_refs(cwd: Path, refs: dict[str, str | None]) -> None:
    """Point each ref at its object (None deletes it), whatever it held: for the refs that mirror a
    remote's (`refs/remotes/...`), brought up to what a push just made the remote hold."""
    lines = "".join(f"delete {ref}\n" if sha is None else f"update {ref} {sha}\n" for ref, sha in refs.items())
    _bytes(cwd, "update-ref", "--stdin", input=lines.encode(), quiet=True)


def merge_base(cwd: Path, a: str, b: str) -> str | None:
    """The best common ancestor of two commits, None when their histories never meet."""
    r = _run(cwd, "merge-base", a, b)
    return r.stdout.decode().strip() or None if r.returncode == 0 else None
