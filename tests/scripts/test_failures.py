"""scripts/failures.py: where failed flights end, on tiny runs."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

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


def test_the_sheet_shows_the_last_frames_with_both_commands(tmp_path, capsys):
    out = tmp_path / "sheet.png"
    failures.main(["expert", "--episodes", "0", "--sheet", "1", str(out)])
    image = cv2.imread(str(out))
    height, width = 72 * failures.SCALE, 128 * failures.SCALE  # NavEnvConfig's frames
    rows = failures.SHEET_FRAMES // failures.SHEET_COLUMNS
    assert image.shape == (rows * height, failures.SHEET_COLUMNS * width, 3)
    yellow = (image[..., 0] < 80) & (image[..., 1] > 200) & (image[..., 2] > 200)
    assert yellow.any()  # the expert's command is written on the tiles
    assert f"wrote {out}" in capsys.readouterr().out


def test_the_sheet_never_overwrites_and_refuses_a_bad_episode(tmp_path, capsys):
    out = tmp_path / "kept.png"
    out.write_bytes(b"mine")
    with pytest.raises(SystemExit):
        failures.main(["expert", "--episodes", "0", "--sheet", "1", str(out)])
    assert out.read_bytes() == b"mine" and "exists" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        failures.main(["expert", "--episodes", "0", "--sheet", "one", str(tmp_path / "x.png")])
    assert "episode index" in capsys.readouterr().err
