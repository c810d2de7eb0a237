"""Where a policy's failed flights ended: the evidence behind docs/robustness.md, round 4.

    .venv/bin/python scripts/failures.py MODEL --shift glare [--episodes 50] [--seed 777]

Flies MODEL (`expert`, `.pt` or `.onnx`) on the shift with `evaluate`'s one rollout and, per
failed flight, prints where it ended: the outcome, the time, the distance to the target, the
nearest distractor and tree canopy, the altitude, and the sun's and the target's bearing from
the heading (deg). Then a count of the outcomes, with `near distractor` (ended within 3 m of
one) and `into target` (a collision within 1 m of the target's centre) split out. Use the
selection seed (777), never a reported one, when the answer will shape a recipe.

`--sheet N OUT.png` also draws the last 12 frames (every other one) of episode N as the policy
saw them, each with the policy's command (white) and the expert's for the same state (yellow):
forward, right, down (m/s), yaw rate (rad/s). An existing OUT is refused.
"""

from __future__ import annotations

import argparse
import collections
import math
from pathlib import Path

import numpy as np

from edgeliquid.evaluate import load_policy
from edgeliquid.sim import NavEnv, NavEnvConfig
from edgeliquid.sim.env import episode_seed
from edgeliquid.sim.expert import ExpertPolicy
from edgeliquid.sim.preview import save_rgb, stamp
from edgeliquid.sim.rollout import rollout

SHEET_FRAMES, SHEET_COLUMNS, SCALE = 12, 4, 2
WHITE, YELLOW = (255, 255, 255), (255, 255, 0)


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


def _tile(obs: np.ndarray, info: dict, command: np.ndarray, expert: np.ndarray) -> np.ndarray:
    """One frame, magnified, with the time, the distance and the two commands on it."""
    head = f"t {info['time']:.1f} s  target {info['distance']:.1f} m"
    lines = [
        (f"{name} " + " ".join(f"{v:+.1f}" for v in values), rgb)
        for name, values, rgb in (("policy", command, WHITE), ("expert", expert, YELLOW))
    ]
    return stamp(obs, SCALE, head, *lines)


def sheet(env: NavEnv, policy: object, seed: int, out: Path) -> None:
    """Fly one episode and write its last frames (policy vs expert commands) as a PNG."""
    expert, tiles = ExpertPolicy(), []
    for frame in rollout(env, policy, seed):
        tiles.append((frame.obs, frame.info, frame.command, expert.act(env)))
    last = [_tile(*t) for t in tiles[-2 * SHEET_FRAMES :: 2]]
    last += [np.zeros_like(last[0])] * (-len(last) % SHEET_COLUMNS)
    rows = [np.hstack(last[i : i + SHEET_COLUMNS]) for i in range(0, len(last), SHEET_COLUMNS)]
    save_rgb(out, np.vstack(rows))


def main(argv: list[str] | None = None) -> collections.Counter:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("--shift", default="none")
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--seed", type=int, default=777, help="eval seed (777: selection)")
    p.add_argument("--sheet", nargs=2, metavar=("EPISODE", "OUT"), help="frames of a flight")
    a = p.parse_args(argv)
    if a.sheet and not a.sheet[0].isdigit():
        p.error(f"--sheet EPISODE must be an episode index (0, 1, ...), got {a.sheet[0]!r}")
    if a.sheet and Path(a.sheet[1]).exists():
        p.error(f"{a.sheet[1]} exists: choose a new file for the sheet")
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
    if a.sheet:
        sheet(env, policy, episode_seed(a.seed, int(a.sheet[0]), "eval"), Path(a.sheet[1]))
        print(f"wrote {a.sheet[1]}")
    return counts


if __name__ == "__main__":
    main()
