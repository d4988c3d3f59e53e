"""The settings files: a project's `.specflow/config.toml` and the user's
`$XDG_CONFIG_HOME/specflowd/config.toml`, read and validated (SPEC §8). The user's settings are the
defaults under each project's own (`core.config.layered`)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from specflowd import fsio
from specflowd.core.config import Config, Settings, UserConfig, build, layered, parse_settings
from specflowd.core.records import RecordError
from specflowd.errors import UserError
from specflowd.repo.project import Project


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as e:
        raise UserError(f"{path} is not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror}") from None


def load_config(project: Project) -> Config:
    """The project's settings over the user's; defaults where neither file says."""
    text = _read(project.config_path)
    own = {} if text is None else parse_settings(text, Config, str(project.config_path))
    return layered(user_settings(), own, f"{project.config_path} (over {user_config_path()})")


def user_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "specflowd" / "config.toml"


def user_settings() -> Settings:
    """What the user config sets (nothing when there is no such file)."""
    path = user_config_path()
    text = _read(path)
    return {} if text is None else parse_settings(text, UserConfig, str(path))


def load_user_config() -> UserConfig:
    try:
        return build(UserConfig, user_settings())
    except RecordError as e:
        raise UserError(f"{user_config_path()}: {e}") from None


def add_project(path: Path) -> bool:
    """List `path` in the user config's `projects` (making the file if need be), keeping the rest of
    the file as it is; False when it was listed already."""
    config = user_config_path()
    text = _read(config) or ""
    listed = [Path(p).expanduser().resolve() for p in load_user_config().projects]
    if path.resolve() in listed:
        return False
    projects = [*(str(p) for p in listed), str(path.resolve())]
    line = "projects = " + json.dumps(projects)  # a TOML array of basic strings, on one line
    assignment = re.compile(r"^projects\s*=\s*\[.*?\]", re.M | re.S)
    new = assignment.sub(lambda m: line, text, count=1) if assignment.search(text) else f"{line}\n{text}"
    if parse_settings(new, UserConfig, str(config)).get("projects") != projects:  # an odd file: say it plainly
        raise UserError(f"cannot add {path} to the projects in {config} without rewriting it: add it by hand")
    fsio.make_private_dirs(config.parent)
    fsio.atomic_write(config, new.encode(), mode=0o600)
    return True


def listed_projects(*also: Path) -> list[Path]:
    """The projects a user's daemon serves: those named (`also`) and those in the user config,
    resolved, once each, in that order."""
    paths = [*also, *(Path(p).expanduser() for p in load_user_config().projects)]
    return list(dict.fromkeys(p.resolve() for p in paths))
