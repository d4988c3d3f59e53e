"""systemd's notify protocol without a dependency: readiness, status, watchdog pings and stopping,
one datagram each to $NOTIFY_SOCKET."""

from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger("specflowd.notify")
_VARS = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


class Notifier:
    def __init__(self, address: str | None, watchdog_usec: int | None) -> None:
        self.address = address
        self.watchdog_usec = watchdog_usec
        self._status: str | None = None
        self._sock: socket.socket | None = None

    @classmethod
    def from_environ(cls) -> Notifier:
        """Take the settings out of os.environ, so no child process (git, an agent) inherits them and
        talks to systemd in our name."""
        env = {k: os.environ.pop(k) for k in _VARS if k in os.environ}
        address = env.get("NOTIFY_SOCKET") or None
        usec = None
        pid = env.get("WATCHDOG_PID")
        if env.get("WATCHDOG_USEC", "").isdigit() and (not pid or pid == str(os.getpid())):
            usec = int(env["WATCHDOG_USEC"]) or None
        return cls(address, usec)

    @property
    def watchdog_interval(self) -> float | None:
        """How often to ping: half of the watchdog timeout, as systemd recommends."""
        return None if self.watchdog_usec is None else self.watchdog_usec / 2e6

    def send(self, *fields: str) -> None:
        if not self.address:
            return
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            if self._sock is None:
                # Non-blocking: a listener that stops reading must not stop the daemon.
                self._sock = socket.socket(socket.AF_UNIX,
                                           socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
            self._sock.sendto("\n".join(fields).encode(), target)
        except BlockingIOError:
            log.debug("notify socket %s is full; dropped %s", self.address, fields)
        except OSError as e:  # systemd gone or socket misconfigured: log, never die of it
            log.warning("cannot notify %s: %s", self.address, e)

    def status(self, text: str) -> None:
        if text != self._status:
            self._status = text
            self.send(f"STATUS={text}")

    def reloading(self) -> None:
        self.send("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
