"""System faults over the two processes (`sim serve` + `run`, loopback, bounded in time)."""

import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("pymavlink")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sim"))
from test_vehicle_wire import ROOT, _free_port, _wait_for_port

MODEL = ROOT / "models" / "nav_cfc.onnx"
PERIOD = 0.1  # the daemon's 10 Hz


@contextlib.contextmanager
def _two_processes(tmp_path, *vehicle_args):
    """`sim serve` (seed 9) and `run` against it over loopback; yields (vehicle, daemon, out)."""
    out = tmp_path / "f.json"
    video, mav = _free_port(socket.SOCK_STREAM), _free_port(socket.SOCK_DGRAM)
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    cli = [sys.executable, "-m", "edgeliquid.cli"]
    with (tmp_path / "v.log").open("w") as vlog, (tmp_path / "d.log").open("w") as dlog:
        vehicle = subprocess.Popen(
            [*cli, "sim", "serve", "--seed", "9", "--video", str(video), *vehicle_args,
             "--mavlink", f"udpin:127.0.0.1:{mav}", "--out", str(out), "--duration", "40"],
            env=env, stdout=subprocess.DEVNULL, stderr=vlog,
        )  # fmt: skip
        _wait_for_port(video, vehicle)
        daemon = subprocess.Popen(
            [*cli, "run", str(MODEL), "--source", f"http://127.0.0.1:{video}/video.mjpg",
             "--sink", f"mavlink:udpout:127.0.0.1:{mav}", "--duration", "40"],
            env=env, stdout=subprocess.DEVNULL, stderr=dlog,
        )  # fmt: skip
        yield vehicle, daemon, out


def test_daemon_killed_mid_flight_vehicle_fails_safe_within_loss_timeout(tmp_path):
    with _two_processes(tmp_path) as (vehicle, daemon, out):
        time.sleep(5.0)  # seed 9 flies ~11 s: still mid-flight
        daemon.kill()  # SIGKILL: no final hold, the stream just stops
        killed = time.monotonic()
        daemon.wait(timeout=10)
        time.sleep(2.0)
        vehicle.send_signal(signal.SIGTERM)
        vehicle.wait(timeout=15)
    report = json.loads(out.read_text())
    events = {e["event"]: e["t"] for e in report["events"]}
    assert "offboard" in events and events["offboard"] < killed, report["events"]
    assert report["mode"] == "LOITER"
    delay = events["failsafe"] - killed
    timeout = report["autopilot"]["loss_timeout_s"]
    assert 0 < delay <= timeout + PERIOD, delay  # COM_OF_LOSS_T + one period
    after = [row for row in report["track"] if row[0] > events["failsafe"] + 1.0]
    assert after and max(row[6] for row in after) < 0.3  # hovering (speed m/s)


def test_video_stall_holds_within_a_period_hovers_and_resumes(tmp_path):
    with _two_processes(tmp_path, "--stall", "2:2") as (vehicle, daemon, out):
        try:
            vehicle.wait(timeout=45)
        finally:
            daemon.terminate()
            daemon.wait(timeout=10)
    report = json.loads(out.read_text())
    start, end = report["stall"]
    rows = report["track"]
    held = [r for r in rows if start <= r[0] < end and not any(r[-4:])]
    assert held, "no hold during the stall"
    # stale after max_frame_age (0.25 s) + one daemon period; + one vehicle step of sampling
    assert held[0][0] - start <= 0.25 + PERIOD + PERIOD, held[0][0] - start
    assert [r for r in rows if start + 1.5 <= r[0] < end][-1][6] < 0.3  # hovering
    resumed = [r for r in rows if r[0] >= end and any(r[-4:])]
    assert resumed and resumed[0][0] - end <= 1.0, "flight did not resume"
    assert report["outcome"] == "success" and report["mode"] == "OFFBOARD"
