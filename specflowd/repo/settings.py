"""The settings files: a project's `.specflow/config.toml` and the user's
`$XDG_CONFIG_HOME/specflowd/config.toml`, read and validated (SPEC §8). User-wide settings are the
defaults under each project's own."""

from __future__ import annotations

import os
from pathlib import Path

from specflowd.core.config import Config, UserConfig, parse_config
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
    """The project's settings; defaults when it has no config file yet."""
    text = _read(project.config_path)
    return Config() if text is None else parse_config(text, Config, str(project.config_path))


def user_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "specflowd" / "config.toml"


def load_user_config() -> UserConfig:
    path = user_config_path()
    text = _read(path)
    return UserConfig() if text is None else parse_config(text, UserConfig, str(path))


def listed_projects(*also: Path) -> list[Path]:
    """The projects a user's daemon serves: those named (`also`) and those in the user config,
    resolved, once each, in that order."""
    paths = [*also, *(Path(p).expanduser() for p in load_user_config().projects)]
    return list(dict.fromkeys(p.resolve() for p in paths))
