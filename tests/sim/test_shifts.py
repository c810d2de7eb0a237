"""Shifts: the registry, combinations, and that each one changes what the camera sees or when."""

import numpy as np
import pytest

from edgeliquid.sim import SHIFTS, NavEnv, NavEnvConfig, parse_shift
from edgeliquid.sim.shifts import Timing

TIMING = {"lowfps", "highfps", "jitter"}
PIXEL = sorted(set(SHIFTS) - TIMING - {"none"})


def first_frames(shift: str, seed: int = 4, steps: int = 3) -> tuple[list[np.ndarray], list[float]]:
    env = NavEnv(NavEnvConfig(shift=shift))
    obs, info = env.reset(seed=seed)
    frames, dts = [obs], [info["dt"]]
    for _ in range(steps):
        obs, _, _, _, info = env.step(np.array([1.0, 0.0, 0.0, 0.2], np.float32))
        frames.append(obs)
        dts.append(info["dt"])
    return frames, dts


def red_orange(frame: np.ndarray) -> int:
    r, g, b = (frame[..., i].astype(int) for i in range(3))
    return int(((r > 150) & (r - g > 80) & (r - b > 100)).sum())


def test_registry_has_the_design_names_and_rejects_others():
    expected = (
        "none autumn winter dusk glare noise blur occlusion distractors lowfps highfps jitter"
    )
    assert list(SHIFTS) == expected.split()
    with pytest.raises(ValueError, match=r"'summer'.*valid: none, autumn"):
        parse_shift("summer")
    with pytest.raises(ValueError, match="'fog'"):
        parse_shift("winter+fog")


def test_combinations_merge_and_conflicts_are_refused():
    shift = parse_shift("winter+noise")
    assert (shift.name, shift.season, shift.noise_std) == ("winter+noise", "winter", 14.0)
    assert parse_shift("none+blur").name == "blur"
    assert parse_shift("dusk+lowfps").dt_scale == 2.0 and parse_shift("dusk+lowfps").dusk
    with pytest.raises(ValueError, match="season"):
        parse_shift("autumn+winter")
    with pytest.raises(ValueError, match="timing"):
        parse_shift("lowfps+jitter")


@pytest.mark.parametrize("name", PIXEL)
def test_each_pixel_shift_changes_the_frames_not_the_timing(name):
    base_frames, base_dts = first_frames("none")
    frames, dts = first_frames(name)
    difference = np.abs(frames[0].astype(int) - base_frames[0].astype(int)).mean()
    assert difference > 2.0, f"{name} changes the first frame by only {difference:.2f} levels"
    assert dts == base_dts


def test_scene_geometry_is_the_same_under_every_shift():
    base = NavEnv(NavEnvConfig())
    base.reset(seed=9)
    for name in SHIFTS:
        env = NavEnv(NavEnvConfig(shift=name))
        env.reset(seed=9)
        assert np.array_equal(env.scene.trees, base.scene.trees)
        assert np.array_equal(env.scene.target, base.scene.target)


def test_distractors_add_target_coloured_pixels():
    assert (
        red_orange(first_frames("distractors")[0][0]) > red_orange(first_frames("none")[0][0]) + 5
    )


def test_noise_is_fresh_each_frame_but_seeded():
    frames, _ = first_frames("noise", steps=1)
    again, _ = first_frames("noise", steps=1)
    assert np.array_equal(frames[1], again[1])
    clean, _ = first_frames("none", steps=1)
    residual = [f.astype(int) - c.astype(int) for f, c in zip(frames, clean, strict=True)]
    assert not np.array_equal(residual[0], residual[1])


@pytest.mark.parametrize(("name", "dt"), [("lowfps", 0.2), ("highfps", 0.05)])
def test_frame_rate_shifts_change_dt_not_pixels_of_the_first_frame(name, dt):
    frames, dts = first_frames(name)
    assert dts == pytest.approx([dt] * 4)
    assert np.array_equal(frames[0], first_frames("none")[0][0])


def test_jitter_is_much_wider_than_training_dt_jitter():
    rng = np.random.default_rng(0)
    shift = Timing.for_shift(SHIFTS["jitter"], 0.1, 0.0)
    train = Timing.for_shift(SHIFTS["none"], 0.1, 0.3)
    ood = np.array([shift.sample(rng) for _ in range(2000)])
    seen = np.array([train.sample(rng) for _ in range(2000)])
    assert seen.min() >= 0.07 - 1e-9 and seen.max() <= 0.13 + 1e-9
    assert ood.min() < 0.05 and ood.max() > 0.18
    _, dts = first_frames("jitter", steps=6)
    assert dts[0] == pytest.approx(0.1) and len(set(dts[1:])) == 6
