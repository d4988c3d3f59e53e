"""Install the pinned agent CLIs for the real-CLI tests: `python3 tests/realcli/install.py [claude codex gemini]`.

Each goes into its own folder of the cache (tests/realcli/clis.py says where), with npm. Installing
a version that is there already does nothing. It fails, naming the CLI, when npm is missing, an
install fails, or the installed binary does not report the pinned version.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.realcli.clis import CLIS, Cli, cache, installed_version  # noqa: E402


def install(cli: Cli) -> str:
    if installed_version(cli) == cli.version:
        return f"{cli.kind} {cli.version}: already installed in {cli.folder}"
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is not installed: the real-CLI tests need Node.js 20 or newer and npm")
    began = time.monotonic()
    cli.folder.mkdir(parents=True, exist_ok=True)
    r = subprocess.run([npm, "install", "--prefix", str(cli.folder), "--no-audit", "--no-fund", "--no-save",
                        "--loglevel=error", f"{cli.package}@{cli.version}"], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{cli.kind}: npm install {cli.package}@{cli.version} failed:\n{r.stderr[-2000:]}")
    got = installed_version(cli)
    if got != cli.version:
        raise SystemExit(f"{cli.kind}: installed, but {cli.path} reports {got or 'nothing'}, not {cli.version}")
    return f"{cli.kind} {cli.version}: installed in {cli.folder} ({time.monotonic() - began:.0f} s)"


def main(names: list[str]) -> int:
    unknown = [n for n in names if n not in CLIS]
    if unknown:
        raise SystemExit(f"unknown CLI {', '.join(unknown)}: choose from {', '.join(CLIS)}")
    print(f"real agent CLIs, in {cache()}")
    for name in names or list(CLIS):
        print(install(CLIS[name]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
