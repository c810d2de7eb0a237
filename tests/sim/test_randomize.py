"""Domain randomisation: deterministic per seed, same scenes, and never an evaluation preset."""

import colorsys
import math
import re
from dataclasses import fields, replace

import numpy as np
import pytest

from edgeliquid.sim import SHIFTS, NavEnv, NavEnvConfig, shifts
from edgeliquid.sim.look import PALETTES, palette_for, randomized_palette
from edgeliquid.sim.randomize import (
    GLARE_AHEAD,
    LUMA,
    RANDOMIZATION,
    Randomization,
    draw_appearance,
    kelvin_gains,
)
from edgeliquid.sim.shifts import DUSK_LIGHT, GLARE_VEIL, SensorEffects

SIZE = dict(height=36, width=64)
DRAWS = 2000


def frames(randomize: bool, seed: int, steps: int = 4) -> tuple[NavEnv, list[np.ndarray]]:
    env = NavEnv(NavEnvConfig(**SIZE, randomize=randomize, dt_jitter=0.3))
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for _ in range(steps):
        obs, *_ = env.step(np.array([1.0, 0.3, 0.0, 0.6], np.float32))
        out.append(obs)
    return env, out


def luma(color) -> float:
    return float(np.array(color, float) @ LUMA)


def hue_deg(color) -> float:
    return 360.0 * colorsys.rgb_to_hsv(*(c / 255 for c in color))[0]


def saturation(color) -> float:
    return colorsys.rgb_to_hsv(*(c / 255 for c in color))[1]


def hue_gap(a: float, b: float) -> float:
    return abs((a - b + 180) % 360 - 180)


@pytest.fixture(scope="module")
def draws():
    return [draw_appearance(seed) for seed in range(DRAWS)]


def test_same_seed_same_frames_other_seeds_other_looks():
    _, a = frames(True, 11)
    _, b = frames(True, 11)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    _, plain = frames(False, 11)
    assert np.abs(a[0].astype(int) - plain[0].astype(int)).mean() > 2.0
    _, other = frames(True, 12)
    _, other_plain = frames(False, 12)
    diff_a = a[0].astype(int) - plain[0].astype(int)
    diff_o = other[0].astype(int) - other_plain[0].astype(int)
    assert np.abs(diff_a - diff_o).mean() > 2.0  # a different change, not one fixed filter
    assert draw_appearance(11) != draw_appearance(12)


def test_randomize_keeps_geometry_timing_and_flight():
    env_r, _ = frames(True, 5)
    env_p, _ = frames(False, 5)
    for key in ("start", "target", "trees", "distractors", "occluders"):
        assert np.array_equal(getattr(env_r.scene, key), getattr(env_p.scene, key)), key
    assert env_r.scene.texture_seed == env_p.scene.texture_seed
    assert np.array_equal(env_r.position, env_p.position) and env_r.time == env_p.time


def test_randomize_never_switches_on_a_sensor_or_scene_shift():
    for seed in range(20):
        env, _ = frames(True, seed, steps=0)
        assert env.shift == SHIFTS["none"] and env.effects.shift == SHIFTS["none"]
        assert env.effects.blur == 0 and env.effects.occluder_mask is None
        assert len(env.scene.distractors) == 0 and not env.look.palette.snow


def test_no_draw_reaches_dusk(draws):
    dusk = palette_for(SHIFTS["dusk"])
    summer = PALETTES["summer"]
    for a in draws:
        p = randomized_palette(summer, a)
        assert p.light >= DUSK_LIGHT + 0.1  # objects: dusk is 0.5
        assert min(p.tint) * p.light > DUSK_LIGHT * 0.9  # no channel down at dusk's light
        assert luma(p.ground[1]) > 1.15 * luma(dusk.ground[1])
        assert luma(p.sky_top) > 1.5 * luma(dusk.sky_top)
        assert np.abs(np.subtract(p.sky_horizon, dusk.sky_horizon)).max() > 30
        red, _, blue = kelvin_gains(a.kelvin)
        assert red / blue < 0.97 * (0.55 / 0.38)  # never as warm as dusk's ground tone
    assert min(a.glow for a in draws) < 0.05 and max(a.glow for a in draws) < 0.75


def test_no_draw_reaches_glare(draws):
    preset = SensorEffects(SHIFTS["glare"], (36, 64), 32.0, (0.0, 0.1), np.zeros((0, 5)))
    assert preset.veil == GLARE_VEIL
    peak = float(preset.bloom.max())
    for a in draws[:500]:
        effects = SensorEffects(
            SHIFTS["none"], (36, 64), 32.0, a.sun, np.zeros((0, 5)), (a.veil, a.bloom)
        )
        assert effects.veil[0] > GLARE_VEIL[0] + 0.06 and effects.veil[1] < 0.75 * GLARE_VEIL[1]
        if effects.bloom is not None:
            assert float(effects.bloom.max()) < 0.75 * peak
    assert max(a.veil for a in draws) < 0.75 and max(a.bloom for a in draws) < 0.75
    assert max(a.bloom for a in draws) > 0.5  # but the data does come close


def test_glare_ahead_gives_every_sun_ahead_a_strong_glare_and_changes_nothing_else():
    always, never = (
        Randomization(sun_ahead_p=p, ahead_glare=GLARE_AHEAD.ahead_glare) for p in (1.0, 0.0)
    )
    for seed in range(300):
        strong = draw_appearance(seed, always, heading=-1.0)
        plain = draw_appearance(seed, Randomization(sun_ahead_p=1.0), heading=-1.0)
        assert 0.35 <= strong.veil <= 0.7 and 0.35 <= strong.bloom <= 0.7
        assert replace(strong, veil=plain.veil, bloom=plain.bloom) == plain  # drawn last
        assert draw_appearance(seed, never) == draw_appearance(seed, Randomization(sun_ahead_p=0))
    share = np.mean([draw_appearance(s, GLARE_AHEAD).bloom >= 0.35 for s in range(DRAWS)])
    assert 0.7 < share < 0.8  # the ahead half, and half of the rest
    with pytest.raises(ValueError, match=r"ahead_glare.*glare"):
        Randomization(ahead_glare=(0.5, 0.8))
    with pytest.raises(ValueError, match="needs randomize"):
        NavEnvConfig(glare_ahead=True)


def test_no_glare_ahead_draw_reaches_glare():
    preset = SensorEffects(SHIFTS["glare"], (36, 64), 32.0, (0.0, 0.1), np.zeros((0, 5)))
    for seed in range(DRAWS):
        a = draw_appearance(seed, GLARE_AHEAD)
        assert a.veil < 0.75 and a.bloom < 0.75
    effects = SensorEffects(SHIFTS["none"], (36, 64), 32.0, a.sun, np.zeros((0, 5)), (0.7, 0.7))
    assert effects.veil[0] > preset.veil[0] + 0.06
    assert effects.bloom is not None and preset.bloom is not None
    assert float(effects.bloom.max()) < 0.75 * float(preset.bloom.max())


def test_no_draw_reaches_autumn_or_winter(draws):
    autumn, winter, summer = PALETTES["autumn"], PALETTES["winter"], PALETTES["summer"]
    for a in draws:
        p = randomized_palette(summer, a)
        assert hue_gap(hue_deg(p.ground[1]), hue_deg(autumn.ground[1])) > 20
        for leaf, fall in zip(p.foliage, autumn.foliage, strict=True):
            assert hue_gap(hue_deg(leaf), hue_deg(fall)) > 20
        assert saturation(p.ground[1]) > 3 * saturation(winter.ground[1])
        assert not p.snow


def test_draws_cover_the_ranges(draws):
    for name in ("exposure", "kelvin", "fog_distance", "contrast", "ground_hue"):
        low, high = getattr(RANDOMIZATION, name)
        values = [getattr(a, name) for a in draws]
        assert low <= min(values) < low + 0.05 * (high - low)
        assert high - 0.05 * (high - low) < max(values) <= high
    azimuths = [a.sun[0] for a in draws]
    assert min(azimuths) < -3.0 and max(azimuths) > 3.0  # the full circle
    low_suns = sum(a.sun[1] < 0.15 for a in draws)
    assert low_suns > DRAWS * 0.08


def test_half_the_suns_stand_low_ahead_of_the_start_heading():
    heading = 2.5
    suns = [draw_appearance(seed, heading=heading).sun for seed in range(DRAWS)]
    ahead = [
        (az, el)
        for az, el in suns
        if abs(math.remainder(az - heading, 2 * math.pi)) <= RANDOMIZATION.sun_ahead_bearing
        and el <= RANDOMIZATION.sun_ahead_elevation[1]
    ]
    # the ahead half, plus the all-round half's share of that window (~0.25 x 0.33)
    assert 0.5 < len(ahead) / DRAWS < 0.6
    with pytest.raises(ValueError, match="sun_ahead_p"):
        Randomization(sun_ahead_p=1.5)


def test_ranges_that_reach_a_preset_are_refused():
    with pytest.raises(ValueError, match=r"exposure.*dusk"):
        Randomization(exposure=(0.5, 1.2))
    with pytest.raises(ValueError, match=r"veil.*glare"):
        Randomization(veil=(0.0, 1.0))
    with pytest.raises(ValueError, match=r"bloom.*glare"):
        Randomization(bloom=(0.0, 1.0))
    with pytest.raises(ValueError, match=r"ground_hue.*autumn"):
        Randomization(ground_hue=(-50.0, 0.0))
    with pytest.raises(ValueError, match=r"low <= high"):
        Randomization(contrast=(1.2, 0.8))


def test_the_table_beside_the_presets_shows_the_ranges():
    doc = shifts.__doc__ or ""
    for f in fields(Randomization):
        value = getattr(RANDOMIZATION, f.name)
        if isinstance(value, tuple):
            low, high = value
            assert f"{low:g}..{high:g}" in doc, f"{f.name} {low:g}..{high:g} missing in shifts.py"
    assert f"half the episodes: sun +-{RANDOMIZATION.sun_ahead_bearing:g} rad" in doc
    assert GLARE_AHEAD.ahead_glare is not None
    low, high = GLARE_AHEAD.ahead_glare
    assert "--glare-ahead: veil and bloom" in doc and f"{low:g}..{high:g} in that half" in doc
    assert RANDOMIZATION.sun_ahead_p == 0.5
    assert re.search(r"glare\s*\|", doc) and re.search(r"dusk\s*\|", doc)
    assert math.isclose(sum(LUMA), 1.0)
