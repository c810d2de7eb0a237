"""Small helpers several test files share: a loopback UDP listener, a sink that keeps every
command, a CLI result's one error line (import them by name; `pythonpath = ["tests"]`)."""

from __future__ import annotations

import json
import socket

import numpy as np

from edgeliquid.runtime.sinks import Sink


def listener() -> tuple[socket.socket, int]:
    """A UDP socket bound to a free loopback port, with room for a burst of datagrams."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    return sock, sock.getsockname()[1]


def drain(sock: socket.socket, timeout: float = 0.5) -> list[dict]:
    """Every JSON datagram until `timeout` s pass without one."""
    sock.settimeout(timeout)
    out = []
    try:
        while True:
            out.append(json.loads(sock.recv(4096)))
    except TimeoutError:
        return out


class ListSink(Sink):
    """Keeps every command it is sent (float64 copies)."""

    name = "list"

    def __init__(self) -> None:
        self.commands: list[np.ndarray] = []

    def send(self, message) -> None:
        self.commands.append(np.asarray(message.command, np.float64))


def one_error_line(result) -> str:
    """The single stderr line of a failed command (asserting there is exactly one)."""
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgeliquid: error: "), result.stderr
    return lines[0]
