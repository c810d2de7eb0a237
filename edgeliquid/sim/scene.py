"""Procedural scene geometry: start pose, target, trees, distractors, lens occluders, sun.

World frame NED: x north, y east, z down (the ground is z = 0, altitude = -z); yaw is the
heading from north, positive clockwise seen from above. The geometry depends on the scene seed
only; what a shift adds (distractors, occluders, sun) comes from a separate stream, so each
shift flies the same trees, target and start as `none`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from edgeliquid.sim.shifts import Shift

TARGET_RADIUS = 0.7  # m: a ~4 px wide disc at 25 m with a 128 px, 90° camera
DRONE_RADIUS = 0.25  # m, for collisions
TREE_FIELDS = ("x", "y", "trunk_r", "canopy_r", "canopy_base", "top", "kind", "shade")
# training-only look-alikes (sim.decoys); kind BOX: size = width, height = top; kind
# POLE_SPHERE: size = radius, height = centre; kind DOME (half a ball on the ground): size =
# radius = height (m); colour RGB 0..255
DECOY_FIELDS = ("x", "y", "kind", "size", "height", "r", "g", "b")
BOX, POLE_SPHERE, DOME = 0, 1, 2


@dataclass(frozen=True)
class SceneConfig:
    """Where things go; defaults give ~25 trees in view and a clear line to the target."""

    arena_radius: float = 40.0  # m from the start; beyond it the episode ends out of bounds
    tree_radius: float = 60.0  # m: trees fill the arena and the background beyond it
    trees: int = 110  # candidates; those too close to the start, target or sight line go
    min_target_distance: float = 6.0  # m, horizontal
    max_target_distance: float = 25.0
    max_target_bearing_deg: float = 30.0  # target starts this close to the view centre

    def __post_init__(self) -> None:
        if not 0 < self.min_target_distance < self.max_target_distance < self.arena_radius:
            raise ValueError(
                "need 0 < min_target_distance < max_target_distance < arena_radius, got "
                f"{self.min_target_distance}, {self.max_target_distance}, {self.arena_radius}"
            )
        if self.trees < 0 or not 0 <= self.max_target_bearing_deg <= 40:
            raise ValueError("trees must be >= 0 and max_target_bearing_deg in [0, 40]")


@dataclass
class Scene:
    """Everything placed in one episode (arrays are float64, one row per object)."""

    start: np.ndarray  # (x, y, z, yaw)
    target: np.ndarray  # centre (x, y, z) of the (current: sim.tasks) target sphere
    trees: np.ndarray  # [N, 8] in TREE_FIELDS order; kind 0 broadleaf, 1 conifer
    distractors: np.ndarray  # [M, 5]: x, y, size, kind (0 cone, 1 ball), hue (0..1)
    occluders: np.ndarray  # [K, 5] in image fractions: cx, cy, ax, ay, angle_deg
    sun: tuple[float, float]  # azimuth (rad, world) and elevation (rad)
    texture_seed: int  # ground texture and sky panorama of this scene
    # [K, 8] in DECOY_FIELDS order; none unless collect --decoys
    decoys: np.ndarray = field(default_factory=lambda: np.zeros((0, len(DECOY_FIELDS))))


def generate_scene(seed: int, shift: Shift, config: SceneConfig | None = None) -> Scene:
    """A scene for `seed`; geometry is independent of `shift`."""
    config = config or SceneConfig()
    geometry_seq, shift_seq = np.random.SeedSequence(seed).spawn(2)
    rng = np.random.default_rng(geometry_seq)
    start = np.array([0.0, 0.0, -rng.uniform(2.0, 3.5), rng.uniform(-math.pi, math.pi)])
    target = _place_target(rng, start, config)
    trees = _place_trees(rng, start, target, config)
    texture_seed = int(rng.integers(2**31))
    extra = np.random.default_rng(shift_seq)
    sun = (start[3] + extra.uniform(-0.5, 0.5), extra.uniform(0.06, 0.2))
    return Scene(
        start=start,
        target=target,
        trees=trees,
        distractors=_place_distractors(extra, start, target, shift.distractors),
        occluders=place_occluders(extra, shift.occluders),
        sun=sun,
        texture_seed=texture_seed,
    )


def _place_target(rng: np.random.Generator, start: np.ndarray, config: SceneConfig) -> np.ndarray:
    distance = rng.uniform(config.min_target_distance, config.max_target_distance)
    max_bearing = math.radians(config.max_target_bearing_deg)
    heading = start[3] + rng.uniform(-max_bearing, max_bearing)
    height = rng.uniform(1.2, 3.0)  # centre of the sphere above the ground (on a pole)
    return np.array(
        [start[0] + distance * math.cos(heading), start[1] + distance * math.sin(heading), -height]
    )


def _place_trees(
    rng: np.random.Generator, start: np.ndarray, target: np.ndarray, config: SceneConfig
) -> np.ndarray:
    n = config.trees
    radius = config.tree_radius * np.sqrt(rng.uniform(0, 1, n))
    angle = rng.uniform(-math.pi, math.pi, n)
    x, y = start[0] + radius * np.cos(angle), start[1] + radius * np.sin(angle)
    canopy_r = rng.uniform(0.8, 1.8, n)
    canopy_base = rng.uniform(1.6, 3.0, n)
    kind = (rng.uniform(0, 1, n) < 0.35).astype(float)
    top = canopy_base + canopy_r * np.where(kind == 1, 3.2, 2.1)
    trunk_r = rng.uniform(0.12, 0.3, n)
    shade = rng.uniform(0, 1, n)
    trees = np.stack([x, y, trunk_r, canopy_r, canopy_base, top, kind, shade], axis=1)
    clear = canopy_r + DRONE_RADIUS
    keep = (np.hypot(x - start[0], y - start[1]) > clear + 2.5) & (
        np.hypot(x - target[0], y - target[1]) > clear + 3.0
    )
    keep &= _segment_distance(x, y, start[:2], target[:2]) > clear + 0.4
    return trees[keep]


def _segment_distance(x: np.ndarray, y: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Horizontal distance from points (x, y) to the segment a-b."""
    ab = b - a
    t = np.clip(((x - a[0]) * ab[0] + (y - a[1]) * ab[1]) / float(ab @ ab), 0.0, 1.0)
    return np.hypot(x - (a[0] + t * ab[0]), y - (a[1] + t * ab[1]))


def _place_distractors(
    rng: np.random.Generator, start: np.ndarray, target: np.ndarray, count: int
) -> np.ndarray:
    """Red-orange cones and balls on the ground, mostly in front, none on the target."""
    rows: list[list[float]] = []
    while len(rows) < count:
        x, y = place_ahead(rng, start, target)
        rows.append([x, y, rng.uniform(0.35, 0.7), float(rng.integers(2)), rng.uniform()])
    return np.array(rows, dtype=float).reshape(-1, 5)


def place_ahead(
    rng: np.random.Generator, start: np.ndarray, target: np.ndarray
) -> tuple[float, float]:
    """A ground position 4-30 m from the start within 0.8 rad of its heading, more than 3 m
    from the target (distractors and decoys)."""
    while True:
        heading = start[3] + rng.uniform(-0.8, 0.8)
        distance = rng.uniform(4.0, 30.0)
        x = start[0] + distance * math.cos(heading)
        y = start[1] + distance * math.sin(heading)
        if math.hypot(x - target[0], y - target[1]) > 3.0:
            return x, y


def place_occluders(rng: np.random.Generator, count: int) -> np.ndarray:
    """Blobs on the lens covering ~15% of a 16:9 frame in all."""
    cx = rng.uniform(0.1, 0.9, count)
    cy = rng.uniform(0.15, 0.95, count)
    ax = rng.uniform(0.05, 0.11, count)
    ay = ax * rng.uniform(0.6, 1.4, count)
    angle = rng.uniform(0, 180, count)
    return np.stack([cx, cy, ax, ay, angle], axis=1).reshape(-1, 5)


def tree_collision(trees: np.ndarray, position: np.ndarray) -> bool:
    """Whether a drone at `position` (x, y, z) touches a trunk or a canopy."""
    if len(trees) == 0:
        return False
    altitude = -position[2]
    d = np.hypot(trees[:, 0] - position[0], trees[:, 1] - position[1])
    in_trunk = d < trees[:, 2] + DRONE_RADIUS
    in_canopy = (d < trees[:, 3] + DRONE_RADIUS) & (altitude > trees[:, 4] - DRONE_RADIUS)
    return bool(np.any((in_trunk | in_canopy) & (altitude < trees[:, 5] + DRONE_RADIUS)))
