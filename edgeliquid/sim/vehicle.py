"""`edgeliquid sim serve`: NavEnv in real time as a vehicle in its own process.

The camera streams MJPEG over HTTP (multipart/x-mixed-replace, one JPEG per frame with its
Content-Length, so OpenCV's FFmpeg reader hands each frame on at once) at the camera rate on
loopback; the autopilot (`sim.autopilot`) takes setpoints over MAVLink. Each camera period the
vehicle flies what the autopilot accepted (hold before offboard and after the failsafe) for one
NavEnv step, then publishes the next frame. The env's clock (and its time limit) starts when
offboard is entered: until then the vehicle hovers at the start and repeats its first frame.

When the flight ends (an outcome, `duration_s`, or a stop) the report — outcome, autopilot
events with times, setpoint counts, the track — goes to JSON with `episodes.atomic_write`,
and a top-down plot next to it. numpy, OpenCV and pymavlink only; never torch.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgeliquid.sim.autopilot import Autopilot, AutopilotConfig, MavlinkLink
from edgeliquid.sim.tasks import TASKS

log = logging.getLogger(__name__)
BOUNDARY = "edgeliquidframe"
VIDEO_PATH = "/video.mjpg"


@dataclass(frozen=True)
class VehicleConfig:
    """The world, the links and the flight's limits."""

    shift: str = "none"
    task: str = "reach"  # one of sim.tasks.TASKS: what the vehicle's world asks of the policy
    seed: int = 0  # the scene: NavEnv.reset(seed=seed)
    video_host: str = "127.0.0.1"  # loopback by default
    video_port: int = 8554  # 0: any free port
    mavlink: str = "udpin:127.0.0.1:14540"  # where setpoints arrive (PX4 SITL's port)
    duration_s: float = 60.0  # wall-clock cap on the whole run
    jpeg_quality: int = 95  # high: the policy was trained on lossless frames
    stall: tuple[float, float] | None = None  # fault: (start, length) s after offboard, no video
    autopilot: AutopilotConfig = field(default_factory=AutopilotConfig)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)}, got {self.task!r}")
        if not 0 <= self.video_port <= 65535:
            raise ValueError(f"video_port must be in 0..65535, got {self.video_port}")
        if not 0 < self.duration_s < math.inf:
            raise ValueError(f"duration_s must be a finite number > 0 s, got {self.duration_s}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in 1..100, got {self.jpeg_quality}")
        if self.stall is not None and not (self.stall[0] >= 0 and self.stall[1] > 0):
            raise ValueError(f"stall must be (start >= 0, length > 0) s, got {self.stall}")


class FrameBoard:
    """The newest JPEG and its number; stream handlers wait on it for the next one."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._jpeg = b""
        self._index = -1
        self.closed = False

    def publish(self, jpeg: bytes) -> None:
        with self._cond:
            self._jpeg, self._index = jpeg, self._index + 1
            self._cond.notify_all()

    def next_after(self, index: int, timeout: float = 1.0) -> tuple[int, bytes] | None:
        with self._cond:
            self._cond.wait_for(lambda: self._index > index or self.closed, timeout)
            if self.closed or self._index <= index:
                return None
            return self._index, self._jpeg

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()


def _handler(board: FrameBoard) -> type[BaseHTTPRequestHandler]:
    class Stream(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != VIDEO_PATH:
                self.send_error(404, f"the camera is at {VIDEO_PATH}")
                return
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            index = -1
            while not board.closed:
                got = board.next_after(index)
                if got is None:
                    continue  # a stalled camera: the connection stays open, no frame comes
                index, jpeg = got
                head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                head += f"Content-Length: {len(jpeg)}\r\n\r\n"
                try:
                    self.wfile.write(head.encode() + jpeg + b"\r\n")
                    self.wfile.flush()
                except OSError:
                    return  # the reader went away

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("video: " + format, *args)

    return Stream


class VideoServer:
    """MJPEG over HTTP on a thread: `http://HOST:PORT/video.mjpg`."""

    def __init__(self, host: str, port: int) -> None:
        self.board = FrameBoard()
        self._server = ThreadingHTTPServer((host, port), _handler(self.board))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://{host}:{self.port}{VIDEO_PATH}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> VideoServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.board.close()
        self._server.shutdown()
        self._server.server_close()


class Vehicle:
    """One flight: `run(stop)` until an outcome, the duration or `stop`; then `report()`."""

    def __init__(self, config: VehicleConfig) -> None:
        from edgeliquid.sim.env import NavEnv, NavEnvConfig

        self.config = config
        self.env = NavEnv(NavEnvConfig(shift=config.shift, task=config.task))
        self.autopilot = Autopilot(config.autopilot)
        self.track: list[list[float]] = []
        self.frames = {"sent": 0, "stalled": 0}
        self.last_frame_t: float | None = None
        self.outcome = "stopped"
        self.started = self.offboard_at = 0.0
        self.stall_window: tuple[float, float] | None = None

    def run(self, video: VideoServer, stop: threading.Event) -> None:
        cfg, env = self.config, self.env
        obs, info = env.reset(seed=cfg.seed)
        self.started = deadline = time.monotonic()
        flying = False
        while not stop.is_set():
            self._publish(video, obs)
            deadline += env.dt if flying else env.timing.nominal_dt
            stop.wait(max(0.0, deadline - time.monotonic()))
            if time.monotonic() - self.started >= cfg.duration_s:
                self.outcome = "duration"
                break
            if not flying and self.autopilot.mode != "POSCTL":
                flying, self.offboard_at = True, time.monotonic()
                self._plan_stall()
            if flying:
                obs, _, terminated, truncated, info = env.step(self.autopilot.command())
                self._record(info)
                if terminated or truncated:
                    self.outcome = str(info["outcome"])
                    break

    def _plan_stall(self) -> None:
        if self.config.stall is not None:
            start, length = self.config.stall
            self.stall_window = (self.offboard_at + start, self.offboard_at + start + length)

    def _publish(self, video: VideoServer, obs: np.ndarray) -> None:
        now = time.monotonic()
        if self.stall_window is not None and self.stall_window[0] <= now < self.stall_window[1]:
            self.frames["stalled"] += 1
            return
        quality = [cv2.IMWRITE_JPEG_QUALITY, self.config.jpeg_quality]
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(obs, cv2.COLOR_RGB2BGR), quality)
        if ok:
            video.board.publish(jpeg.tobytes())
            self.frames["sent"] += 1
            self.last_frame_t = now

    def _record(self, info: dict[str, Any]) -> None:
        x, y, z, yaw, vx, vy, vz, _ = (float(v) for v in info["state"])
        command = [round(float(v), 4) for v in self.autopilot.command()]
        row = [round(time.monotonic(), 4), round(float(info["time"]), 3), x, y, z, yaw]
        self.track.append([*row, math.hypot(vx, vy, vz), *command])

    def report(self) -> dict[str, Any]:
        scene = self.env.scene
        ap = self.autopilot
        return {
            "outcome": self.outcome,
            "seed": self.config.seed,
            "shift": self.config.shift,
            "task": self.config.task,
            "started_t": round(self.started, 4),
            "offboard_t": round(self.offboard_at, 4) if self.offboard_at else None,
            "flight_time_s": round(float(self.env.time), 3),
            "final_distance_m": round(float(self.env.target_distance()), 3),
            "mode": ap.mode,
            "events": [asdict(e) for e in ap.events],
            "setpoints": ap.counts,
            "last_setpoint_t": ap.last_setpoint,
            "frames": self.frames,
            "stall": list(self.stall_window) if self.stall_window else None,
            "autopilot": asdict(ap.config),
            "target": [round(float(v), 3) for v in scene.target],
            "start": [round(float(v), 3) for v in scene.start],
            "track_fields": ["t", "sim_t", "x", "y", "z", "yaw", "speed", *COMMAND_FIELDS],
            "track": self.track,
        }


COMMAND_FIELDS = ("forward", "right", "down", "yaw_rate")


def serve(config: VehicleConfig, stop: threading.Event, out: Path | None = None) -> dict[str, Any]:
    """Run one flight with its video server and MAVLink link; write the report if `out`."""
    vehicle = Vehicle(config)
    with (
        VideoServer(config.video_host, config.video_port) as video,
        MavlinkLink(config.mavlink, vehicle.autopilot),
    ):
        log.warning("vehicle: camera at %s, MAVLink on %s", video.url, config.mavlink)
        vehicle.run(video, stop)
    report = vehicle.report()
    log.warning("vehicle: %s after %.1f s of flight", report["outcome"], report["flight_time_s"])
    if out is not None:
        write_report(out, report, vehicle.env)
    return report


def write_report(out: Path, report: dict[str, Any], env: Any) -> None:
    from edgeliquid.episodes import atomic_write
    from edgeliquid.sim.preview import save_rgb

    atomic_write(out, (json.dumps(report, indent=1) + "\n").encode())
    save_rgb(out.with_suffix(".png"), top_down(report, env.scene.trees))


def top_down(report: dict[str, Any], trees: np.ndarray, size: int = 480) -> np.ndarray:
    """A top-down RGB plot (north up): trees grey, target red, track green in offboard and
    orange in hold/failsafe, start blue."""
    track = np.asarray([row[2:4] for row in report["track"]] or [report["start"][:2]], float)
    points = np.vstack([track, [report["target"][:2]], [report["start"][:2]]])
    centre, span = points.mean(0), max(float(np.ptp(points, 0).max()) + 12.0, 10.0)
    scale = size / span
    image = np.full((size, size, 3), 255, np.uint8)

    def pixel(x: float, y: float) -> tuple[int, int]:  # north up, east right
        return int(size / 2 + (y - centre[1]) * scale), int(size / 2 - (x - centre[0]) * scale)

    for tree in trees:
        cv2.circle(
            image, pixel(tree[0], tree[1]), max(2, int(tree[3] * scale)), (150, 150, 150), -1
        )
    failsafe = [e["t"] for e in report["events"] if e["event"] == "failsafe"]
    for a, b, row in zip(track[:-1], track[1:], report["track"][1:], strict=False):
        held = bool(failsafe and row[0] >= failsafe[0]) or not any(row[-4:])
        cv2.line(image, pixel(*a), pixel(*b), (230, 140, 0) if held else (0, 160, 0), 2)
    cv2.circle(image, pixel(*report["target"][:2]), max(3, int(0.5 * scale)), (220, 0, 0), -1)
    cv2.circle(image, pixel(*report["start"][:2]), 5, (0, 0, 220), -1)
    label = f"seed {report['seed']}: {report['outcome']}, {report['flight_time_s']:.1f} s"
    cv2.putText(image, label, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1)
    return image
