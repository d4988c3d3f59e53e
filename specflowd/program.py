"""Which `specflowd` is running: the program agents and git hooks are given, so that they reach this
very installation even where it is not on PATH (a systemd unit, a virtualenv nobody activated)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def own_program() -> Path | None:
    """The `specflowd` executable this process was started as (a console script, a wrapper), else the
    first one on PATH; None when there is none (started as `python -m specflowd` with none installed)."""
    argv0 = Path(sys.argv[0])
    if argv0.name == "specflowd" and argv0.is_file() and os.access(argv0, os.X_OK):
        return argv0.absolute()
    found = shutil.which("specflowd")
    return Path(found).absolute() if found else None
