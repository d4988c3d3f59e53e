"""systemd units: finding the shipped unit files, pointing them at this specflowd, installing them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from specflowd import fsio
from specflowd.errors import UserError

UNIT_NAMES = ("specflowd.service", "specflowd@.service", "specflowd@.path")
SHIPPED_EXEC = "/usr/local/bin/specflowd"


def shipped_dir() -> Path:
    """The folder holding the unit files: the checkout's systemd/, else the installed copy."""
    for candidate in (Path(__file__).resolve().parents[2] / "systemd",
                      Path(sys.prefix) / "share" / "specflowd" / "systemd"):
        if (candidate / UNIT_NAMES[0]).is_file():
            return candidate
    raise UserError("the systemd unit files are not installed with this specflowd (reinstall it with pip)")


def render(text: str, executable: str) -> str:
    """A unit with ExecStart pointing at `executable` (systemd wants an absolute path)."""
    return re.sub(rf"^ExecStart={re.escape(SHIPPED_EXEC)}\b", f"ExecStart={executable}", text, flags=re.M)


def specflowd_executable() -> str:
    found = shutil.which("specflowd")
    if found:
        return str(Path(found).resolve())
    raise UserError("cannot find the specflowd executable on PATH: install specflowd with pip first")


def user_unit_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "systemd" / "user"


@dataclass
class InstallResult:
    written: list[Path]
    reloaded: bool
    next_steps: list[str]


def install(target: Path, executable: str) -> InstallResult:
    target.mkdir(parents=True, exist_ok=True)
    source = shipped_dir()
    written = []
    for name in UNIT_NAMES:
        text = render((source / name).read_text(), executable)
        path = target / name
        if not path.exists() or path.read_text() != text:
            fsio.atomic_write(path, text.encode(), mode=0o644, fsync=False)
            written.append(path)
    reloaded = user_manager_reachable() and subprocess.run(
        ["systemctl", "--user", "daemon-reload"], capture_output=True).returncode == 0
    steps = [] if reloaded else ["systemctl --user daemon-reload"]
    steps.append("systemctl --user enable --now specflowd.service   # serves the projects of the user config")
    steps.append("systemctl --user restart specflowd.service        # when it ran already: it reads them anew")
    steps.append('loginctl enable-linger "$USER"   # keep it running after you log out')
    return InstallResult(written, reloaded, steps)


def user_manager_reachable() -> bool:
    if not shutil.which("systemctl"):
        return False
    r = subprocess.run(["systemctl", "--user", "show-environment"], capture_output=True)
    return r.returncode == 0
