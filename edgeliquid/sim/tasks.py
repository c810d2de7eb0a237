"""The drone paper's task suite on one NavEnv: where the targets go, how they move, what counts.

A task decides three things: how the scene's target(s) are placed (a `SceneConfig` for the
scene generator, then its own placement from its own random stream), how the target moves or
changes per step (`advance`, after the drone has flown the step), and the success rule
(`arrived`: the episode may end on it; `at_time_limit`: the outcome when time runs out).
`scene.target` is always the *current* target: the renderer draws it, collisions and
`info["distance"]` use it. numpy only.

- reach: a still target 6-25 m away, in view (training's task); success: within 2 m of it,
  slower than 0.5 m/s, facing it (within 30°).
- range: as reach with the target 25-60 m away (1.5-4 px wide at 128 px), in 1.5x the time.
- follow: the target walks a smooth random path at 0.3-1.2 m/s; success: 2-5 m behind it and
  facing it for >= 80% of the 30 s episode (judged when time runs out).
- chain: 3 targets in turn, only the current one there (a reached one disappears); success:
  each reached as in reach, in order, in 1.5x the time.
- reacquire: as reach, but the camera goes black for 1-2 s mid-flight; success: reached after.

Every draw of a task comes from `np.random.default_rng([episode_seed, 3])`, never from the
scene's stream, so `reach` flies exactly the scenes (and frames) it flew before tasks existed.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from typing import ClassVar, Protocol

import numpy as np

from edgeliquid.sim.scene import DRONE_RADIUS, Scene, SceneConfig

TASK_STREAM = 3  # np.random.default_rng([episode_seed, TASK_STREAM]): the tasks' own draws
FOLLOW_BAND = (2.0, 5.0)  # m from the walking target
FOLLOW_SHARE = 0.8  # of the episode spent in the band
MAX_TURN = 0.5  # rad/s: the walking target's sharpest turn (a 0.6-2.4 m radius)
FACING_DEG = 30.0  # the band and every arrival need the target this close to the heading


class Flight(Protocol):
    """What a task reads of the drone (NavEnv provides it)."""

    time: float  # s since reset
    dt: float  # s, the step just flown
    position: np.ndarray  # x, y, z (NED)

    def at_target(self) -> bool: ...  # near, slow and facing the current target
    def target_distance(self) -> float: ...  # m to the current target's centre
    def target_bearing(self) -> float: ...  # rad, positive = target to the right


class Task:
    """reach: fly to the still target in view and stop there (the base every task extends)."""

    name: ClassVar[str] = "reach"
    tests: ClassVar[str] = "flying to a visible target and stopping (the training task)"
    rule: ClassVar[str] = "within 2 m, below 0.5 m/s, target within 30° of the heading"
    time_factor: ClassVar[float] = 1.0  # x NavEnvConfig.time_limit

    @staticmethod
    def scene_config(base: SceneConfig) -> SceneConfig:
        """Where the scene generator puts the (first) target, and the arena around it."""
        return base

    def __init__(self, scene: Scene, rng: np.random.Generator, time_limit: float) -> None:
        self.scene, self.time_limit = scene, time_limit
        self.events: list[tuple[float, str]] = []  # (time, what happened): for the sheets

    @property
    def target_velocity(self) -> np.ndarray:
        """The current target's velocity, m/s (world NED)."""
        return np.zeros(3)

    def hidden(self, time: float) -> bool:
        """Whether the camera shows nothing at `time` (a blackout)."""
        return False

    def advance(self, flight: Flight) -> bool:
        """After each flown step: move or switch the target, keep score; True when the
        current target was just replaced by the next one."""
        return False

    def arrived(self, flight: Flight) -> bool:
        """The task is done now: the episode ends here (when it ends on success)."""
        return flight.at_target()

    def at_time_limit(self, flight: Flight) -> str:
        """The outcome when time runs out without `arrived`."""
        return "timeout"


class Range(Task):
    """range: a still target farther than training ever put one."""

    name = "range"
    tests = "targets beyond the training range (25-60 m, a few pixels wide)"
    rule = "as reach, within 45 s (1.5x)"
    time_factor = 1.5  # 60 m at 2.5 m/s is 24 s of cruise, plus the turn, start and stop

    @staticmethod
    def scene_config(base: SceneConfig) -> SceneConfig:
        # the arena and the forest grow with the target, trees at the same density
        return replace(
            base,
            min_target_distance=25.0,
            max_target_distance=60.0,
            arena_radius=max(base.arena_radius, 75.0),
            tree_radius=max(base.tree_radius, 85.0),
            trees=round(base.trees * (max(base.tree_radius, 85.0) / base.tree_radius) ** 2),
        )


class Follow(Task):
    """follow: keep 2-5 m behind a target that walks a smooth random path, facing it."""

    name = "follow"
    tests = "a moving target (0.3-1.2 m/s): keeping distance and heading over time"
    rule = "2-5 m behind it, facing it, for >= 80% of the 30 s episode (no early end)"
    H = 0.05  # s between points of the precomputed path
    CORRIDOR = 2.0  # m kept free of canopies on each side of the path

    @staticmethod
    def scene_config(base: SceneConfig) -> SceneConfig:
        return replace(base, min_target_distance=3.0, max_target_distance=4.5)

    def __init__(self, scene: Scene, rng: np.random.Generator, time_limit: float) -> None:
        super().__init__(scene, rng, time_limit)
        self.path = _walk(scene, rng, time_limit + 1.0, self.H)
        scene.trees = clear_trees(scene.trees, self.path[::10, :2], self.CORRIDOR)
        self.in_band_s = 0.0
        self._velocity = np.zeros(3)

    @property
    def target_velocity(self) -> np.ndarray:
        return self._velocity

    def advance(self, flight: Flight) -> bool:
        k = min(flight.time / self.H, len(self.path) - 2)
        i, f = int(k), k - int(k)
        self.scene.target = self.path[i] + f * (self.path[i + 1] - self.path[i])
        self._velocity = (self.path[i + 1] - self.path[i]) / self.H
        self.in_band_s += flight.dt * self.in_band(flight)
        return False

    def in_band(self, flight: Flight) -> bool:
        """2-5 m from the target, facing it, and not in front of it (it does not come at us)."""
        low, high = FOLLOW_BAND
        offset = self.scene.target[:2] - flight.position[:2]
        behind = float(offset @ self._velocity[:2]) >= 0.0
        facing = abs(flight.target_bearing()) < math.radians(FACING_DEG)
        return low <= flight.target_distance() <= high and facing and behind

    def arrived(self, flight: Flight) -> bool:
        return False  # judged at the time limit only

    def at_time_limit(self, flight: Flight) -> str:
        return "success" if self.in_band_s >= FOLLOW_SHARE * flight.time else "timeout"


class Chain(Task):
    """chain: three targets in turn; the current one is there, a reached one disappears."""

    name = "chain"
    tests = "targets in sequence ('hiking'): finding the next one after each arrival"
    rule = "each of 3 reached as in reach, in order, within 45 s (1.5x)"
    time_factor = 1.5  # three flights of 6-12 m with a stop at each (the expert: 12-18 s)
    COUNT = 3
    LEG = (6.0, 12.0)  # m between targets (and to the first): all within 36 m of the start
    TURN_DEG = 35.0  # each leg turns at most this much from the one before: the next in view

    @staticmethod
    def scene_config(base: SceneConfig) -> SceneConfig:
        return replace(base, min_target_distance=Chain.LEG[0], max_target_distance=Chain.LEG[1])

    def __init__(self, scene: Scene, rng: np.random.Generator, time_limit: float) -> None:
        super().__init__(scene, rng, time_limit)
        self.targets = [scene.target.copy()]
        first = scene.target[:2] - scene.start[:2]
        heading = math.atan2(first[1], first[0])
        for _ in range(self.COUNT - 1):
            heading += math.radians(rng.uniform(-self.TURN_DEG, self.TURN_DEG))
            step = rng.uniform(*self.LEG)
            x, y = self.targets[-1][:2] + step * np.array([math.cos(heading), math.sin(heading)])
            self.targets.append(np.array([x, y, -rng.uniform(1.2, 3.0)]))
        points = _polyline(np.array([t[:2] for t in self.targets]), 0.5)
        scene.trees = clear_trees(scene.trees, points, 1.5)
        self.reached = 0  # targets reached so far (the final one ends the episode instead)

    def advance(self, flight: Flight) -> bool:
        if self.reached == self.COUNT - 1 or not flight.at_target():
            return False
        self.reached += 1
        self.scene.target = self.targets[self.reached].copy()
        self.events.append((flight.time, f"reached {self.reached}"))
        return True

    def arrived(self, flight: Flight) -> bool:
        return self.reached == self.COUNT - 1 and flight.at_target()


class Reacquire(Task):
    """reacquire: the camera goes black for 1-2 s mid-flight; the drone keeps flying."""

    name = "reacquire"
    tests = "losing the target for 1-2 s mid-flight (camera blackout) and finding it again"
    rule = "as reach, after the blackout"
    HIDE_START = (1.5, 3.0)  # s after the start
    HIDE_LENGTH = (1.0, 2.0)  # s

    @staticmethod
    def scene_config(base: SceneConfig) -> SceneConfig:
        # 14 m or more: the drone is still on its way when the blackout ends (>= 6 s)
        return replace(base, min_target_distance=max(base.min_target_distance, 14.0))

    def __init__(self, scene: Scene, rng: np.random.Generator, time_limit: float) -> None:
        super().__init__(scene, rng, time_limit)
        self.hide_start = rng.uniform(*self.HIDE_START)
        self.hide_end = self.hide_start + rng.uniform(*self.HIDE_LENGTH)
        self.events = [(self.hide_start, "blackout"), (self.hide_end, "back")]

    def hidden(self, time: float) -> bool:
        return self.hide_start <= time < self.hide_end

    def arrived(self, flight: Flight) -> bool:
        return flight.time >= self.hide_end and flight.at_target()


TASKS: dict[str, type[Task]] = {t.name: t for t in (Task, Range, Follow, Chain, Reacquire)}


def check_task(name: str) -> type[Task]:
    """The task class called `name`; a ValueError naming the valid tasks otherwise."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose from {', '.join(TASKS)}")
    return TASKS[name]


def task_names(text: str) -> list[str]:
    """`all` → every task; otherwise one name or several joined by ',' (each checked)."""
    names = list(TASKS) if text == "all" else [t.strip() for t in text.split(",") if t.strip()]
    for name in names or [text]:
        check_task(name)
    return names


def clear_trees(trees: np.ndarray, points: np.ndarray, margin: float) -> np.ndarray:
    """The trees whose canopy stays `margin` m (plus the drone's radius) from every point
    (x, y): a free corridor along a path sampled at least every metre or so."""
    if len(trees) == 0 or len(points) == 0:
        return trees
    d = np.hypot(trees[:, None, 0] - points[None, :, 0], trees[:, None, 1] - points[None, :, 1])
    return trees[d.min(axis=1) > trees[:, 3] + DRONE_RADIUS + margin]


def _polyline(corners: np.ndarray, spacing: float) -> np.ndarray:
    """Points every `spacing` m or closer along the segments between `corners` (x, y)."""
    parts = []
    for a, b in itertools.pairwise(corners):
        n = max(2, math.ceil(float(np.hypot(*(b - a))) / spacing) + 1)
        parts.append(a + np.linspace(0.0, 1.0, n)[:, None] * (b - a))
    return np.concatenate(parts)


def _walk(scene: Scene, rng: np.random.Generator, duration: float, h: float) -> np.ndarray:
    """The walking target's centre every `h` s: speed 0.3-1.2 m/s (reached over the first
    2 s), heading away from the drone, turning at a smooth random rate (Ornstein-Uhlenbeck,
    std 0.25 rad/s, 2 s correlation, at most 0.5 rad/s) and back toward the start beyond 20 m
    from it."""
    speed = rng.uniform(0.3, 1.2)
    away = scene.target[:2] - scene.start[:2]
    heading = math.atan2(away[1], away[0]) + rng.uniform(-0.3, 0.3)
    keep = math.exp(-h / 2.0)
    shocks = rng.standard_normal(math.ceil(duration / h) + 1) * 0.25 * math.sqrt(1 - keep * keep)
    turn, xy = 0.0, scene.target[:2].copy()
    points = [xy.copy()]
    for i, shock in enumerate(shocks[1:], start=1):
        turn = float(np.clip(keep * turn + shock, -MAX_TURN, MAX_TURN))
        offset = xy - scene.start[:2]
        if np.hypot(*offset) > 20.0:  # turn back toward the start, at most 0.4 rad/s
            home = math.atan2(-offset[1], -offset[0])
            turn = float(np.clip(math.remainder(home - heading, 2 * math.pi), -0.4, 0.4))
        heading += turn * h
        pace = speed * min(i * h / 2.0, 1.0) * h
        xy = xy + pace * np.array([math.cos(heading), math.sin(heading)])
        points.append(xy.copy())
    path = np.array(points)
    return np.column_stack([path, np.full(len(path), scene.target[2])])
