"""Closed loop over real transports: `sim serve` and `run` as two processes on loopback,
frames over MJPEG/HTTP, setpoints over MAVLink (bounded: ~10 s per seed)."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("pymavlink")
ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "nav_cfc.onnx"


def _free_port(kind):
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_port(port, process, timeout=20.0):
    """The vehicle's camera accepts connections (its imports take a few seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"the vehicle's camera did not come up on port {port}")


def fly_over_wire(seed, out, duration=30.0):
    """Start the vehicle, fly the shipped model at it, return the vehicle's report."""
    video, mav = _free_port(socket.SOCK_STREAM), _free_port(socket.SOCK_DGRAM)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    logs = out.with_suffix(".vehicle.log"), out.with_suffix(".daemon.log")
    with logs[0].open("w") as vehicle_log, logs[1].open("w") as daemon_log:
        _fly((vehicle_log, daemon_log), seed, out, duration, video, mav, env)
    text = [p.read_text() for p in logs]
    return json.loads(out.read_text()), "\n".join(text)


def _fly(files, seed, out, duration, video, mav, env):
    cli = [sys.executable, "-m", "edgeliquid.cli"]
    vehicle = subprocess.Popen(
        [*cli, "sim", "serve", "--seed", str(seed), "--video", str(video),
         "--mavlink", f"udpin:127.0.0.1:{mav}", "--out", str(out), "--duration", str(duration)],
        env=env, stdout=subprocess.DEVNULL, stderr=files[0],
    )  # fmt: skip
    _wait_for_port(video, vehicle)
    daemon = subprocess.Popen(
        [*cli, "run", str(MODEL), "--source", f"http://127.0.0.1:{video}/video.mjpg",
         "--sink", f"mavlink:udpout:127.0.0.1:{mav}", "--duration", str(duration)],
        env=env, stdout=subprocess.DEVNULL, stderr=files[1],
    )  # fmt: skip
    try:
        vehicle.wait(timeout=duration + 15)
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


@pytest.mark.parametrize("seed", [0])
def test_shipped_model_flies_to_success_over_the_wire(tmp_path, seed):
    report, daemon_log = fly_over_wire(seed, tmp_path / "flight.json")
    assert report["outcome"] == "success", (report["outcome"], daemon_log[-2000:])
    assert report["frames"]["sent"] > 10  # frames crossed the stream
    assert report["setpoints"]["flown"] > 10  # commands crossed MAVLink and were flown
    assert [e["event"] for e in report["events"]] == ["offboard"]
    assert (tmp_path / "flight.png").stat().st_size > 1000
