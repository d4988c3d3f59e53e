"""The systemd units: installed with the right ExecStart, and clean under `systemd-analyze verify`
(stderr checked too, since unknown keys are only warnings)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                reason="systemd-analyze is not installed on this machine")


def verify(unit: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime))
    return subprocess.run(["systemd-analyze", "--user", "verify", str(unit)], capture_output=True, text=True,
                          env=env)


def test_install_writes_units_that_verify_cleanly(tmp_path: Path, bin_dir: Path, repo: Path) -> None:
    target = tmp_path / "units"
    assert run_cli("init", cwd=repo).returncode == 0
    project = repo
    r = run_cli("systemd", "install", "--dir", str(target), "--project", str(project), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in target.iterdir())
    assert names == ["specflowd.service", "specflowd@.path", "specflowd@.service"]
    shim = str((bin_dir / "specflowd").resolve())
    for unit in target.glob("*.service"):
        assert f"ExecStart={shim} run" in unit.read_text()
        assert "RestartPreventExitStatus=78" in unit.read_text()
    escaped = subprocess.run(["systemd-escape", "--path", str(project)], capture_output=True, text=True).stdout.strip()
    assert "enable --now specflowd.service" in r.stdout and "loginctl enable-linger" in r.stdout
    # The project is listed in the user config, which the service serves.
    user_config = Path(os.environ["XDG_CONFIG_HOME"]) / "specflowd" / "config.toml"
    assert tomllib.loads(user_config.read_text())["projects"] == [str(project.resolve())]
    again = run_cli("systemd", "install", "--dir", str(target), "--project", str(project), cwd=tmp_path)
    assert "already listed" in again.stdout
    assert tomllib.loads(user_config.read_text())["projects"] == [str(project.resolve())]
    # Templates are verified through an instance, as systemd would load them.
    (target / f"specflowd@{escaped}.service").write_text((target / "specflowd@.service").read_text())
    (target / f"specflowd@{escaped}.path").write_text((target / "specflowd@.path").read_text())
    for name in ("specflowd.service", f"specflowd@{escaped}.service", f"specflowd@{escaped}.path"):
        result = verify(target / name, tmp_path)
        assert result.returncode == 0, (name, result.stderr)
        assert result.stderr.strip() == "", (name, result.stderr)
    text = (target / "specflowd.service").read_text()
    for line in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "ExecReload=/bin/kill -HUP $MAINPID",
                 "NoNewPrivileges=yes"):
        assert line in text


def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    """The check above would notice a typo: systemd only warns about unknown keys."""
    unit = tmp_path / "broken.service"
    unit.write_text("[Service]\nType=notify\nExecStart=/bin/true\nWatchdogSecs=30s\n")
    result = verify(unit, tmp_path)
    assert "Unknown key" in result.stderr


def test_install_is_idempotent(tmp_path: Path) -> None:
    target = tmp_path / "units"
    assert run_cli("systemd", "install", "--dir", str(target), cwd=tmp_path).returncode == 0
    again = run_cli("systemd", "install", "--dir", str(target), cwd=tmp_path)
    assert again.returncode == 0 and "already up to date" in again.stdout
