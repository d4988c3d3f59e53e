"""The verify step: the project's `verify_command`, run in the code worktree in its own process
group, each in a thread of its own that reports how it ended; stopped by killing its group."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import threading
from collections.abc import Callable, Hashable
from pathlib import Path

from specflowd.core.environment import child_env
from specflowd.core.vocab import TAIL_CHARS

TIMED_OUT = 124  # what `timeout(1)` exits with


class Verifier:
    """Verify processes by key (one per orchestration). Loop thread only, but for the reports."""

    def __init__(self) -> None:
        self._procs: dict[Hashable, subprocess.Popen[bytes]] = {}

    def run(self, key: Hashable, cwd: Path, command: str, timeout_s: float,
            report: Callable[[int, str], None]) -> None:
        """Start `command`; `report(exit code, output tail)` is called from its thread when it ends."""
        self._procs = {k: p for k, p in self._procs.items() if p.poll() is None}
        # The project's own command, split like a shell would but run without one: use
        # `sh -c '…'` in verify_command for pipes and `&&`.
        proc = subprocess.Popen(shlex.split(command), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, env=child_env(os.environ))
        self._procs[key] = proc

        def wait() -> None:
            try:
                out, _ = proc.communicate(timeout=timeout_s)
                code = proc.returncode
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                out, _ = proc.communicate()
                code = TIMED_OUT
                out += f"\n[specflowd: verify stopped after {timeout_s:g} s]".encode()
            report(code, out.decode("utf-8", "replace")[-TAIL_CHARS:])

        threading.Thread(target=wait, name=f"verify-{key}", daemon=True).start()

    def stop(self, key: Hashable) -> None:
        proc = self._procs.pop(key, None)
        if proc is not None:
            _kill_group(proc)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
