"""sd_notify for systemd `Type=notify` services, in a few lines of the standard library.

systemd passes `NOTIFY_SOCKET` (a datagram socket path, or `@name` in the abstract namespace)
and, with `WatchdogSec=`, `WATCHDOG_USEC`. The daemon says READY=1 once it flies, WATCHDOG=1
from its loop (at half the watchdog interval, so a stuck loop gets it restarted), STATUS=...
with its stats line, and STOPPING=1 on the way out. Without NOTIFY_SOCKET every call is a
no-op. A failed send is logged once and never stops the flight.
"""

from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger(__name__)


def _address(raw: str) -> str | bytes:
    return "\0" + raw[1:] if raw.startswith("@") else raw


class Notifier:
    """Sends sd_notify datagrams when systemd asked for them."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.address = env.get("NOTIFY_SOCKET") or None
        usec = env.get("WATCHDOG_USEC", "")
        interval = int(usec) / 1e6 if usec.isdigit() and int(usec) > 0 else 2.0
        self.watchdog_every_s = interval / 2  # systemd's advice: ping at half the interval
        self._last_watchdog = -float("inf")
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """Send `KEY=value` lines in one datagram; True if it went out."""
        if self.address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto("\n".join(fields).encode(), _address(self.address))
        except OSError as e:
            if not self._warned:
                log.warning("sd_notify to %s failed: %s", self.address, e)
                self._warned = True
            return False
        return True

    def ready(self, status: str = "") -> bool:
        return self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")

    def stopping(self) -> bool:
        return self.send("STOPPING=1")

    def watchdog(self, now: float | None = None) -> bool:
        """WATCHDOG=1, at most every half watchdog interval."""
        now = time.monotonic() if now is None else now
        if self.address is None or now - self._last_watchdog < self.watchdog_every_s:
            return False
        self._last_watchdog = now
        return self.send("WATCHDOG=1")
