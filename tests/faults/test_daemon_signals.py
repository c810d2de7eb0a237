"""Issue 10, daemon signals: any stop at any moment exits 0 without a traceback, and once
anything was sent the last datagram is a hold; a source whose open blocks cannot hold the
run (its holds, --duration, signals) hostage.

"At any moment" starts when `edgeliquid run` has its handlers in place, which the tests see in
/proc/PID/status (SigCgt); that is the first thing cli.py does, before typer and the runtime
are imported. Before it (~40 ms of interpreter start-up) Python's defaults apply and nothing
can have been sent.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import drain, listener

REPO = Path(__file__).resolve().parents[2]
from onnx_fixtures import write_model  # noqa: E402

HOLD = {"forward": 0.0, "right": 0.0, "down": 0.0, "yaw_rate": 0.0, "status": "hold"}


def edgeliquid(*args):
    cmd = [sys.executable, "-m", "edgeliquid.cli", *map(str, args)]
    env = os.environ | {"PYTHONPATH": str(REPO)}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def caught_signals(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return int(line.split()[1], 16)
    pytest.skip("no SigCgt in /proc/PID/status here")


def wait_for_handlers(proc, timeout=20.0):
    """Until the run catches SIGTERM, SIGINT and SIGHUP (Python alone catches only SIGINT)."""
    wanted = sum(1 << (s - 1) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if caught_signals(proc.pid) & wanted == wanted:
            return
        time.sleep(0.001)
    proc.kill()
    pytest.fail("edgeliquid run never installed its SIGTERM/SIGINT/SIGHUP handlers")


def is_hold(message):
    return all(message[k] == v for k, v in HOLD.items())


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("m") / "nav.onnx")


@pytest.mark.parametrize("when", [0.0, 0.3, "flying"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=str)
def test_any_stop_signal_at_any_moment_ends_in_a_hold_and_exit_zero(model, sig, when):
    sock, port = listener()
    with sock:
        proc = edgeliquid("run", model, "--sink", f"udp://127.0.0.1:{port}", "--rate", 20)
        first = []
        wait_for_handlers(proc)
        if when == "flying":
            sock.settimeout(30)
            first = [json.loads(sock.recv(4096))]
            time.sleep(0.3)
        else:
            time.sleep(when)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
        msgs = first + drain(sock)
    err = err.decode()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "Error" not in err, err
    if when == "flying":
        assert len(msgs) >= 3
    if msgs:
        assert is_hold(msgs[-1]) and msgs[-1]["reason"] == "shutdown", msgs[-1]
        assert [m["seq"] for m in msgs] == list(range(len(msgs)))


@pytest.fixture
def silent_tcp_peer():
    """A TCP port that accepts connections (in the kernel backlog) and never sends a byte."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    with server:
        yield f"tcp://127.0.0.1:{server.getsockname()[1]}"


def test_a_source_that_blocks_in_open_still_honours_duration(model, silent_tcp_peer):
    sock, port = listener()
    with sock:
        start = time.monotonic()
        proc = edgeliquid(
            "run", model, "--source", silent_tcp_peer, "--sink", f"udp://127.0.0.1:{port}",
            "--rate", 20, "--duration", 1,
        )  # fmt: skip
        _, err = proc.communicate(timeout=30)  # OpenCV's own open timeout is 30 s
        took = time.monotonic() - start
        msgs = drain(sock)
    err = err.decode()
    assert proc.returncode == 0, err
    assert took < 10, f"took {took:.1f} s"
    assert "Traceback" not in err
    assert len(msgs) >= 10 and all(is_hold(m) for m in msgs)
    assert {m["reason"] for m in msgs[:-1]} == {"no_frame"}
    assert msgs[-1]["reason"] == "shutdown"


def test_sigterm_while_the_source_open_blocks_sends_a_hold_at_once(model, silent_tcp_peer):
    sock, port = listener()
    with sock:
        proc = edgeliquid(
            "run", model, "--source", silent_tcp_peer, "--sink", f"udp://127.0.0.1:{port}",
            "--rate", 20,
        )  # fmt: skip
        sock.settimeout(30)
        first = json.loads(sock.recv(4096))
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        took = time.monotonic() - signalled
        msgs = [first, *drain(sock)]
    assert proc.returncode == 0, err.decode()
    assert took < 3, f"exit took {took:.1f} s after SIGTERM"
    assert is_hold(msgs[-1]) and msgs[-1]["reason"] == "shutdown"
    assert msgs[-1]["t"] - signalled < 0.1


def test_repeated_ctrl_c_during_shutdown_is_no_traceback_and_one_final_hold(model):
    sock, port = listener()
    with sock:
        proc = edgeliquid("run", model, "--sink", f"udp://127.0.0.1:{port}", "--rate", 20)
        sock.settimeout(30)
        first = json.loads(sock.recv(4096))
        for _ in range(5):
            proc.send_signal(signal.SIGINT)
            time.sleep(0.005)
        _, err = proc.communicate(timeout=30)
        msgs = [first, *drain(sock)]
    assert proc.returncode == 0, err.decode()
    assert "Traceback" not in err.decode()
    assert [m["reason"] for m in msgs].count("shutdown") == 1 and is_hold(msgs[-1])


def test_a_signal_while_the_loop_holds_the_stop_events_lock_does_not_deadlock():
    """Found flying: SIGTERM landed while the pacing wait was inside `event.wait()`; the handler's
    `event.set()` then waited forever on the lock its own thread held, and the daemon hung."""
    import threading

    from edgeliquid.runtime.stopping import StopRequest

    request = StopRequest()

    def loop_interrupted_inside_wait():
        with request.event._cond:  # where the main thread is when the handler runs mid-wait
            request._on_signal(signal.SIGTERM, None)

    worker = threading.Thread(target=loop_interrupted_inside_wait, daemon=True)
    worker.start()
    worker.join(2.0)
    assert not worker.is_alive(), "the signal handler blocked on the stop event's lock"
    assert request.requested and request.reason == "SIGTERM"
    assert request.event.wait(1.0)
