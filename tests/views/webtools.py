"""Test helpers for `specflowd web`: the server as a real process, and a reader of its event stream
(http.client, reading the stream line by line as a browser's EventSource does)."""

from __future__ import annotations

import http.client
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


class WebProcess:
    """`specflowd web --port 0 ...`, ready once it printed where it listens."""

    def __init__(self, root: Path, *args: str, log: Path, env: dict[str, str] | None = None) -> None:
        self.log_path = log
        self._log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(["specflowd", "web", "-C", str(root), "--port", "0", *args], cwd=root,
                                     stdout=subprocess.PIPE, stderr=self._log, text=True, env=env)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # ends when it prints, or exits
        found = re.search(r"(http://\S+/)", line)
        assert found, f"specflowd web did not start: {line!r} {log.read_text(errors='replace')}"
        self.url = found.group(1)
        parts = urlsplit(self.url)
        self.host, self.port = str(parts.hostname), int(parts.port or 80)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def get(self, path: str, method: str = "GET", headers: dict[str, str] | None = None,
            body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def json(self, path: str) -> Any:
        status, _, body = self.get(path)
        assert status == 200, (status, body)
        return json.loads(body)

    def stream(self, last_id: str | None = None) -> EventStream:
        return EventStream(self.host, self.port, last_id)

    def threads(self) -> int:
        return len(list(Path(f"/proc/{self.pid}/task").iterdir()))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            assert self.proc.stdout is not None
            self.proc.stdout.close()
            self._log.close()


@dataclass
class Event:
    id: str | None
    name: str
    data: Any


class EventStream:
    """One connection to /events; `next()` is the next event, or TimeoutError after `timeout`."""

    def __init__(self, host: str, port: int, last_id: str | None = None) -> None:
        self.conn = http.client.HTTPConnection(host, port, timeout=30)
        headers = {"Accept": "text/event-stream"}
        if last_id is not None:
            headers["Last-Event-ID"] = last_id
        self.conn.request("GET", "/events", headers=headers)
        assert self.conn.sock is not None
        self.sock = self.conn.sock  # the connection lets go of it: the response reads until close
        self.response = self.conn.getresponse()
        assert self.response.status == 200, self.response.status
        self.headers = {k.lower(): v for k, v in self.response.getheaders()}

    def next(self, timeout: float = 30) -> Event:
        self.sock.settimeout(timeout)
        fields: dict[str, str] = {}
        while True:
            line = self.response.readline()
            if not line:
                raise ConnectionError("the server closed the stream")
            text = line.decode().rstrip("\n")
            if text:
                name, _, value = text.partition(": ")
                fields[name] = value
                continue
            if "event" in fields or "data" in fields:
                return Event(fields.get("id"), fields.get("event", "message"), json.loads(fields.get("data", "null")))
            fields = {}  # a `retry:` preamble, or a comment

    def close(self) -> None:
        self.response.close()
        self.sock.close()
        self.conn.close()
