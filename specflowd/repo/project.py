"""Where things are: a project's repository, its `.specflow/` folders and its design-docs worktree."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from specflowd.errors import UserError
from specflowd.repo.git import GitError, git


@dataclass(frozen=True)
class Project:
    root: Path  # the main worktree
    common_dir: Path  # the repository's .git (shared by all worktrees)

    @property
    def specflow_dir(self) -> Path:
        return self.root / ".specflow"

    @property
    def config_path(self) -> Path:
        return self.specflow_dir / "config.toml"

    @cached_property
    def config(self):  # -> Config; imported lazily so light commands skip pydantic
        from specflowd.core.config import load_config

        return load_config(self.config_path)

    def _design_docs_setting(self, key: str, default: str) -> str:
        # Read without pydantic: marks and `specflowd log` must start fast and need only these
        # keys; commands that use the rest load the validated `config`.
        import tomllib

        try:
            data = tomllib.loads(self.config_path.read_text(encoding="utf-8"))
            value = data.get("design_docs", {}).get(key)
            if isinstance(value, str) and value:
                return value
        except (FileNotFoundError, tomllib.TOMLDecodeError, UnicodeDecodeError, AttributeError):
            pass
        return default

    @cached_property
    def branch(self) -> str:
        return self._design_docs_setting("branch", "helix-design-docs")

    @property
    def branch_ref(self) -> str:
        return f"refs/heads/{self.branch}"

    @cached_property
    def design_docs(self) -> Path:
        return (self.root / self._design_docs_setting("worktree", ".specflow/design-docs")).resolve()

    @property
    def requests(self) -> Path:
        return self.specflow_dir / "requests"

    @property
    def responses(self) -> Path:
        return self.specflow_dir / "responses"

    @property
    def workflows(self) -> Path:
        return self.specflow_dir / "workflows"

    @property
    def worktrees(self) -> Path:
        return self.specflow_dir / "worktrees"

    @property
    def logs(self) -> Path:
        return self.specflow_dir / "logs"

    def is_initialized(self) -> bool:
        return self.config_path.exists() and (self.design_docs / ".git").exists()

    def require_initialized(self) -> Project:
        if not self.is_initialized():
            raise UserError(f"{self.root} is not set up for specflowd yet: run `specflowd init` there first")
        return self


def locate(start: Path | None = None) -> Project:
    """The project containing `start` (default: the current folder), from any of its worktrees."""
    cwd = (start or Path.cwd()).resolve()
    try:
        out = git(cwd, "rev-parse", "--path-format=absolute", "--git-common-dir", "--is-bare-repository").split("\n")
    except (GitError, NotADirectoryError, FileNotFoundError):
        raise UserError(
            f"{cwd} is not inside a git repository: run `git init` and make a first commit, "
            "or cd into your project"
        ) from None
    common_dir = Path(out[0])
    if out[1] == "true":
        raise UserError(
            f"{common_dir} is a bare repository: specflowd needs a working tree; "
            "clone it (`git clone`) and run specflowd in the clone"
        )
    if common_dir.name == ".git":
        root = common_dir.parent
    else:  # a separate git dir: the main worktree is the first one git lists
        listing = git(cwd, "worktree", "list", "--porcelain")
        root = Path(listing.split("\n", 1)[0].removeprefix("worktree "))
    return Project(root=root, common_dir=common_dir)
