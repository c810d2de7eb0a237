"""scripts/failures.py: where failed flights end, on tiny runs."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import failures

from edgeliquid.sim import NavEnv, NavEnvConfig
from edgeliquid.sim.rollout import rollout


class Hover:
    """Never moves: every flight times out where it started."""

    def reset(self) -> None:
        pass

    def step(self, frame: np.ndarray, dt: float) -> np.ndarray:
        return np.zeros(4, np.float32)


def test_the_expert_fails_nowhere(capsys):
    counts = failures.main(["expert", "--shift", "distractors", "--episodes", "2"])
    assert counts == {"success": 2}
    assert capsys.readouterr().out.strip() == "success 2"


def test_a_hovering_policy_is_described_where_it_stopped():
    env = NavEnv(NavEnvConfig(shift="distractors", time_limit=1.0))
    *_, last = rollout(env, Hover(), seed=3)
    label, line = failures.ending(env, last.info)
    assert label in ("timeout", "timeout, near distractor")
    assert line.startswith("timeout") and f"target {last.info['distance']:4.1f} m" in line
    start = env.scene.start
    assert np.allclose(env.position[:2], start[:2])
    expected = failures.nearest(env.scene.distractors, env.position)
    assert f"distractor {expected:4.1f} m" in line and expected < np.inf
