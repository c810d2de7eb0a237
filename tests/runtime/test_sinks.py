"""Command sinks: message format, stdout JSON lines, UDP datagrams, CSV, spec parsing."""

import csv
import io
import json
import socket

import numpy as np
import pytest

from edgeliquid.errors import EdgeLiquidError
from edgeliquid.runtime.sinks import (
    CommandMessage,
    CsvSink,
    NullSink,
    StdoutSink,
    UdpSink,
)
from edgeliquid.runtime.specs import open_sink, parse_udp

FIELDS = {"seq", "t", "forward", "right", "down", "yaw_rate", "status", "reason", "latency_ms"}


def _messages(n=5):
    return [
        CommandMessage.make(i, 10.0 + i / 10, [0.5 * i, -0.25, 0.125, -0.5], "ok", "", 0.1 * i)
        for i in range(n)
    ] + [CommandMessage.make(n, 10.0 + n / 10, [0, 0, 0, 0], "hold", "stale_frame")]


def test_message_carries_every_field():
    row = json.loads(_messages(2)[1].to_json())
    assert set(row) == FIELDS
    assert (row["seq"], row["forward"], row["yaw_rate"], row["status"]) == (1, 0.5, -0.5, "ok")
    assert row["latency_ms"] == pytest.approx(0.1)


def test_json_template_writes_what_json_dumps_writes():
    rng = np.random.default_rng(0)
    odd = ['say "hi"\\', "é", "", "stale_frame"]
    for i in range(300):
        command = rng.standard_normal(4).astype(np.float32) * 10.0 ** rng.integers(-8, 8)
        t, latency = float(rng.uniform(0, 1e6)), float(rng.uniform(0, 100))
        message = CommandMessage.make(i * 7919, t, command, "hold", odd[i % 4], latency)
        assert message.to_json() == json.dumps(message.to_dict(), separators=(",", ":"))
    for bad in (float("nan"), float("inf")):  # spelled NaN / Infinity, as json.dumps does
        message = CommandMessage.make(1, 1.0, [bad, 0, 0, 0], "ok")
        assert message.to_json() == json.dumps(message.to_dict(), separators=(",", ":"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"status": "fine"}, "status must be one of"), ({"command": (1.0, 2.0)}, "needs 4 values")],
)
def test_message_validates(kwargs, message):
    base = {"seq": 0, "t": 0.0, "command": (0.0,) * 4, "status": "ok"}
    with pytest.raises(ValueError, match=message):
        CommandMessage(**(base | kwargs))


def test_stdout_sink_writes_one_json_line_per_command():
    stream = io.StringIO()
    with StdoutSink(stream) as sink:
        for m in _messages():
            sink.send(m)
    lines = stream.getvalue().splitlines()
    assert [json.loads(line) for line in lines] == [m.to_dict() for m in _messages()]


def test_udp_sink_sends_one_datagram_per_command():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.settimeout(2.0)
        port = listener.getsockname()[1]
        with open_sink(f"udp://:{port}") as sink:  # empty host → loopback
            for m in _messages():
                sink.send(m)
        received = [json.loads(listener.recv(2048)) for _ in _messages()]
    assert received == [m.to_dict() for m in _messages()]


def test_udp_to_a_port_nobody_listens_on_does_not_raise():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with UdpSink("127.0.0.1", port) as sink:
        for m in _messages(20):
            sink.send(m)


def test_parse_udp():
    assert parse_udp("udp://192.168.1.5:14550") == ("192.168.1.5", 14550)
    assert parse_udp("udp://:9000") == ("127.0.0.1", 9000)
    assert parse_udp("udp://[::1]:9000") == ("::1", 9000)
    for bad in ("udp://host", "udp://host:0", "udp://host:70000", "udp://host:port"):
        with pytest.raises(EdgeLiquidError, match="expected udp://HOST:PORT"):
            parse_udp(bad)


def test_csv_sink_writes_a_header_and_rows(tmp_path):
    path = tmp_path / "cmds.csv"
    with CsvSink(path, flush_every=2) as sink:
        for m in _messages():
            sink.send(m)
    with path.open() as f:
        rows = list(csv.DictReader(f))
    assert set(rows[0]) == FIELDS
    assert [int(r["seq"]) for r in rows] == list(range(6))
    assert float(rows[3]["forward"]) == 1.5 and rows[-1]["reason"] == "stale_frame"


def test_csv_sink_into_a_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(EdgeLiquidError, match="cannot write"), CsvSink(tmp_path / "no" / "x.csv"):
        pass


def test_open_sink_kinds_and_errors(tmp_path):
    assert isinstance(open_sink("stdout"), StdoutSink)
    assert isinstance(open_sink("null"), NullSink)
    assert isinstance(open_sink(f"csv:{tmp_path / 'a.csv'}"), CsvSink)
    assert open_sink("udp://10.0.0.1:5000").name == "udp://10.0.0.1:5000"
    assert type(open_sink("mavlink:udpout:127.0.0.1:14540")).__name__ == "MavlinkSink"
    for bad in ("tcp://x:1", "csv:", "mavlink:", "file.json"):
        with pytest.raises(EdgeLiquidError, match="no sink"):
            open_sink(bad)


def test_sending_before_open_raises_for_the_daemon_to_log():
    with pytest.raises(OSError, match="not open"):
        UdpSink("127.0.0.1", 9).send(_messages(1)[0])
