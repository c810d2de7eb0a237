"""Command sinks: where each control step's command goes (stdout, UDP, CSV, MAVLink, nowhere).

Every message carries the sequence number, the daemon's monotonic timestamp, the four command
values (forward, right, down m/s; yaw_rate rad/s, body FRD), the status (`ok`, `hold`,
`degraded`), why (for anything but ok) and the policy step's latency. Sinks are small context
managers; a sink that fails raises and the daemon logs it and keeps flying (the fail-safe
ladder's last rung), so sinks never swallow their own errors. Network sinks default to
loopback. `runtime.specs.open_sink(spec)` maps the `--sink` argument to a sink.

A sink never stalls the control loop: stdout (when it is a pipe or socket) and UDP are written
without blocking, and a message that does not fit (a reader that stopped reading, a full
socket buffer) is dropped and raised as `SinkDropped`, which the daemon counts and logs
rate-limited. The CSV sink writes only regular files, never one that exists unless asked to
overwrite it, and never a file it is told to protect (the model being flown).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import json
import logging
import math
import os
import socket
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from edgeliquid.contract import COMMAND_NAMES, COMMAND_SIZE
from edgeliquid.errors import EdgeLiquidError

log = logging.getLogger(__name__)
STATUSES = ("ok", "hold", "degraded")
CSV_FIELDS = ("seq", "t", *COMMAND_NAMES, "status", "reason", "latency_ms")
# to_json's layout: %r of a finite float is what json.dumps writes for it
_JSON_TEMPLATE = (
    '{"seq":%d,"t":%r,'
    + ",".join(f'"{name}":%r' for name in COMMAND_NAMES)
    + ',"status":%s,"reason":%s,"latency_ms":%r}'
)


@functools.lru_cache(maxsize=256)
def _quoted(text: str) -> str:
    """A JSON string literal; the few statuses and reasons repeat every tick."""
    return json.dumps(text)


@dataclass(frozen=True)
class CommandMessage:
    """One control step's output, as every sink sends it."""

    seq: int
    t: float  # the daemon's monotonic clock, seconds
    command: tuple[float, ...]  # 4 values: forward, right, down (m/s), yaw_rate (rad/s)
    status: str  # ok | hold | degraded
    reason: str = ""  # why the status is not ok, e.g. "stale_frame", "nonfinite", "shutdown"
    latency_ms: float = 0.0  # the policy step's wall time (0 when no step ran)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        if len(self.command) != COMMAND_SIZE:
            raise ValueError(f"command needs {COMMAND_SIZE} values, got {self.command}")

    @classmethod
    def make(cls, seq, t, command, status, reason="", latency_ms=0.0) -> CommandMessage:
        if isinstance(command, np.ndarray) and command.shape == (COMMAND_SIZE,):
            values = tuple(command.tolist())  # float32 -> Python float is exact
        else:
            values = tuple(np.asarray(command, np.float64).reshape(-1).tolist())
        return cls(seq, float(t), values, status, reason, float(latency_ms))

    def to_dict(self) -> dict:
        out: dict = {"seq": self.seq, "t": round(self.t, 6)}
        out |= {name: value for name, value in zip(COMMAND_NAMES, self.command, strict=True)}
        out |= {"status": self.status, "reason": self.reason, "latency_ms": self.latency_ms}
        return out

    def to_json(self) -> str:
        """`to_dict()` as compact JSON; finite numbers through a template (half the time)."""
        numbers = (round(self.t, 6), *self.command, self.latency_ms)
        if not all(map(math.isfinite, numbers)):  # NaN/Infinity spelled as json.dumps does
            return json.dumps(self.to_dict(), separators=(",", ":"))
        strings = (_quoted(self.status), _quoted(self.reason))
        return _JSON_TEMPLATE % (self.seq, *numbers[:-1], *strings, numbers[-1])


class Sink:
    """Base class: `open()`, `send(message)` per step, `flush()`, `close()`."""

    name = "sink"

    def open(self) -> None:
        """Acquire the output (socket, file, link)."""

    def send(self, message: CommandMessage) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        """Push out anything buffered."""

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> Sink:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.close()
        except OSError as e:  # a full disk or a gone link at the very end: the flight is over
            log.warning("closing %s failed: %s", self.name, e)


class SinkDropped(OSError):
    """A message was dropped because the output could not take it without blocking."""


class NullSink(Sink):
    """Keeps only a count and the last message (soak tests, benchmarks)."""

    name = "null"

    def __init__(self) -> None:
        self.count = 0
        self.last: CommandMessage | None = None

    def send(self, message: CommandMessage) -> None:
        self.count += 1
        self.last = message


class StdoutSink(Sink):
    """JSON lines, each written at once; to a pipe or socket without ever blocking.

    A line (≤ 4096 bytes, PIPE_BUF) goes into a non-blocking pipe whole or not at all, so a
    reader that stops reading costs dropped lines, never a stalled loop. The descriptor's
    blocking mode is restored on close; terminals and files are written as usual.
    """

    name = "stdout"

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self._fd: int | None = None
        self._was_blocking = True

    def open(self) -> None:
        stream = self.stream or sys.stdout
        try:
            fd = stream.fileno()
        except (AttributeError, OSError, ValueError):  # StringIO and friends
            return
        mode = os.fstat(fd).st_mode
        if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            stream.flush()
            self._fd, self._was_blocking = fd, os.get_blocking(fd)
            os.set_blocking(fd, False)

    def send(self, message: CommandMessage) -> None:
        line = message.to_json() + "\n"
        if self._fd is None:
            stream = self.stream or sys.stdout
            stream.write(line)
            stream.flush()
            return
        try:
            os.write(self._fd, line.encode())
        except BlockingIOError:
            raise SinkDropped("stdout reader is not keeping up: message dropped") from None

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):  # a descriptor already gone needs no restoring
                os.set_blocking(self._fd, self._was_blocking)
            self._fd = None


class UdpSink(Sink):
    """One JSON datagram per command to HOST:PORT (IPv4 or IPv6), sent without blocking."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.name = f"udp://{host}:{port}"
        self._sock: socket.socket | None = None
        self._addr: tuple | None = None

    def open(self) -> None:
        try:
            family, kind, proto, _, addr = socket.getaddrinfo(
                self.host, self.port, type=socket.SOCK_DGRAM
            )[0]
        except (socket.gaierror, UnicodeError) as e:
            why = getattr(e, "strerror", None) or str(e)
            raise EdgeLiquidError(f"cannot resolve {self.name}: {why}") from None
        self._sock = socket.socket(family, kind, proto)
        self._sock.setblocking(False)
        self._addr = addr

    def send(self, message: CommandMessage) -> None:
        if self._sock is None or self._addr is None:
            raise OSError(f"{self.name} is not open")
        try:
            self._sock.sendto(message.to_json().encode(), self._addr)
        except BlockingIOError:
            raise SinkDropped(f"{self.name}: socket buffer full, message dropped") from None

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class CsvSink(Sink):
    """A CSV file with a header row; flushed every `flush_every` rows and on close.

    The path must be a new file in an existing folder, or an existing regular file with
    `overwrite=True`; a path in `protect` (the model) is never written, whatever is asked.
    """

    def __init__(
        self,
        path: str | Path,
        flush_every: int = 50,
        overwrite: bool = False,
        protect: tuple[str | Path, ...] = (),
    ) -> None:
        self.path = Path(path)
        self.name = f"csv:{self.path}"
        self.flush_every = flush_every
        self.overwrite, self.protect = overwrite, tuple(Path(p) for p in protect)
        self._file: TextIO | None = None
        self._writer: Any = None  # csv.writer once open
        self._rows = 0

    def check(self) -> None:
        """Refuse a path this sink must not write (before anything is opened or truncated)."""
        path = self.path
        if not path.parent.is_dir():
            raise EdgeLiquidError(f"cannot write {path}: folder {path.parent} does not exist")
        if not path.exists():
            if path.is_symlink():
                raise EdgeLiquidError(f"refusing csv sink {path}: a symlink to nowhere")
            return
        if path.is_dir():
            raise EdgeLiquidError(f"cannot write {path}: it is a folder")
        if any(p.exists() and path.samefile(p) for p in self.protect):
            raise EdgeLiquidError(f"refusing csv sink {path}: it is the model being flown")
        if not stat.S_ISREG(path.stat().st_mode):
            raise EdgeLiquidError(f"refusing csv sink {path}: not a regular file")
        if not self.overwrite:
            raise EdgeLiquidError(f"csv sink {path} exists: pass --overwrite to replace it")

    def open(self) -> None:
        self.check()
        try:  # "x": a file that turned up since the check is still not overwritten
            self._file = self.path.open("w" if self.overwrite else "x", newline="")
        except FileExistsError:
            raise EdgeLiquidError(f"csv sink {self.path} exists: pass --overwrite") from None
        except OSError as e:
            raise EdgeLiquidError(f"cannot write {self.path}: {e.strerror}") from None
        self._writer = csv.writer(self._file)
        self._writer.writerow(CSV_FIELDS)

    def send(self, message: CommandMessage) -> None:
        if self._writer is None:
            raise OSError(f"{self.name} is not open")
        row = message.to_dict()
        self._writer.writerow([row[k] for k in CSV_FIELDS])
        self._rows += 1
        if self._rows % self.flush_every == 0:
            self.flush()

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
