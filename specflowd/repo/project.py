"""Where things are: a project's repository, its `.specflow/` folders, its design-docs worktree
and code worktrees. Every `.specflow/...` path is named here and nowhere else."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from specflowd.core.vocab import DESIGN_DOCS_BRANCH, DESIGN_DOCS_WORKTREE
from specflowd.errors import UserError
from specflowd.repo import git


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
    def _settings(self) -> dict[str, Any]:
        # The few keys that say where things are, read once and not validated: marks and `specflowd
        # log` must start fast; commands that use the rest load the validated config
        # (`repo/settings.py`), which says what is wrong with a broken file.
        try:
            data = tomllib.loads(self.config_path.read_text(encoding="utf-8"))
        except (FileNotFoundError, tomllib.TOMLDecodeError, UnicodeDecodeError):
            return {}
        return data

    def _setting(self, section: str, key: str, default: str) -> str:
        table = self._settings.get(section)
        value = table.get(key) if isinstance(table, dict) else None
        return value if isinstance(value, str) and value else default

    @cached_property
    def branch(self) -> str:
        return self._setting("design_docs", "branch", DESIGN_DOCS_BRANCH)

    @property
    def branch_ref(self) -> str:
        return f"refs/heads/{self.branch}"

    @cached_property
    def design_docs(self) -> Path:
        return (self.root / self._setting("design_docs", "worktree", DESIGN_DOCS_WORKTREE)).resolve()

    @cached_property
    def remote_name(self) -> str:
        """`[remote] name` (SPEC §10): the remote a fleet shares; "" on one machine."""
        return self._setting("remote", "name", "")

    @property
    def requests(self) -> Path:
        return self.specflow_dir / "requests"

    @property
    def responses(self) -> Path:
        return self.specflow_dir / "responses"

    @property
    def workflows(self) -> Path:
        return self.specflow_dir / "workflows"

    def state_file(self, orchestration: str) -> Path:
        return self.workflows / f"orchestration-{orchestration}.json"

    @property
    def worktrees(self) -> Path:
        return self.specflow_dir / "worktrees"

    def code_worktree(self, spec: str) -> Path:
        """Where the agents of an orchestration of `spec` work (branch `specflow/<spec>`)."""
        return self.worktrees / spec

    def spec_of_worktree(self, path: Path) -> str | None:
        """The spec whose code worktree holds `path`, if any."""
        worktrees = self.worktrees.resolve()
        path = path.resolve()
        if path.is_relative_to(worktrees) and path != worktrees:
            return path.relative_to(worktrees).parts[0]
        return None

    @property
    def logs(self) -> Path:
        return self.specflow_dir / "logs"

    def log_file(self, orchestration: str, n: int, phase: str) -> Path:
        """The transcript of an orchestration's n-th agent run."""
        return self.logs / orchestration / f"{n}-{phase}.jsonl"

    @property
    def prompt_overrides(self) -> Path:
        """`<name>.md` here replaces the shipped prompt template of that name."""
        return self.specflow_dir / "prompts"

    @property
    def spec_templates(self) -> Path:
        """`<name>.md` here replaces the shipped spec document template of that name."""
        return self.specflow_dir / "templates" / "spec"

    @property
    def repairs_log(self) -> Path:
        """What specflowd found broken after a crash and put right, a line each (`doctor` shows it)."""
        return self.specflow_dir / "repairs.log"

    @property
    def fleet_file(self) -> Path:
        """Many machines (SPEC §10): the fleet as the daemon last synced it, for `status`, `list`, `fleet`."""
        return self.specflow_dir / "fleet.json"

    @property
    def lock_path(self) -> Path:
        """The daemon's single-instance lock."""
        return self.specflow_dir / "daemon.lock"

    @property
    def docs_lock_path(self) -> Path:
        """Held while anyone commits to the design-docs branch."""
        return self.specflow_dir / "design-docs.lock"

    def is_initialized(self) -> bool:
        return self.config_path.exists() and (self.design_docs / ".git").exists()

    def require_initialized(self) -> Project:
        if not self.is_initialized():
            raise UserError(f"{self.root} is not set up for specflowd yet: run `specflowd init` there first")
        return self


def shipped_template(kind: Literal["prompts", "spec"], file: str) -> str:
    """A template that ships in the package: `prompts/<name>.md` or `spec/<document>`."""
    try:
        return resources.files("specflowd").joinpath("templates", kind, file).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"no {kind} template {file!r}") from None


def template(project: Project, kind: Literal["prompts", "spec"], file: str) -> str:
    """The project's own template (`.specflow/prompts/<name>.md`, `.specflow/templates/spec/<doc>`)
    when it has one, else the shipped one."""
    own = (project.prompt_overrides if kind == "prompts" else project.spec_templates) / file
    if own.is_file():
        return own.read_text(encoding="utf-8")
    return shipped_template(kind, file)


def locate(start: Path | None = None) -> Project:
    """The project containing `start` (default: the current folder), from any of its worktrees."""
    cwd = (start or Path.cwd()).resolve()
    found = git.locate(cwd)
    if found is None:
        raise UserError(
            f"{cwd} is not inside a git repository: run `git init` and make a first commit, "
            "or cd into your project"
        )
    if found.bare:
        raise UserError(
            f"{found.common_dir} is a bare repository: specflowd needs a working tree; "
            "clone it (`git clone`) and run specflowd in the clone"
        )
    if found.object_format != "sha1":
        raise UserError(
            f"{found.common_dir} uses {found.object_format} object names "
            f"(extensions.objectFormat={found.object_format}); specflowd works with SHA-1 repositories "
            "only, since the object database it writes with (GitPython's gitdb) knows no other")
    # With a separate git dir, the main worktree is the first one git lists.
    root = found.common_dir.parent if found.common_dir.name == ".git" else git.worktrees(cwd)[0].path
    return Project(root=root, common_dir=found.common_dir)
