"""Where a policy's failed flights ended: the evidence behind docs/robustness.md, round 4.

    .venv/bin/python scripts/failures.py MODEL --shift glare [--episodes 50] [--seed 777]

Flies MODEL (`expert`, `.pt` or `.onnx`) on the shift with `evaluate`'s one rollout and, per
failed flight, prints where it ended: the outcome, the time, the distance to the target, the
nearest distractor and tree canopy, the altitude, and the sun's and the target's bearing from
the heading (deg). Then a count of the outcomes, with `near distractor` (ended within 3 m of
one) and `into target` (a collision within 1 m of the target's centre) split out. Use the
selection seed (777), never a reported one, when the answer will shape a recipe.
"""

from __future__ import annotations

import argparse
import collections
import math

import numpy as np

from edgeliquid.evaluate import load_policy
from edgeliquid.sim import NavEnv, NavEnvConfig
from edgeliquid.sim.env import episode_seed
from edgeliquid.sim.rollout import rollout


def bearing(env: NavEnv, azimuth: float) -> float:
    """`azimuth` (rad, world) relative to the drone's heading, in degrees."""
    return math.degrees(math.remainder(azimuth - env.yaw, 2 * math.pi))


def nearest(points: np.ndarray, position: np.ndarray, radius: np.ndarray | float = 0.0) -> float:
    """Horizontal distance (m) from `position` to the nearest edge of `points` (inf if none)."""
    if len(points) == 0:
        return math.inf
    return float(np.min(np.hypot(*(points[:, :2] - position[:2]).T) - radius))


def ending(env: NavEnv, info: dict) -> tuple[str, str]:
    """The outcome's label for the count and one line describing where the flight ended."""
    scene, pos = env.scene, env.position
    to_distractor = nearest(scene.distractors, pos)
    to_tree = nearest(scene.trees, pos, scene.trees[:, 3])
    target = scene.target
    target_bearing = bearing(env, math.atan2(target[1] - pos[1], target[0] - pos[0]))
    label = info["outcome"]
    if to_distractor < 3.0:
        label += ", near distractor"
    elif label == "collision" and info["distance"] < 1.0:
        label += ", into target"
    line = (
        f"{info['outcome']:<13} t {info['time']:4.1f} s  target {info['distance']:4.1f} m  "
        f"distractor {to_distractor:4.1f} m  canopy {to_tree:4.1f} m  alt {-pos[2]:3.1f} m  "
        f"sun {bearing(env, scene.sun[0]):+4.0f}°  target {target_bearing:+4.0f}°"
    )
    return label, line


def main(argv: list[str] | None = None) -> collections.Counter:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("--shift", default="none")
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--seed", type=int, default=777, help="eval seed (777: selection)")
    a = p.parse_args(argv)
    policy = load_policy(a.model)
    env = NavEnv(NavEnvConfig(shift=a.shift))
    counts: collections.Counter = collections.Counter()
    for i in range(a.episodes):
        *_, last = rollout(env, policy, episode_seed(a.seed, i, "eval"))
        label, line = ending(env, last.info)
        counts[label] += 1
        if last.info["outcome"] != "success":
            print(f"episode {i:3d}: {line}")
    print(", ".join(f"{k} {v}" for k, v in counts.most_common()))
    return counts


if __name__ == "__main__":
    main()
