"""System faults over the two processes (`sim serve` + `run`, loopback, bounded in time)."""

import contextlib
import json
import random
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("pymavlink")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sim"))
from test_vehicle_wire import ROOT, _free_port, _wait_for_port

MODEL = ROOT / "models" / "nav_cfc.onnx"
PERIOD = 0.1  # the daemon's 10 Hz


class LossyRelay:
    """A loopback UDP relay between the daemon and the vehicle that drops a share of the
    daemon's datagrams (seeded); the vehicle's replies (heartbeats) all pass back."""

    def __init__(self, vehicle_port: int, drop: float, seed: int = 0) -> None:
        self.vehicle = ("127.0.0.1", vehicle_port)
        self.drop, self.rng = drop, random.Random(seed)
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the daemon sends here
        self.front.bind(("127.0.0.1", 0))
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # to and from the vehicle
        self.port = self.front.getsockname()[1]
        self.passed = self.dropped = 0
        self._daemon: tuple | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._relay, daemon=True)

    def __enter__(self) -> "LossyRelay":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.front.close()
        self.back.close()

    def _relay(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.front, self.back], [], [], 0.05)
            for sock in ready:
                data, sender = sock.recvfrom(65536)
                if sock is self.back and self._daemon is not None:
                    self.front.sendto(data, self._daemon)
                elif sock is self.front:
                    self._daemon = sender
                    if self.rng.random() < self.drop:
                        self.dropped += 1
                    else:
                        self.passed += 1
                        self.back.sendto(data, self.vehicle)


@contextlib.contextmanager
def _two_processes(tmp_path, *vehicle_args, drop=None, duration=40):
    """`sim serve` (seed 9) and `run` against it over loopback, the MAVLink link through a
    LossyRelay dropping `drop` of the daemon's datagrams if given; yields (vehicle, daemon,
    out, relay or None)."""
    out = tmp_path / "f.json"
    video, mav = _free_port(socket.SOCK_STREAM), _free_port(socket.SOCK_DGRAM)
    relay = LossyRelay(mav, drop) if drop is not None else None
    link = relay.port if relay is not None else mav
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    cli = [sys.executable, "-m", "edgeliquid.cli"]
    with (tmp_path / "v.log").open("w") as vlog, (tmp_path / "d.log").open("w") as dlog:
        vehicle = subprocess.Popen(
            [*cli, "sim", "serve", "--seed", "9", "--video", str(video), *vehicle_args,
             "--mavlink", f"udpin:127.0.0.1:{mav}", "--out", str(out),
             "--duration", str(duration)],
            env=env, stdout=subprocess.DEVNULL, stderr=vlog,
        )  # fmt: skip
        _wait_for_port(video, vehicle)
        daemon = subprocess.Popen(
            [*cli, "run", str(MODEL), "--source", f"http://127.0.0.1:{video}/video.mjpg",
             "--sink", f"mavlink:udpout:127.0.0.1:{link}", "--duration", str(duration)],
            env=env, stdout=subprocess.DEVNULL, stderr=dlog,
        )  # fmt: skip
        with relay or contextlib.nullcontext():
            yield vehicle, daemon, out, relay


def _until_vehicle_ends(vehicle, daemon, timeout_s):
    """Wait for the vehicle's flight to end (its report written), then stop the daemon."""
    try:
        vehicle.wait(timeout=timeout_s)
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


def test_daemon_killed_mid_flight_vehicle_fails_safe_within_loss_timeout(tmp_path):
    with _two_processes(tmp_path) as (vehicle, daemon, out, _):
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
    with _two_processes(tmp_path, "--stall", "2:2") as (vehicle, daemon, out, _):
        _until_vehicle_ends(vehicle, daemon, 45)
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


def test_lossy_mavlink_link_still_reaches_the_target(tmp_path):
    """30% of the setpoints lost: ~7 Hz still arrive, above offboard's 2 Hz and far inside
    COM_OF_LOSS_T (ten losses in a row: 0.3**10 = 6e-6), so the flight goes on."""
    with _two_processes(tmp_path, drop=0.3) as (vehicle, daemon, out, relay):
        _until_vehicle_ends(vehicle, daemon, 45)
    report = json.loads(out.read_text())
    assert 0.2 < relay.dropped / (relay.dropped + relay.passed) < 0.4  # the loss was real
    assert report["outcome"] == "success", report["events"]
    assert "failsafe" not in {e["event"] for e in report["events"]}


def test_link_too_lossy_for_offboard_never_flies(tmp_path):
    """97% lost: ~0.3 setpoints/s arrive, below the 2 Hz offboard needs, so the vehicle never
    leaves its hold: no offboard, no collision, it stays where it started."""
    with _two_processes(tmp_path, drop=0.97, duration=8) as (vehicle, daemon, out, relay):
        _until_vehicle_ends(vehicle, daemon, 20)
    report = json.loads(out.read_text())
    assert relay.passed > 0 and relay.dropped > 20 * relay.passed / 2  # most were dropped
    assert "offboard" not in {e["event"] for e in report["events"]}, report["events"]
    assert report["outcome"] != "collision"
    assert report["offboard_t"] is None and report["outcome"] == "duration"
    assert report["flight_time_s"] == 0 and not report["track"]  # it never moved
    setpoints = report["setpoints"]  # the few that got through were refused, not flown
    assert setpoints["before_offboard"] > 0 and setpoints["flown"] == 0


def test_daemon_logs_the_autopilots_heartbeat_its_mode_and_its_loss(tmp_path):
    with _two_processes(tmp_path) as (vehicle, daemon, _, _):
        time.sleep(5.0)  # mid-flight, in offboard
        vehicle.send_signal(signal.SIGTERM)  # the autopilot goes away: heartbeats stop
        vehicle.wait(timeout=15)
        time.sleep(1.0 + 3.0 + 1.0)  # its last heartbeat period + HEARTBEAT_LOST_S + slack
        daemon.terminate()
        daemon.wait(timeout=10)
    log = (tmp_path / "d.log").read_text()
    lines = [
        "autopilot heartbeat seen: mode POSCTL",
        "autopilot mode POSCTL -> OFFBOARD",
        "autopilot heartbeat lost",
    ]
    at = [log.find(line) for line in lines]
    assert all(i >= 0 for i in at) and at == sorted(at), log
