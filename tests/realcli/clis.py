"""The real agent CLIs the tests drive: their pinned versions (the one place they are written), where
they are installed, and how each is pointed at the test's own model server on 127.0.0.1.

Install them with `python3 tests/realcli/install.py` (`.ci/run` does it first). They go into a cache
folder outside the repository: `$SPECFLOWD_TEST_CLIS`, else `~/.cache/specflowd-test-clis`, one
folder per package and version, so changing a pin installs the new version beside the old.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Cli:
    kind: str  # specflowd's [agent] kind
    package: str  # on the npm registry
    version: str  # pinned: the version these tests and README's command lines were checked against
    bin: str

    @property
    def folder(self) -> Path:
        return cache() / f"{self.kind}-{self.version}"

    @property
    def path(self) -> Path:
        return self.folder / "node_modules" / ".bin" / self.bin


CLIS = {
    "claude": Cli("claude", "@anthropic-ai/claude-code", "2.1.332", "claude"),
    "codex": Cli("codex", "@openai/codex", "0.171.0", "codex"),
    "gemini": Cli("gemini", "@google/gemini-cli", "0.61.0", "gemini"),
}


# Read once, on import: the tests give every test a HOME of its own.
_CACHE = Path(os.environ.get("SPECFLOWD_TEST_CLIS") or Path.home() / ".cache" / "specflowd-test-clis")


def cache() -> Path:
    return _CACHE


def installed_version(cli: Cli) -> str | None:
    """The version the installed binary reports, or None when it is not installed or does not run."""
    if not cli.path.exists():
        return None
    try:
        out = subprocess.run([str(cli.path), "--version"], capture_output=True, text=True, timeout=60,
                             env={"PATH": os.environ.get("PATH", ""), "HOME": str(cli.folder)})
    except (OSError, subprocess.TimeoutExpired):
        return None
    words = (out.stdout or out.stderr).split()
    return next((w for w in words if w[:1].isdigit()), None)


def environment(kind: str, home: Path, url: str) -> dict[str, str]:
    """What a CLI needs to talk to the model server at `url` and nowhere else, with its own state
    under `home`. Every CLI also gets the server as its HTTPS proxy (set by the caller): a request
    for any other address reaches the server as a CONNECT, is refused at once and logged."""
    if kind == "claude":
        return {"ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": "test-key", "CLAUDE_CONFIG_DIR": str(home / ".claude"),
                # calls nothing but the model API: no telemetry, update checks, error reports, surveys
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1",
                "DISABLE_TELEMETRY": "1", "DISABLE_ERROR_REPORTING": "1"}
    if kind == "codex":
        codex_home = home / ".codex"
        codex_home.mkdir(parents=True, exist_ok=True)
        # wire_api "responses" (0.171 refuses "chat"); a key variable of the provider's own naming,
        # which specflowd passes to agents because this config names it.
        (codex_home / "config.toml").write_text(
            'model_provider = "scripted"\n'
            "check_for_update_on_startup = false\n"
            "[model_providers.scripted]\n"
            'name = "scripted model server"\n'
            f'base_url = "{url}/v1"\n'
            'wire_api = "responses"\n'
            'env_key = "SCRIPTED_SERVER_KEY"\n'
            "request_max_retries = 1\n"
            "stream_max_retries = 1\n"
            "[analytics]\nenabled = false\n"
            "[features]\nplugins = false\n")
        return {"CODEX_HOME": str(codex_home), "SCRIPTED_SERVER_KEY": "test-key"}
    if kind == "gemini":
        settings = home / ".gemini" / "settings.json"
        settings.parent.mkdir(parents=True, exist_ok=True)
        settings.write_text(json.dumps({
            "security": {"auth": {"selectedType": "gemini-api-key"}},
            "privacy": {"usageStatisticsEnabled": False},
            "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
            "telemetry": {"enabled": False},
        }))
        return {"GOOGLE_GEMINI_BASE_URL": url, "GEMINI_API_KEY": "test-key"}
    raise ValueError(kind)


def proxy(url: str) -> dict[str, str]:
    """The server as every CLI's proxy, loopback excepted (the server itself is reached directly)."""
    return {"HTTPS_PROXY": url, "HTTP_PROXY": url, "https_proxy": url, "http_proxy": url,
            "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
