"""Issue 10, daemon sinks: a stalled stdout reader never stalls the loop or its shutdown, UDP
never blocks, a csv sink never destroys a file (least of all the model), a sink that fails
on close is only logged, and the MAVLink serial form works or fails in one line."""

import fcntl
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomllib
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]
from onnx_fixtures import write_model  # noqa: E402

from edgeliquid.cli import app  # noqa: E402
from edgeliquid.errors import EdgeLiquidError  # noqa: E402
from edgeliquid.runtime.sinks import CommandMessage, CsvSink, Sink, UdpSink  # noqa: E402

F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("m") / "nav.onnx")


def cli(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def run_into_unread_pipe(model, *args):
    """`edgeliquid run --sink stdout` whose stdout is a 4 KiB pipe nobody reads."""
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, F_SETPIPE_SZ, 4096)  # ~20 lines fill it
    cmd = [sys.executable, "-m", "edgeliquid.cli", "run", model, "--sink", "stdout", *args]
    cmd = [str(c) for c in cmd]
    env = os.environ | {"PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, stdout=write_end, stderr=subprocess.PIPE, env=env)
    os.close(write_end)
    return proc, read_end


def ticks(err: str) -> int:
    found = re.search(r"stopped: (\d+) ticks", err)
    assert found, err
    return int(found.group(1))


def test_a_reader_that_stops_reading_does_not_stall_the_loop(model):
    proc, read_end = run_into_unread_pipe(model, "--rate", 50, "--duration", 2)
    try:
        _, err = proc.communicate(timeout=30)  # main: blocks in write() forever
    finally:
        os.close(read_end)
    err = err.decode()
    assert proc.returncode == 0, err
    assert ticks(err) >= 90  # 2 s at 50 Hz, nearly all after the pipe filled
    assert "message dropped" in err
    assert "Traceback" not in err


def test_sigterm_with_a_full_stdout_pipe_exits_at_once(model):
    proc, read_end = run_into_unread_pipe(model, "--rate", 50)
    try:
        time.sleep(3.0)  # start-up, then ~20 lines fill the pipe
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        took = time.monotonic() - signalled
    finally:
        os.close(read_end)
    assert proc.returncode == 0, err.decode()
    assert took < 2.0, f"exit took {took:.1f} s"
    assert ticks(err.decode()) >= 50


def test_udp_sink_never_blocks():
    sink = UdpSink("127.0.0.1", 9)
    with sink:
        assert sink._sock.getblocking() is False


class FailsOnClose(Sink):
    name = "fails-on-close"

    def send(self, message):
        pass

    def close(self):
        raise OSError(28, "No space left on device")


def test_a_sink_that_fails_on_close_is_only_logged(caplog):
    with FailsOnClose() as sink:
        sink.send(CommandMessage.make(0, 0.0, [0, 0, 0, 0], "hold", "shutdown"))
    assert "No space left on device" in caplog.text


# -- csv sink paths ---------------------------------------------------------------------------


def test_csv_sink_onto_the_model_is_refused_and_the_model_kept(model):
    before = Path(model).read_bytes()
    for extra in ([], ["--overwrite"]):
        code, out = cli("run", model, "--sink", f"csv:{model}", "--duration", 0.2, *extra)
        assert code == 1, out
        assert "edgeliquid: error:" in out and "model" in out, out
        assert Path(model).read_bytes() == before


def test_existing_csv_file_is_kept_even_when_the_model_fails(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    code, out = cli("run", tmp_path / "missing.onnx", "--sink", f"csv:{notes}")
    assert code == 1 and "--overwrite" in out, out
    assert notes.read_text() == "my notes\n"


def test_overwrite_replaces_an_existing_csv(model, tmp_path):
    log = tmp_path / "flight.csv"
    log.write_text("old\n")
    args = ("--sink", f"csv:{log}", "--source", "sim", "--duration", 0.3, "--rate", 20)
    code, out = cli("run", model, *args, "--overwrite")
    assert code == 0, out
    assert log.read_text().startswith("seq,t,forward")


@pytest.mark.parametrize("kind", ["missing folder", "under a file", "a folder", "a fifo"])
def test_csv_sink_bad_paths_are_one_line_before_anything_opens(tmp_path, kind):
    (tmp_path / "file").write_text("x")
    os.mkfifo(tmp_path / "fifo")
    path = {
        "missing folder": tmp_path / "nope" / "log.csv",
        "under a file": tmp_path / "file" / "log.csv",
        "a folder": tmp_path,
        "a fifo": tmp_path / "fifo",  # main: open() blocks forever waiting for a reader
    }[kind]
    with pytest.raises(EdgeLiquidError, match=re.escape(str(path))):
        CsvSink(path, overwrite=True).check()


# -- MAVLink serial -----------------------------------------------------------------------------


def test_the_mavlink_extra_installs_pyserial():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert any(dep.startswith("pyserial") for dep in project["optional-dependencies"]["mavlink"])


def test_missing_pyserial_is_one_line_naming_the_extra(monkeypatch):
    pytest.importorskip("pymavlink")
    from edgeliquid.runtime.mavlink import MavlinkSink

    monkeypatch.setitem(sys.modules, "serial", None)  # import serial → ImportError
    with pytest.raises(EdgeLiquidError, match=r"edgeliquid\[mavlink\]"):
        MavlinkSink("/dev/ttyEdgeliquidNone,921600").open()


def test_a_serial_device_that_does_not_exist_is_one_line(model):
    pytest.importorskip("pymavlink")
    pytest.importorskip("serial")
    code, out = cli("run", model, "--sink", "mavlink:/dev/ttyEdgeliquidNone,921600")
    assert code == 1, out
    assert out.count("\n") == 1 and out.startswith("edgeliquid: error: "), out
    assert "/dev/ttyEdgeliquidNone" in out


# -- siblings -----------------------------------------------------------------------------------


def test_a_host_name_idna_cannot_encode_is_one_line():
    with pytest.raises(EdgeLiquidError, match="cannot resolve"):  # main: UnicodeError traceback
        UdpSink("a" * 300, 9).open()


def test_mavlink_to_a_host_that_does_not_resolve_is_refused_not_flown_silently():
    pytest.importorskip("pymavlink")
    from edgeliquid.runtime.mavlink import MavlinkSink

    with pytest.raises(EdgeLiquidError, match="cannot resolve"):  # main: every send dropped
        MavlinkSink("udpout:no-such-host.invalid:14540").open()


def test_a_stdout_reader_that_goes_away_is_logged_and_the_run_ends_cleanly(model):
    cmd = [sys.executable, "-m", "edgeliquid.cli", "run", str(model), "--sink", "stdout"]
    env = os.environ | {"PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [*cmd, "--duration", "1.5", "--rate", "20"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    proc.stdout.readline()
    proc.stdout.close()
    with proc.stderr:
        err = proc.stderr.read().decode()
    proc.wait(timeout=30)
    assert proc.returncode == 0, err
    assert "Broken pipe" in err and "Traceback" not in err and "Exception ignored" not in err
