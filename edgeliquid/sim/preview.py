"""`edgeliquid sim preview` and `sim bench`: contact sheets of the shifts and of the tasks, and
render speed.

The shift sheet has one row per shift and, per scene seed, the first frame and a frame from
mid-flight (the expert flying). A task sheet (`task_sheet`) has one row per scene: frames of
the expert's whole flight on that task, the first and the last, the frame of each task event
(a chain target reached, the blackout and its end) and evenly spaced ones between, each
stamped with its time. The benchmark renders the poses of expert flights on one core
(OpenCV single-threaded and, where the OS allows, the process pinned to one CPU) and also
times whole `env.step` calls (dynamics, rendering and the shift's sensor effects).
"""

from __future__ import annotations

import bisect
import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence

import cv2
import numpy as np

from edgeliquid.sim.env import NavEnv, NavEnvConfig, episode_seed
from edgeliquid.sim.expert import ExpertPolicy
from edgeliquid.sim.rollout import rollout
from edgeliquid.sim.shifts import parse_shift

LABEL_WIDTH = 120  # px of the row labels on the sheet
MID_FLIGHT_S = 4.0
TASK_COLUMNS = 6  # frames per scene on a task sheet


def _timing_note(shift_name: str) -> str:
    shift = parse_shift(shift_name)
    if shift.dt_range is not None:
        low, high = (0.1 * shift.dt_scale * k for k in shift.dt_range)
        return f"dt {low:.2f}-{high:.2f} s"
    return f"{1 / (0.1 * shift.dt_scale):.0f} Hz"


def _frames(
    shift: str, seed: int, size: tuple[int, int], randomize: bool = False
) -> list[np.ndarray]:
    """First frame and one from MID_FLIGHT_S seconds into the expert's flight."""
    config = NavEnvConfig(height=size[0], width=size[1], shift=shift, randomize=randomize)
    env = NavEnv(config)
    flight = rollout(env, ExpertPolicy(), episode_seed(seed, 0, "eval"))
    first = frame = next(flight)
    while frame.info["time"] < MID_FLIGHT_S and not frame.done:
        frame = next(flight)
    return [first.obs, frame.obs]


def check_sheet(seeds: int, size: tuple[int, int], scale: int) -> None:
    """ValueError unless the sheet is something to look at and fits in memory."""
    if not 1 <= seeds <= 20:
        raise ValueError(f"--seeds must be in 1..20 scenes per row, got {seeds}")
    if not 1 <= scale <= 8:
        raise ValueError(f"--scale must be in 1..8, got {scale}")
    NavEnvConfig(height=size[0], width=size[1])  # its ValueError names the allowed sizes
    if size[0] * size[1] * scale * scale * seeds > 8_000_000:
        raise ValueError(f"a {size[0]}x{size[1]} sheet of {seeds} scenes at x{scale} is too big")


def contact_sheet(
    shifts: Sequence[str],
    seeds: Sequence[int],
    size: tuple[int, int] = (72, 128),
    scale: int = 2,
    randomize: bool = False,
) -> np.ndarray:
    """An RGB image: a labelled row of frames per shift (randomised: each row new draws)."""
    check_sheet(len(seeds), size, scale)
    rows = []
    for row, shift in enumerate(shifts):
        row_seeds = [s + row * len(seeds) for s in seeds] if randomize else seeds
        frames = [f for seed in row_seeds for f in _frames(shift, seed, size, randomize)]
        notes = (shift, _timing_note(shift), *(["randomized"] if randomize else []))
        rows.append(_row(frames, scale, notes))
    return np.concatenate(rows, axis=0)


def _row(frames: Sequence[np.ndarray], scale: int, notes: Sequence[str]) -> np.ndarray:
    """Frames side by side (1 px apart), magnified, after a label with `notes`, a line each."""
    strip = np.concatenate([np.pad(f, ((1, 1), (1, 1), (0, 0))) for f in frames], axis=1)
    strip = cv2.resize(strip, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    label = np.full((strip.shape[0], LABEL_WIDTH, 3), 30, np.uint8)
    for line, text in enumerate(notes):
        org = (6, 22 + 20 * line)
        cv2.putText(label, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.5, (235, 235, 235), 1)
    return np.concatenate([label, strip], axis=1)


def stamp(
    frame: np.ndarray, scale: int, text: str, *below: tuple[str, tuple[int, int, int]]
) -> np.ndarray:
    """`frame` magnified, with `text` in its top-left corner (white on a dark outline) and each
    (line, RGB colour) of `below` along its bottom edge, the last lowest."""
    big = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    lines = [(text, (4, 14), (255, 255, 255))]
    bottom = big.shape[0] - 6 - 14 * (len(below) - 1)
    lines += [(line, (4, bottom + 14 * i), rgb) for i, (line, rgb) in enumerate(below)]
    for line, org, rgb in lines:
        for color, thickness in (((0, 0, 0), 3), (rgb, 1)):
            cv2.putText(big, line, org, cv2.FONT_HERSHEY_SIMPLEX, 0.4, color, thickness)
    return big


def _key_frames(times: Sequence[float], events: Sequence[tuple[float, str]], count: int) -> dict:
    """{frame index: note} of `count` frames: the first, the last, the first at or after each
    event, then the evenly spaced ones farthest from those already picked."""
    last = len(times) - 1
    picks = {0: "start", last: "end"}
    for when, what in events:
        picks.setdefault(min(bisect.bisect_left(times, when - 1e-9), last), what)
    spread = [round(i) for i in np.linspace(0, last, count)]
    while len(picks) < count and spread:
        far = max(spread, key=lambda i: min(abs(i - p) for p in picks))
        picks.setdefault(far, "")
        spread.remove(far)
    return dict(sorted(picks.items()))


def task_sheet(
    task: str,
    seeds: Sequence[int],
    size: tuple[int, int] = (72, 128),
    scale: int = 2,
    shift: str = "none",
) -> np.ndarray:
    """An RGB image: per scene seed, a labelled row of TASK_COLUMNS frames of the expert
    flying `task` under `shift` (see the module doc)."""
    check_sheet(len(seeds), size, scale)
    env = NavEnv(NavEnvConfig(height=size[0], width=size[1], shift=shift, task=task))
    rows = []
    for seed in seeds:
        scene = episode_seed(seed, 0, "eval")
        times = [f.info["time"] for f in rollout(env, ExpertPolicy(), scene)]
        picks = _key_frames(times, env.task.events, TASK_COLUMNS)
        stamped = []  # flown again (it is deterministic), keeping only the picked frames
        for i, frame in enumerate(rollout(env, ExpertPolicy(), scene)):
            if i in picks:
                text = f"{times[i]:.1f} s {picks[i]}".strip()
                stamped.append(stamp(frame.obs, scale, text))
        notes = (task, f"scene {seed}", str(frame.info["outcome"]))
        rows.append(_row(stamped, 1, notes))
    return np.concatenate(rows, axis=0)


def save_rgb(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write an RGB image as PNG, atomically (the folder made if needed)."""
    from edgeliquid.episodes import atomic_write

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    params = [cv2.IMWRITE_PNG_COMPRESSION, 9]
    ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ValueError(f"could not encode a {image.shape} image as PNG")
    atomic_write(path, png.tobytes())


@contextlib.contextmanager
def one_core() -> Iterator[str]:
    """OpenCV on one thread and, where supported, this process pinned to one CPU."""
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    try:
        if affinity:
            os.sched_setaffinity(0, {min(affinity)})
        yield f"cpu {min(affinity)}" if affinity else "1 OpenCV thread"
    finally:
        cv2.setNumThreads(threads)
        if affinity:
            os.sched_setaffinity(0, affinity)


def _flight_poses(env: NavEnv, count: int) -> list[np.ndarray]:
    """Poses of expert flights (new episodes as needed) to render in the benchmark."""
    poses: list[np.ndarray] = []
    expert, episode = ExpertPolicy(), 0
    while len(poses) < count:
        for frame in rollout(env, expert, episode_seed(0, episode, "eval")):
            if frame.done or len(poses) == count:
                break
            poses.append(np.array([*env.position, env.yaw]))  # the env stands at this frame
        episode += 1
    return poses


def _timed(fn: Callable[[int], object], count: int, trials: int = 10) -> tuple[float, float]:
    """Median and best rate (calls/s) over `trials` runs of `count / trials` calls of fn(i):
    the best trial is the one least disturbed by other processes on a shared machine."""
    per_trial = max(count // trials, 1)
    rates = []
    for trial in range(trials):
        start = time.perf_counter()
        for i in range(trial * per_trial, (trial + 1) * per_trial):
            fn(i)
        rates.append(per_trial / (time.perf_counter() - start))
    return float(np.median(rates)), max(rates)


def benchmark(
    frames: int = 2000, size: tuple[int, int] = (72, 128), shift: str = "none", randomize=False
) -> dict:
    """Frames per second of the renderer alone and of whole env steps, on one core."""
    config = NavEnvConfig(
        height=size[0], width=size[1], shift=shift, time_limit=1e9, randomize=randomize
    )
    env = NavEnv(config)
    env.reset(seed=episode_seed(0, 0, "eval"))
    poses = _flight_poses(env, min(frames, 300))
    env.reset(seed=episode_seed(0, 0, "eval"))
    render, look, scene = env.renderer.render, env.look, env.scene
    hold = np.array([0.0, 0.0, 0.0, 0.3], np.float32)  # turn on the spot: nothing to hit
    with one_core() as core:
        render_fps, render_best = _timed(
            lambda i: render(poses[i % len(poses)], look, scene), frames
        )
        step_fps, step_best = _timed(lambda i: env.step(hold), frames)
    return {
        "height": size[0],
        "width": size[1],
        "shift": shift,
        "randomize": randomize,
        "frames": frames,
        "core": core,
        "render_fps": render_fps,  # median of 10 trials
        "render_fps_best": render_best,
        "step_fps": step_fps,
        "step_fps_best": step_best,
    }
