"""The privileged expert: flies to the target knowing where it and the trees are.

It turns toward the target, approaches along a braking profile (cruise, then decelerate at
`braking` m/s² to stop `stop_distance` from the target centre), holds the target's height,
slides around trees in its way and limits how fast each command changes, so its commands look
like a pilot's: smooth, bounded, and zero when it has arrived. The commands are body FRD
(forward, right, down m/s, yaw_rate rad/s), what a camera policy must learn to output.
Every task (`sim.tasks`) flies to the current target this way, except `follow`: there it
heads for the point `follow_distance` behind the walking target (swinging round it when the
target turns toward the drone), adds the target's velocity and keeps facing it.
`ExpertPolicy` is the expert as a `sim.rollout` policy (privileged: it reads the env).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edgeliquid.sim.env import COMMAND_LIMITS, NavEnv, Privileged
from edgeliquid.sim.scene import DRONE_RADIUS

FOLLOW_SWING = 0.6  # rad: how far round a walking target the follow goal moves at a time
_FAN = np.linspace(-math.pi / 2, math.pi / 2, 37)  # candidate headings around the target's


@dataclass(frozen=True)
class ExpertConfig:
    """Gains and limits of the expert controller."""

    cruise_speed: float = 2.5  # m/s, below the 3 m/s forward limit
    braking: float = 0.8  # m/s², deceleration of the approach profile
    stop_distance: float = 1.5  # m from the target centre (success needs < 2 m)
    approach_gain: float = 1.0  # 1/s: final approach speed per metre still to go
    yaw_gain: float = 1.5  # 1/s: yaw rate per radian of bearing
    climb_gain: float = 0.8  # 1/s: vertical speed per metre of height error
    clearance: float = 1.0  # m kept between the drone and a canopy when passing a tree
    lookahead: float = 10.0  # m: trees farther along a heading do not count
    accel_limit: float = 1.5  # m/s² on the commanded velocities
    yaw_accel_limit: float = 2.0  # rad/s² on the commanded yaw rate
    follow_distance: float = 3.5  # m kept from a walking target: the middle of follow's band

    def __post_init__(self) -> None:
        names = ("cruise_speed", "braking", "stop_distance", "approach_gain", "yaw_gain")
        for name in (*names, "follow_distance"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not self.stop_distance < 2.0:
            raise ValueError(
                f"stop_distance must be < 2 m (success radius), got {self.stop_distance}"
            )


class Expert:
    """`reset()` per episode, then `act(env or env.privileged())` -> float32 command[4]."""

    def __init__(self, config: ExpertConfig | None = None) -> None:
        self.config = config or ExpertConfig()
        self._limits = np.array(COMMAND_LIMITS)
        self._rate = np.array([self.config.accel_limit] * 3 + [self.config.yaw_accel_limit])
        self.reset()

    def reset(self) -> None:
        self._previous = np.zeros(4)
        self._heading: float | None = None  # detour heading last chosen, if any

    def act(self, source: NavEnv | Privileged) -> np.ndarray:
        view = source.privileged() if isinstance(source, NavEnv) else source
        raw = np.clip(self._command(view), -self._limits, self._limits)
        step = self._rate * view.dt
        self._previous = self._previous + np.clip(raw - self._previous, -step, step)
        return self._previous.astype(np.float32)

    def _command(self, view: Privileged) -> np.ndarray:
        cfg = self.config
        position, yaw = view.state[:3], float(view.state[3])
        offset = view.target - position
        horizontal = math.hypot(offset[0], offset[1])
        bearing = math.remainder(math.atan2(offset[1], offset[0]) - yaw, 2 * math.pi)
        follow = view.task == "follow"
        if follow:  # to the point behind the walking target, moving with it
            goal = self._follow_goal(view) - position[:2]
            to_go = math.hypot(goal[0], goal[1])
            speed, direction = self._approach_speed(to_go), goal / max(to_go, 1e-6)
        else:
            speed = self._approach_speed(horizontal - cfg.stop_distance)
            direction = offset[:2] / max(horizontal, 1e-6)
        speed *= max(math.cos(bearing), 0.0) ** 2  # face the target before flying at it
        if speed > 0:
            direction, free = self._steer(view.trees, position, direction, horizontal)
            speed = min(speed, math.sqrt(2 * cfg.braking * max(free - 0.3, 0.0)) + 0.2)
        velocity = speed * direction
        if follow:
            velocity = velocity + view.target_velocity[:2]
        norm = float(np.linalg.norm(velocity))
        if norm > cfg.cruise_speed:
            velocity *= cfg.cruise_speed / norm
        c, s = math.cos(yaw), math.sin(yaw)
        forward = velocity[0] * c + velocity[1] * s
        right = velocity[1] * c - velocity[0] * s
        down = cfg.climb_gain * float(offset[2])
        return np.array([forward, right, down, cfg.yaw_gain * bearing])

    def _follow_goal(self, view: Privileged) -> np.ndarray:
        """Where to be now (x, y): `follow_distance` from the target, on the way round it
        to the point behind it (at most `FOLLOW_SWING` rad of the circle at a time, so the
        drone circles a target that turns toward it instead of flying through it)."""
        target, velocity = view.target[:2], view.target_velocity[:2]
        away = view.state[:2] - target
        now = math.atan2(away[1], away[0])
        if float(np.hypot(*velocity)) < 0.05:
            angle = now
        else:
            behind = math.atan2(-velocity[1], -velocity[0])
            swing = math.remainder(behind - now, 2 * math.pi)
            angle = now + float(np.clip(swing, -FOLLOW_SWING, FOLLOW_SWING))
        return target + self.config.follow_distance * np.array([math.cos(angle), math.sin(angle)])

    def _approach_speed(self, to_go: float) -> float:
        """Cruise, then brake to stop at the stop distance; back off if too close."""
        cfg = self.config
        if to_go <= 0:
            return max(cfg.approach_gain * to_go, -0.5)
        braking = math.sqrt(2 * cfg.braking * to_go)
        return min(cfg.cruise_speed, braking, cfg.approach_gain * to_go)

    def _steer(
        self, trees: np.ndarray, position: np.ndarray, direction: np.ndarray, reach: float
    ) -> tuple[np.ndarray, float]:
        """Travel direction and free distance along it: of a fan of headings, the one that
        runs farthest clear of canopies grown by `clearance` (up to the look-ahead) times how
        much it points at the target, plus a bonus for last time's heading (no dithering)."""
        cfg = self.config
        reach = min(reach, cfg.lookahead)
        offset = trees[:, :2] - position[:2]
        distance = np.hypot(offset[:, 0], offset[:, 1])
        radius = np.minimum(trees[:, 3] + DRONE_RADIUS + cfg.clearance, distance - 0.05)
        near = distance - radius < reach
        if not near.any():
            self._heading = None
            return direction, reach
        offset, radius = offset[near], radius[near]
        headings = math.atan2(direction[1], direction[0]) + _FAN
        rays = np.stack([np.cos(headings), np.sin(headings)], axis=1)
        along = rays @ offset.T
        across = np.abs(rays[:, :1] * offset[:, 1] - rays[:, 1:] * offset[:, 0])
        depth = np.sqrt(np.maximum(radius**2 - across**2, 0.0))
        hit = np.where((along > 0) & (across < radius), along - depth, np.inf)
        free = np.minimum(hit.min(axis=1), reach)
        score = free / reach * np.cos(_FAN)
        if self._heading is not None:
            score += 0.15 * np.cos(headings - self._heading)
        k = int(np.argmax(score))
        self._heading = float(headings[k]) if k != len(_FAN) // 2 else None
        return rays[k], float(free[k])


class ExpertPolicy:
    """The expert as a rollout policy: privileged, so `act(env)` instead of `step(frame, dt)`."""

    input_size = None  # flies at any frame size
    privileged = True

    def __init__(self, config: ExpertConfig | None = None) -> None:
        self.expert = Expert(config)

    def reset(self) -> None:
        self.expert.reset()

    def act(self, env: NavEnv | Privileged) -> np.ndarray:
        return self.expert.act(env)
