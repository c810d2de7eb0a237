"""NavEnv: fly a camera drone to a red-orange target (gymnasium), after the MIT drone experiments.

`NavEnvConfig.task` picks one of the drone paper's tasks (`sim.tasks`: reach, range, follow,
chain, reacquire): where the targets are, how they move, what success is; `reach` is the default.

World frame NED (x north, y east, z down; altitude = -z), yaw from north, positive clockwise
seen from above. The drone is kinematic: each velocity and the yaw rate follow their command
with a first-order lag. One `step` is one control period: the action is held for `dt` seconds,
then the camera takes the next frame. `info["dt"]` is the time between the previous frame and
this one, which is what a policy should be given with this frame.

Action (float32, body FRD, clipped to COMMAND_LIMITS): forward m/s, right m/s, down m/s,
yaw_rate rad/s. Non-finite values are treated as 0 (hold). `info["state"]` is float32 in
STATE_FIELDS order, velocities in the world frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from edgeliquid.contract import COMMAND_LIMITS, NOMINAL_DT
from edgeliquid.sim.decoys import decoy_mix, draw_decoys
from edgeliquid.sim.look import build_look
from edgeliquid.sim.randomize import GLARE_AHEAD, RANDOMIZATION, draw_appearance
from edgeliquid.sim.render import Renderer
from edgeliquid.sim.scene import (
    DRONE_RADIUS,
    TARGET_RADIUS,
    SceneConfig,
    generate_scene,
    tree_collision,
)
from edgeliquid.sim.shifts import SensorEffects, Timing, parse_shift
from edgeliquid.sim.tasks import FACING_DEG, TASK_STREAM, check_task

try:  # gymnasium is a dev extra: the runtime-only install (make demo, run --source sim) lacks it
    import gymnasium as gym
except ImportError:
    gym = None  # type: ignore[assignment]

STATE_FIELDS = ("x", "y", "z", "yaw", "vx", "vy", "vz", "yaw_rate")
SUBSTEP = 0.025  # s: integration and collision-check step inside one control period
CEILING = 15.0  # m of altitude: above it the episode ends out of bounds

SEED_STREAMS = {"collect": 0, "eval": 1}  # same --seed, different scenes for data and eval


def episode_seed(seed: int, index: int, stream: str = "collect") -> int:
    """The reset seed of episode `index` of a run: from (seed, index, stream) only, so results
    do not depend on how episodes are spread over workers."""
    if stream not in SEED_STREAMS:
        raise ValueError(f"stream must be one of {list(SEED_STREAMS)}, got {stream!r}")
    sequence = np.random.SeedSequence([seed, index, SEED_STREAMS[stream]])
    return int(sequence.generate_state(1, np.uint64)[0] >> 1)


@dataclass(frozen=True)
class NavEnvConfig:
    """The task and its timing; defaults are the training distribution (`none`, 10 Hz)."""

    height: int = 72  # the policy input size: the env renders at this size
    width: int = 128
    dt: float = NOMINAL_DT  # s, nominal control period (10 Hz)
    dt_jitter: float = 0.0  # training timing variation: dt in dt x [1 - j, 1 + j]
    shift: str = "none"  # a shift name or names joined by '+'
    task: str = "reach"  # one of sim.tasks.TASKS: reach, range, follow, chain, reacquire
    time_limit: float = 30.0  # s, times the task's time_factor (range, chain: 1.5)
    fov_deg: float = 90.0  # horizontal field of view
    velocity_tau: float = 0.35  # s, first-order lag of the velocities
    yaw_tau: float = 0.2  # s, first-order lag of the yaw rate
    success_distance: float = 2.0  # m to the target centre
    success_speed: float = 0.5  # m/s
    success_bearing_deg: float = FACING_DEG  # target within this angle of the heading
    # False: arriving does not end the episode (info["arrived"] says it), so demonstrations
    # can show the stop and the hover that follow; evaluation keeps True.
    end_on_success: bool = True
    # per-episode light and palettes drawn from sim.randomize.RANDOMIZATION (training data
    # only: evaluation never randomises); the scene geometry stays the same
    randomize: bool = False
    # with randomize: the sun-ahead half of the episodes gets a strong veil and bloom
    # (sim.randomize.GLARE_AHEAD, still below the glare preset); training data only
    glare_ahead: bool = False
    # training-time look-alikes of the target (sim.decoys: boxes, off-colour spheres on poles,
    # odd-coloured trees; never the distractors or autumn presets); training data only
    decoys: bool = False
    decoy_mix: str = "v2"  # with decoys: a name in sim.decoys.DECOY_MIXES
    scene: SceneConfig = field(default_factory=SceneConfig)

    def __post_init__(self) -> None:
        if not (16 <= self.height <= 1080 and 16 <= self.width <= 1920):
            raise ValueError(
                f"height/width must be in 16..1080/1920, got {self.height}x{self.width}"
            )
        if not 0 < self.dt <= 1.0:
            raise ValueError(f"dt must be in (0, 1] s, got {self.dt}")
        if not 0 <= self.dt_jitter < 1:
            raise ValueError(f"dt_jitter must be in [0, 1), got {self.dt_jitter}")
        if not 20 <= self.fov_deg <= 150:
            raise ValueError(f"fov_deg must be in [20, 150], got {self.fov_deg}")
        if self.time_limit <= 0 or self.velocity_tau <= 0 or self.yaw_tau <= 0:
            raise ValueError("time_limit, velocity_tau and yaw_tau must be > 0")
        if self.glare_ahead and not self.randomize:
            raise ValueError("glare_ahead changes the randomised light: it needs randomize")
        decoy_mix(self.decoy_mix)  # ValueError naming the valid mixes
        if self.decoy_mix != "v2" and not self.decoys:
            raise ValueError(f"decoy_mix {self.decoy_mix!r} chooses decoys: it needs decoys")
        parse_shift(self.shift)  # ValueError naming the valid shifts
        check_task(self.task)  # ValueError naming the valid tasks


@dataclass(frozen=True)
class Box:
    """Stand-in for gymnasium.spaces.Box when gymnasium is not installed."""

    low: np.ndarray
    high: np.ndarray
    dtype: type

    @property
    def shape(self) -> tuple[int, ...]:
        return self.low.shape


def _box(low: np.ndarray, high: np.ndarray, dtype: type) -> Any:
    return gym.spaces.Box(low, high, dtype=dtype) if gym is not None else Box(low, high, dtype)


@dataclass(frozen=True)
class Privileged:
    """What the expert may know that the camera policy may not."""

    state: np.ndarray  # float64, STATE_FIELDS order
    target: np.ndarray  # the current target's centre (x, y, z)
    trees: np.ndarray  # [N, 8] in scene.TREE_FIELDS order
    dt: float  # s since the previous frame
    target_velocity: np.ndarray = field(default_factory=lambda: np.zeros(3))  # m/s (follow)
    task: str = "reach"


class NavEnv(gym.Env if gym is not None else object):  # type: ignore[misc]
    """Fly-to-target from camera frames; see the module docstring for frames and units."""

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": ["rgb_array"],
        "render_fps": round(1 / NOMINAL_DT),  # 10: the nominal control rate
    }

    def __init__(self, config: NavEnvConfig | None = None, render_mode: str | None = None) -> None:
        self.config = config or NavEnvConfig()
        self.render_mode = render_mode
        self.shift = parse_shift(self.config.shift)
        self.task_type = check_task(self.config.task)
        self.time_limit = self.config.time_limit * self.task_type.time_factor
        self.scene_config = self.task_type.scene_config(self.config.scene)
        self.timing = Timing.for_shift(self.shift, self.config.dt, self.config.dt_jitter)
        self.renderer = Renderer(self.config.height, self.config.width, self.config.fov_deg)
        size = (self.config.height, self.config.width, 3)
        self.observation_space = _box(
            np.zeros(size, np.uint8), np.full(size, 255, np.uint8), np.uint8
        )
        limits = np.array(COMMAND_LIMITS, np.float32)
        self.action_space = _box(-limits, limits, np.float32)
        self._limits = limits.astype(np.float64)
        # what a randomised episode's light and decoys are drawn from: looked up once
        self._ranges = GLARE_AHEAD if self.config.glare_ahead else RANDOMIZATION
        self._decoy_mix = decoy_mix(self.config.decoy_mix)
        self._frame: np.ndarray | None = None
        self.outcome: str | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        episode_seed = int(self._seeded(seed).integers(2**63))
        self.scene = generate_scene(episode_seed, self.shift, self.scene_config)
        task_rng = np.random.default_rng([episode_seed, TASK_STREAM])  # never the scene's
        self.task = self.task_type(self.scene, task_rng, self.time_limit)
        r = self.renderer
        heading = float(self.scene.start[3])
        self.appearance = (
            draw_appearance(episode_seed, self._ranges, heading) if self.config.randomize else None
        )
        decoys = self.config.decoys
        self.decoys = draw_decoys(episode_seed, self.scene, self._decoy_mix) if decoys else None
        if self.decoys is not None:
            self.scene = replace(self.scene, decoys=self.decoys.objects)
        odd_trees = None if self.decoys is None else self.decoys.odd_trees
        self.look = build_look(
            self.scene, self.shift, r.horizon, r.panorama_width, r.focal, self.appearance, odd_trees
        )
        size = (self.config.height, self.config.width)
        occluders = self.scene.occluders
        if self.decoys is not None and len(self.decoys.dirt):
            occluders = np.concatenate([occluders, self.decoys.dirt])
        a = self.appearance
        sun, glare = (self.scene.sun, None) if a is None else (a.sun, (a.veil, a.bloom))
        self.effects = SensorEffects(self.shift, size, r.focal, sun, occluders, glare)
        self._step_rng = np.random.default_rng([episode_seed, 1])
        self.position = self.scene.start[:3].copy()
        self.yaw = float(self.scene.start[3])
        self.velocity = np.zeros(3)
        self.yaw_rate = 0.0
        self.time, self.dt, self.outcome = 0.0, self.timing.nominal_dt, None
        self._distance = self.target_distance()
        return self._observe(), self._info()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self.outcome is not None:
            raise RuntimeError(f"episode ended ({self.outcome}); call reset()")
        command = np.nan_to_num(np.asarray(action, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        command = np.clip(command, -self._limits, self._limits)
        self.dt = self.timing.sample(self._step_rng)
        collided = self._integrate(command, self.dt)
        self.time += self.dt
        switched = self.task.advance(self)  # the target moves (follow), the next comes (chain)
        self.outcome = self._outcome(collided)
        previous, self._distance = self._distance, self.target_distance()
        reward = 10.0 if switched else previous - self._distance
        reward += {"success": 10.0, "collision": -10.0, "out_of_bounds": -10.0}.get(
            self.outcome or "", 0.0
        )
        terminated = self.outcome in ("success", "collision", "out_of_bounds")
        return self._observe(), reward, terminated, self.outcome == "timeout", self._info()

    def _seeded(self, seed: int | None) -> np.random.Generator:
        """gymnasium's seeding when it is installed, the same generator when it is not."""
        if gym is not None:
            super().reset(seed=seed)
            return self.np_random
        if seed is not None or getattr(self, "_rng", None) is None:
            self._rng = np.random.default_rng(seed)  # = gymnasium's np_random(seed)
        return self._rng

    def render(self) -> np.ndarray | None:
        return None if self._frame is None else self._frame.copy()

    def privileged(self) -> Privileged:
        """The true state, current target (and its velocity) and trees (for the expert)."""
        return Privileged(
            self._state(np.float64),
            self.scene.target,
            self.scene.trees,
            self.dt,
            self.task.target_velocity.copy(),
            self.config.task,
        )

    @property
    def speed(self) -> float:
        return float(np.linalg.norm(self.velocity))

    def _integrate(self, command: np.ndarray, dt: float) -> bool:
        """Hold `command` for `dt` s in substeps; True if the drone hit something."""
        n = max(1, math.ceil(dt / SUBSTEP - 1e-9))
        h = dt / n
        keep_v = math.exp(-h / self.config.velocity_tau)
        keep_r = math.exp(-h / self.config.yaw_tau)
        for _ in range(n):
            self.yaw_rate = command[3] + (self.yaw_rate - command[3]) * keep_r
            self.yaw = math.remainder(self.yaw + self.yaw_rate * h, 2 * math.pi)
            c, s = math.cos(self.yaw), math.sin(self.yaw)
            goal = np.array(
                [command[0] * c - command[1] * s, command[0] * s + command[1] * c, command[2]]
            )
            self.velocity = goal + (self.velocity - goal) * keep_v
            self.position = self.position + self.velocity * h
            if self._collides():
                return True
        return False

    def _collides(self) -> bool:
        if -self.position[2] < DRONE_RADIUS:
            return True
        if self.target_distance() < TARGET_RADIUS + DRONE_RADIUS:
            return True
        return tree_collision(self.scene.trees, self.position)

    def _outcome(self, collided: bool) -> str | None:
        cfg = self.config
        if collided:
            return "collision"
        offset = self.position[:2] - self.scene.start[:2]
        if np.hypot(*offset) > self.scene_config.arena_radius or -self.position[2] > CEILING:
            return "out_of_bounds"
        if self.arrived() and cfg.end_on_success:
            return "success"
        if self.time >= self.time_limit - 1e-9:
            return self.task.at_time_limit(self)
        return None

    def target_distance(self) -> float:
        """m from the drone to the current target's centre."""
        return float(np.linalg.norm(self.scene.target - self.position))

    def target_bearing(self) -> float:
        """Horizontal angle from the heading to the target, positive to the right."""
        dx, dy = self.scene.target[:2] - self.position[:2]
        return math.remainder(math.atan2(dy, dx) - self.yaw, 2 * math.pi)

    def _state(self, dtype: type = np.float32) -> np.ndarray:
        return np.array([*self.position, self.yaw, *self.velocity, self.yaw_rate], dtype)

    def _observe(self) -> np.ndarray:
        pose = np.array([*self.position, self.yaw])
        frame = self.renderer.render(pose, self.look, self.scene)
        self._frame = self.effects.apply(frame, self.yaw, self._step_rng)
        if self.task.hidden(self.time):  # reacquire: the camera goes black
            self._frame = np.zeros_like(self._frame)
        return self._frame

    def at_target(self) -> bool:
        """Near the current target, slow, facing it: how every task's target is reached."""
        cfg = self.config
        return (
            self.target_distance() < cfg.success_distance
            and self.speed < cfg.success_speed
            and abs(self.target_bearing()) < math.radians(cfg.success_bearing_deg)
        )

    def arrived(self) -> bool:
        """The task's success holds now (reach: `at_target`; chain: at the last target;
        reacquire: after the blackout; follow: never, it is judged at the time limit)."""
        return self.task.arrived(self)

    def _info(self) -> dict[str, Any]:
        return {
            "dt": self.dt,
            "time": self.time,
            "distance": self._distance,
            "bearing": self.target_bearing(),
            "state": self._state(),
            "outcome": self.outcome,
            "arrived": self.arrived(),
        }
