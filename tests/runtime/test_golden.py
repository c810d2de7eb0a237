"""Golden test: fixed frames through the shipped model give the stored commands, bit for bit.

`tests/golden/nav_cfc.npz` holds 16 simulator frames (72x128 RGB, the expert flying seed 3 of
eval seed 0), their dts, and the commands and final state models/nav_cfc.onnx produced from
them with its state fed back. A change to the runtime (engine, preprocessing, metadata) or to
the shipped file that moves any command by one ulp fails here. After a deliberate change to
the shipped model, regenerate with

    .venv/bin/python tests/runtime/test_golden.py --regenerate

and say in the commit why the commands moved.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden" / "nav_cfc.npz"
MODEL = REPO / "models" / "nav_cfc.onnx"
FRAMES = 16


def replay(frames: np.ndarray, dts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Commands [N,4] and the final state of the shipped model over `frames`."""
    from edgeliquid.runtime.engine import OnnxPolicy

    policy = OnnxPolicy(MODEL)
    policy.reset()
    commands = [policy.step(frame, float(dt)) for frame, dt in zip(frames, dts, strict=True)]
    return np.stack(commands), policy.state


def test_shipped_model_gives_the_stored_commands_bit_for_bit():
    golden = np.load(GOLDEN)
    commands, state = replay(golden["frames"], golden["dt"])
    assert commands.dtype == np.float32
    np.testing.assert_array_equal(commands, golden["commands"])
    np.testing.assert_array_equal(state, golden["state"])
    assert np.abs(commands).max() > 0.1  # the model flies: not a field of holds


def _regenerate() -> None:
    from edgeliquid.sim.env import NavEnv, NavEnvConfig, episode_seed
    from edgeliquid.sim.expert import Expert

    env, expert = NavEnv(NavEnvConfig(height=72, width=128)), Expert()
    obs, info = env.reset(seed=episode_seed(0, 3, "eval"))
    frames, dts = [], []
    while len(frames) < FRAMES:
        frames.append(obs)
        dts.append(info["dt"])
        obs, _, _, _, info = env.step(expert.act(env))
    frames_arr, dts_arr = np.stack(frames), np.asarray(dts, np.float32)
    commands, state = replay(frames_arr, dts_arr)
    GOLDEN.parent.mkdir(exist_ok=True)
    np.savez_compressed(GOLDEN, frames=frames_arr, dt=dts_arr, commands=commands, state=state)
    print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size} bytes)")


if __name__ == "__main__" and "--regenerate" in sys.argv:
    _regenerate()
