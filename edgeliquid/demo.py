"""`edgeliquid demo`: fly an exported policy in the simulator and show what it did.

Writes into the output folder: `rollout.mp4` (every episode, camera view upscaled with the
command overlaid; `rollout.avi` with OpenCV's built-in MJPEG writer if this OpenCV cannot
write mp4v), `trajectories.png` (one top-down panel per episode: trees, target, path, outcome,
drawn with OpenCV so the device needs no matplotlib) and `summary.json` (per-episode outcome,
time and final distance, the success rate). Uses the runtime engine and the simulator only —
numpy, OpenCV and onnxruntime, never torch.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgeliquid.episodes import atomic_write
from edgeliquid.errors import EdgeLiquidError
from edgeliquid.paths import check_out_dir, check_out_file, is_png, json_with
from edgeliquid.runtime.engine import OnnxPolicy

PALETTE = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14)]  # RGB


@dataclass
class DemoConfig:
    """What to fly and how to film it."""

    episodes: int = 4
    seed: int = 0  # episode i uses seed + i
    shift: str = "none"
    video_fps: float = 20.0  # 2x real time at the 10 Hz nominal rate
    video_scale: int = 4  # upscale the small camera frames for viewing
    panel_px: int = 420  # size of one top-down panel

    def __post_init__(self) -> None:
        if not 1 <= self.episodes <= 100:
            raise ValueError(f"episodes must be in 1..100, got {self.episodes}")
        if self.video_fps <= 0 or not 1 <= self.video_scale <= 16:
            raise ValueError(
                f"video_fps must be > 0 and video_scale in 1..16, got "
                f"{self.video_fps}, {self.video_scale}"
            )
        if self.panel_px < 100:
            raise ValueError(f"panel_px must be ≥ 100, got {self.panel_px}")


@dataclass
class Flight:
    """One simulated episode flown by the policy."""

    seed: int
    outcome: str
    time_s: float
    final_distance_m: float
    path: np.ndarray  # [T, 2] north, east positions
    target: np.ndarray  # (north, east)
    trees: np.ndarray  # [N, 4] north, east, trunk radius, canopy radius
    step_ms: float  # mean policy step time


class VideoOut:
    """mp4v through cv2.VideoWriter, or MJPEG .avi where mp4v is unavailable."""

    def __init__(self, folder: Path, size: tuple[int, int], fps: float) -> None:
        self.path = folder / "rollout.mp4"
        self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter.fourcc(*"mp4v"), fps, size)
        if not self.writer.isOpened():
            self.path = folder / "rollout.avi"
            self.writer = cv2.VideoWriter(
                str(self.path), cv2.VideoWriter.fourcc(*"MJPG"), fps, size
            )
        if not self.writer.isOpened():
            raise EdgeLiquidError(f"this OpenCV cannot write video into {folder}")
        self.frames = 0

    def write(self, rgb: np.ndarray) -> None:
        self.writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> None:
        self.writer.release()


def _overlay(frame: np.ndarray, scale: int, lines: list[str]) -> np.ndarray:
    big = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    band = 10 + 20 * len(lines)
    big[:band] = big[:band] // 3  # darken a band so the text reads on sky and snow alike
    for i, text in enumerate(lines):
        org = (8, 22 + 20 * i)
        cv2.putText(big, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return big


def _make_env(policy: OnnxPolicy, shift: str):
    try:
        from edgeliquid.sim.env import NavEnv, NavEnvConfig
    except ImportError as e:
        raise EdgeLiquidError(f"the demo needs the simulator (edgeliquid.sim): {e}") from None
    height, width = policy.input_size
    try:
        return NavEnv(NavEnvConfig(height=height, width=width, shift=shift))
    except ValueError as e:
        raise EdgeLiquidError(f"bad simulator settings: {e}") from None


def _caption(index: int, config: DemoConfig, info: dict, command: np.ndarray) -> list[str]:
    return [
        f"episode {index + 1}/{config.episodes}  t={info['time']:.1f} s  "
        f"target {info['distance']:.1f} m",
        "fwd {:+.2f} right {:+.2f} down {:+.2f} yaw {:+.2f}".format(*command),
    ]


class _Timed:
    """The policy, timing its steps (the demo reports the mean policy step time)."""

    def __init__(self, policy: OnnxPolicy) -> None:
        self.policy, self.spent, self.steps = policy, 0.0, 0

    def reset(self) -> None:
        self.policy.reset()

    def step(self, frame: np.ndarray, dt: float | None = None) -> np.ndarray:
        t0 = time.perf_counter()
        command = self.policy.step(frame, dt)
        self.spent += time.perf_counter() - t0
        self.steps += 1
        return command


def fly_episode(env, policy: OnnxPolicy, seed: int, video: VideoOut, config: DemoConfig, index):
    """Closed loop: frame → policy (clamped to its limits) → env, filming every frame."""
    from edgeliquid.sim.rollout import rollout

    def clamp(raw: np.ndarray, info: dict) -> np.ndarray:
        return np.clip(np.nan_to_num(raw, nan=0.0), -policy.limits, policy.limits)

    timed, path = _Timed(policy), []
    for frame in rollout(env, timed, seed, execute=clamp):
        path.append(frame.info["state"][:2].copy())
        if frame.flown is not None:
            caption = _caption(index, config, frame.info, frame.flown)
            video.write(_overlay(frame.obs, config.video_scale, caption))
    info, outcome = frame.info, frame.info["outcome"]
    video.write(_overlay(frame.obs, config.video_scale, [f"episode {index + 1}: {outcome}"]))
    scene = env.scene
    return Flight(
        seed=seed,
        outcome=outcome,
        time_s=float(info["time"]),
        final_distance_m=float(info["distance"]),
        path=np.asarray(path),
        target=np.asarray(scene.target[:2], float),
        trees=np.asarray(scene.trees[:, :4], float),
        step_ms=timed.spent / max(timed.steps, 1) * 1e3,
    )


def _panel(flight: Flight, colour: tuple[int, int, int], size: int, title: str) -> np.ndarray:
    """Top-down view, north up, east right, fitted around the path and the target."""
    canvas = np.full((size, size, 3), 250, np.uint8)
    points = np.vstack([flight.path, flight.target[None]])
    centre = (points.max(0) + points.min(0)) / 2
    span = max(float(np.ptp(points, axis=0).max()) + 8.0, 12.0)
    scale = (size - 40) / span

    def px(north: float, east: float) -> tuple[int, int]:
        return (
            int(size / 2 + (east - centre[1]) * scale),
            int(size / 2 - (north - centre[0]) * scale),
        )

    for north, east, trunk, canopy in flight.trees:
        cv2.circle(canvas, px(north, east), max(1, int(canopy * scale)), (190, 225, 190), -1)
        cv2.circle(canvas, px(north, east), max(1, int(trunk * scale)), (60, 110, 60), -1)
    target = px(*flight.target)
    cv2.circle(canvas, target, int(2.0 * scale), (255, 200, 160), 1, cv2.LINE_AA)  # 2 m success
    cv2.circle(canvas, target, 5, (240, 90, 20), -1, cv2.LINE_AA)
    line = np.array([px(n, e) for n, e in flight.path], np.int32)
    cv2.polylines(canvas, [line], False, colour, 2, cv2.LINE_AA)
    cv2.circle(canvas, tuple(line[0]), 4, (0, 0, 0), -1)
    cv2.putText(canvas, title, (10, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    bar = int(5 * scale)  # a 5 m scale bar
    cv2.line(canvas, (10, size - 12), (10 + bar, size - 12), (0, 0, 0), 2)
    cv2.putText(canvas, "5 m", (14 + bar, size - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    return canvas


def draw_trajectories(flights: list[Flight], path: Path, panel_px: int) -> None:
    """A grid of top-down panels, one per episode, written as PNG."""
    cols = math.ceil(math.sqrt(len(flights)))
    rows = math.ceil(len(flights) / cols)
    grid = np.full((rows * panel_px, cols * panel_px, 3), 255, np.uint8)
    for i, flight in enumerate(flights):
        title = f"ep {i + 1} seed {flight.seed}: {flight.outcome}, {flight.time_s:.1f} s"
        panel = _panel(flight, PALETTE[i % len(PALETTE)], panel_px, title)
        r, c = divmod(i, cols)
        grid[r * panel_px : (r + 1) * panel_px, c * panel_px : (c + 1) * panel_px] = panel
        corner = ((c + 1) * panel_px - 1, (r + 1) * panel_px - 1)
        cv2.rectangle(grid, (c * panel_px, r * panel_px), corner, (180, 180, 180), 1)
    ok, png = cv2.imencode(".png", cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    if not ok:
        raise EdgeLiquidError(f"cannot encode {path}")
    atomic_write(path, png.tobytes())


def check_out(out: Path) -> None:
    """Refuse, before flying, an --out that is no folder, or holds files of other kinds
    under the names the demo writes (an earlier demo's files are replaced)."""
    check_out_dir(out, "--out")
    check_out_file(out / "summary.json", "--out", replaces=json_with("successes", "results"))
    check_out_file(out / "trajectories.png", "--out", replaces=is_png)
    for video in ("rollout.mp4", "rollout.avi"):
        check_out_file(out / video, "--out", replaces=_is_video)


def _is_video(path: Path) -> bool:
    """An MP4 (`ftyp` box first) or AVI (RIFF ... AVI) file: an earlier demo's video."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return False
    return head[4:8] == b"ftyp" or (head[:4] == b"RIFF" and head[8:12] == b"AVI ")


def _summary(model: Path, policy: OnnxPolicy, config: DemoConfig, flights, video, plot) -> dict:
    successes = sum(f.outcome == "success" for f in flights)
    return {
        "model": str(model),
        "model_sha256": policy.metadata.sha256,
        "shift": config.shift,
        "seed": config.seed,
        "episodes": len(flights),
        "successes": successes,
        "success_rate": successes / len(flights),
        "mean_step_ms": float(np.mean([f.step_ms for f in flights])),
        "video": str(video),
        "plot": str(plot),
        "results": [
            {
                "episode": i,
                "seed": f.seed,
                "outcome": f.outcome,
                "time_s": round(f.time_s, 2),
                "final_distance_m": round(f.final_distance_m, 2),
            }
            for i, f in enumerate(flights)
        ],
    }


def run_demo(
    model: str | Path,
    out: str | Path,
    config: DemoConfig | None = None,
    echo: Callable[[str], None] = print,
) -> dict:
    """Fly `config.episodes` episodes; write video, plot and summary into `out`; return summary."""
    config, model, out = config or DemoConfig(), Path(model), Path(out)
    check_out(out)
    if not model.is_file():
        raise EdgeLiquidError(f"model file not found: {model} (train + export one, or --model)")
    policy = OnnxPolicy(model)
    env = _make_env(policy, config.shift)
    out.mkdir(parents=True, exist_ok=True)
    height, width = policy.input_size
    video = VideoOut(
        out, (width * config.video_scale, height * config.video_scale), config.video_fps
    )
    flights = []
    try:
        for i in range(config.episodes):
            flights.append(fly_episode(env, policy, config.seed + i, video, config, i))
            f = flights[-1]
            echo(f"episode {i + 1}: {f.outcome:<13} {f.time_s:5.1f} s  {f.final_distance_m:5.1f} m")
    finally:
        video.close()
    plot = out / "trajectories.png"
    draw_trajectories(flights, plot, config.panel_px)
    summary = _summary(model, policy, config, flights, video.path, plot)
    atomic_write(out / "summary.json", (json.dumps(summary, indent=2) + "\n").encode())
    return summary
