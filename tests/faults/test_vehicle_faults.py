"""System faults over the two processes (`sim serve` + `run`, loopback, bounded in time)."""

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


def test_daemon_killed_mid_flight_vehicle_fails_safe_within_loss_timeout(tmp_path):
    out = tmp_path / "f.json"
    video, mav = _free_port(socket.SOCK_STREAM), _free_port(socket.SOCK_DGRAM)
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    cli = [sys.executable, "-m", "edgeliquid.cli"]
    with (tmp_path / "v.log").open("w") as vlog, (tmp_path / "d.log").open("w") as dlog:
        vehicle = subprocess.Popen(
            [*cli, "sim", "serve", "--seed", "9", "--video", str(video),
             "--mavlink", f"udpin:127.0.0.1:{mav}", "--out", str(out), "--duration", "40"],
            env=env, stdout=subprocess.DEVNULL, stderr=vlog,
        )  # fmt: skip
        _wait_for_port(video, vehicle)
        daemon = subprocess.Popen(
            [*cli, "run", str(MODEL), "--source", f"http://127.0.0.1:{video}/video.mjpg",
             "--sink", f"mavlink:udpout:127.0.0.1:{mav}", "--duration", "40"],
            env=env, stdout=subprocess.DEVNULL, stderr=dlog,
        )  # fmt: skip
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
