"""systemd's notify protocol, done by hand (no libsystemd): READY, WATCHDOG, STATUS, STOPPING.

When the unit has ``Type=notify`` systemd sets ``NOTIFY_SOCKET`` (a unix datagram socket;
"@name" is in the abstract namespace) and, with ``WatchdogSec=``, ``WATCHDOG_USEC`` (and
``WATCHDOG_PID``). Each message is "KEY=value" lines in one datagram. The loop pings the
watchdog from its own thread at half the interval, so a loop that hangs stops pinging
and systemd restarts it. Without ``NOTIFY_SOCKET`` every call is a no-op.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping


class Notifier:
    def __init__(self, env: Mapping[str, str] | None = None, *, clock=time.monotonic) -> None:
        env = os.environ if env is None else env
        self.clock = clock
        self.address: str | None = None
        self.sock: socket.socket | None = None
        self.watchdog_interval: float | None = None
        self.sent: list[str] = []  # the last few messages (for tests and debugging)
        self._last_ping = -1e18
        address = env.get("NOTIFY_SOCKET")
        if address:
            self.address = "\0" + address[1:] if address.startswith("@") else address
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            except OSError:  # pragma: no cover
                self.sock = None
        usec, pid = env.get("WATCHDOG_USEC"), env.get("WATCHDOG_PID")
        try:
            if usec and int(usec) > 0 and (not pid or int(pid) == os.getpid()):
                self.watchdog_interval = int(usec) / 2e6  # ping at half the timeout
        except ValueError:
            self.watchdog_interval = None

    @property
    def enabled(self) -> bool:
        return self.sock is not None

    def send(self, *lines: str) -> bool:
        if self.sock is None or self.address is None:
            return False
        message = "\n".join(lines)
        try:
            self.sock.sendto(message.encode("utf-8"), self.address)
        except OSError:
            return False  # systemd gone or socket full: never a reason to stop the loop
        self.sent = [*self.sent[-15:], message]
        return True

    def ready(self, status: str | None = None) -> None:
        self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> None:
        self.send(f"STATUS={text}")

    def watchdog(self, now: float | None = None) -> None:
        """Ping if half the watchdog interval has passed since the last ping."""
        if self.watchdog_interval is None:
            return
        now = self.clock() if now is None else now
        if now - self._last_ping >= self.watchdog_interval:
            self._last_ping = now
            self.send("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> None:
        self.send("STOPPING=1", *([f"STATUS={status}"] if status else []))

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
