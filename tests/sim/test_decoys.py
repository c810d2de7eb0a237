"""Decoys (`collect --decoys`): deterministic per seed, the same flight and labels, and never
the `distractors` or `autumn` preset."""

import colorsys
from dataclasses import replace

import numpy as np
import pytest

from edgeliquid.sim import NavEnv, NavEnvConfig, shifts
from edgeliquid.sim.decoys import (
    BOX,
    DECOY_MIXES,
    DECOYS,
    DENSE,
    DISTRACTORS_PRESET,
    DOME,
    DOME_RADIUS,
    MAX_DECOYS,
    MAX_DIRT,
    OCCLUSION_PRESET,
    POLE_SPHERE,
    TARGET_HUE,
    DecoyConfig,
    draw_decoys,
)
from edgeliquid.sim.expert import ExpertPolicy
from edgeliquid.sim.scene import generate_scene
from edgeliquid.sim.shifts import SHIFTS

SIZE = dict(height=36, width=64)
DRAWS = 1500


def hue_gap(rgb: np.ndarray) -> float:
    hue = 360.0 * colorsys.rgb_to_hsv(*(rgb / 255.0))[0]
    return abs((hue - TARGET_HUE + 180) % 360 - 180)


@pytest.fixture(scope="module")
def draws():
    return [(draw_decoys(s, scene), scene) for s in range(DRAWS) for scene in [_scene(s)]]


def _scene(seed: int):
    return generate_scene(seed, SHIFTS["none"])


def test_no_draw_is_the_distractors_preset(draws):
    counts = [len(d.objects) for d, _ in draws]
    assert max(counts) == DECOYS.count[1] < DISTRACTORS_PRESET and min(counts) == DECOYS.count[0]
    rows = np.concatenate([d.objects for d, _ in draws])
    assert set(rows[:, 2].tolist()) == {BOX, POLE_SPHERE}  # never a cone or a ball on the ground
    spheres, boxes = rows[rows[:, 2] == POLE_SPHERE], rows[rows[:, 2] == BOX]
    assert min(hue_gap(rgb) for rgb in spheres[:, 5:8]) >= DECOYS.sphere_hue_gap - 0.5
    assert spheres[:, 4].min() >= 1.2  # up on a pole, as the target
    near = [hue_gap(rgb) <= DECOYS.near_hue for rgb in boxes[:, 5:8]]
    assert 0.6 < np.mean(near) < 0.85  # most boxes are the target's colour (or close)
    for decoys, scene in draws:
        gaps = np.hypot(*(decoys.objects[:, :2] - scene.target[:2]).T)
        assert (gaps > 3.0).all()


def test_no_draw_is_autumn(draws):
    """Odd trees are a minority of broadleaf canopies; autumn recolours every one (and the
    ground, which decoys never touch)."""
    for decoys, scene in draws:
        broadleaf = scene.trees[:, 6] == 0
        assert broadleaf[decoys.odd_trees.index].all()
        assert len(decoys.odd_trees.index) <= DECOYS.odd_trees[1] * broadleaf.sum()
    shares = [len(d.odd_trees.index) / max((s.trees[:, 6] == 0).sum(), 1) for d, s in draws]
    assert max(shares) > 0.3  # the range is used, up to its end


def test_same_seed_same_decoys_same_scene_and_labels():
    plain = NavEnv(NavEnvConfig(**SIZE, randomize=True))
    decoyed = NavEnv(NavEnvConfig(**SIZE, randomize=True, decoys=True))
    again = NavEnv(NavEnvConfig(**SIZE, randomize=True, decoys=True))
    experts = ExpertPolicy(), ExpertPolicy()
    seed = next(s for s in range(50) if len(draw_decoys(s, _scene(s)).objects))
    changed = 0
    for s in range(seed, seed + 6):
        obs_p, _ = plain.reset(seed=s)
        obs_d, _ = decoyed.reset(seed=s)
        obs_a, _ = again.reset(seed=s)
        assert np.array_equal(obs_d, obs_a)
        assert np.array_equal(plain.scene.trees, decoyed.scene.trees)
        assert np.array_equal(plain.scene.target, decoyed.scene.target)
        assert plain.appearance == decoyed.appearance
        for e in experts:
            e.reset()
        labels = experts[0].act(plain), experts[1].act(decoyed)
        assert np.array_equal(*labels)  # the expert never looks at decoys
        changed += not np.array_equal(obs_p, obs_d)
    assert changed >= 3
    assert plain.decoys is None and decoyed.decoys is not None


def test_decoys_show_in_the_frame():
    """A red-orange box right ahead of the camera is painted in the target's colour family."""
    env = NavEnv(NavEnvConfig(height=72, width=128, decoys=True))
    seed = next(
        s for s in range(200) if any(r[2] == BOX for r in draw_decoys(s, _scene(s)).objects)
    )
    env.reset(seed=seed)
    x, y, _, yaw = env.scene.start
    box = [5.0 * np.cos(yaw) + x, 5.0 * np.sin(yaw) + y, BOX, 1.0, 1.0, 235.0, 72.0, 28.0]
    env.scene.decoys = np.array([box])
    frame = env.renderer.render(env.scene.start, env.look, env.scene)
    r = env.renderer
    scale = r.focal / 5.0
    ground = r.cy - env.scene.start[2] * scale  # the image row of the box's foot
    rows = slice(int(ground - 0.7 * scale), int(ground - 0.1 * scale))  # below its lit top
    middle = frame[rows, 60:68].reshape(-1, 3).astype(float)
    assert np.abs(middle.mean(0) - [235, 72, 28]).max() < 40


def test_ranges_that_reach_a_preset_are_refused():
    with pytest.raises(ValueError, match=r"decoy count .* distractors preset places 8"):
        DecoyConfig(count=(0, 8))
    with pytest.raises(ValueError, match=r"odd_trees .*\(autumn recolours every canopy\)"):
        DecoyConfig(odd_trees=(0.0, 1.0))
    with pytest.raises(ValueError, match="sphere_hue_gap"):
        DecoyConfig(sphere_hue_gap=10.0)


def test_the_table_beside_the_presets_shows_the_decoys():
    doc = shifts.__doc__ or ""
    lo, hi = DECOYS.count
    assert f"--decoys: {lo}..{hi} objects (max {MAX_DECOYS})" in doc
    lo_t, hi_t = DECOYS.odd_trees
    assert f"--decoys: {100 * lo_t:g}..{hi_t:.0%} of the broadleaf" in doc
    assert f"{DECOYS.near_hue:g} deg of the target's hue" in doc
    assert f">= {DECOYS.sphere_hue_gap:g} deg of hue" in doc


@pytest.fixture(scope="module")
def dense_draws():
    mix = DECOY_MIXES["dense-dirt"]
    return [draw_decoys(s, _scene(s), mix) for s in range(DRAWS)]


def test_dense_mixes_stay_off_the_distractors_and_occlusion_presets(dense_draws):
    counts = [len(d.objects) for d in dense_draws]
    assert (min(counts), max(counts)) == DENSE.count and max(counts) < DISTRACTORS_PRESET
    rows = np.concatenate([d.objects for d in dense_draws])
    assert set(rows[:, 2].tolist()) == {BOX, POLE_SPHERE}  # never a cone or a ball
    boxes = rows[rows[:, 2] == BOX]
    assert 0.75 < len(boxes) / len(rows) < 0.85
    near = np.mean([hue_gap(rgb) <= DENSE.near_hue for rgb in boxes[:, 5:8]])
    assert 0.8 < near < 0.92  # more of them red-orange than v2's 0.7
    dirt = [len(d.dirt) for d in dense_draws]
    assert max(dirt) == MAX_DIRT < OCCLUSION_PRESET  # never the occlusion preset's 4 blobs
    assert 0.25 < np.mean([n > 0 for n in dirt]) < 0.35
    sizes = np.concatenate([d.dirt for d in dense_draws])[:, 2]
    assert sizes.min() >= 0.05 and sizes.max() <= 0.11  # the preset's blob sizes
    assert all(len(draw_decoys(s, _scene(s), DENSE).dirt) == 0 for s in range(200))


def test_dirt_has_its_own_stream():
    """dense-dirt draws the same objects and trees as dense; only the lens differs."""
    dirty = DECOY_MIXES["dense-dirt"]
    for s in range(30):
        a, b = draw_decoys(s, _scene(s), DENSE), draw_decoys(s, _scene(s), dirty)
        assert np.array_equal(a.objects, b.objects)
        assert np.array_equal(a.odd_trees.index, b.odd_trees.index)


def test_lens_dirt_shows_in_the_frame_and_changes_no_label():
    dirty, plain = (
        NavEnv(NavEnvConfig(**SIZE, decoys=True, decoy_mix=m)) for m in ("dense-dirt", "dense")
    )
    seed = next(s for s in range(100) if len(dirty.reset(seed=s)[1] and dirty.decoys.dirt))
    obs_d, _ = dirty.reset(seed=seed)
    obs_p, _ = plain.reset(seed=seed)
    dark = (obs_d == [38, 33, 28]).all(axis=-1)
    assert 0.005 < dark.mean() < 0.2 and not (obs_p == [38, 33, 28]).all(axis=-1).any()
    assert np.array_equal(obs_d[~dark], obs_p[~dark])
    assert np.array_equal(ExpertPolicy().act(dirty), ExpertPolicy().act(plain))


def test_dirt_counts_that_reach_the_occlusion_preset_are_refused():
    with pytest.raises(ValueError, match=r"dirt_count .* occlusion preset has 4 blobs"):
        DecoyConfig(lens_dirt=0.5, dirt_count=(1, 4))
    with pytest.raises(ValueError, match="lens_dirt must be in"):
        DecoyConfig(lens_dirt=1.5)
    with pytest.raises(ValueError, match="needs decoys"):
        NavEnvConfig(decoy_mix="dense")


def test_the_table_beside_the_presets_shows_the_dense_mixes():
    doc = shifts.__doc__ or ""
    lo, hi = DENSE.count
    assert f"--decoy-mix dense: {lo}..{hi} objects" in doc
    assert f"{DENSE.box_share:.0%} boxes, {DENSE.near_share:.0%} of those near" in doc
    dirt = DECOY_MIXES["dense-dirt"]
    lo_d, hi_d = dirt.dirt_count
    assert f"dense-dirt: {lo_d}..{hi_d} lens" in doc
    assert f"blobs (max {MAX_DIRT}) in {dirt.lens_dirt:.0%} of episodes" in doc


@pytest.fixture(scope="module")
def dome_draws():
    return [draw_decoys(s, _scene(s), DECOY_MIXES["domes"]) for s in range(DRAWS)]


def test_domes_are_half_balls_never_the_distractors_preset(dome_draws):
    counts = [len(d.objects) for d in dome_draws]
    assert max(counts) == MAX_DECOYS < DISTRACTORS_PRESET
    rows = np.concatenate([d.objects for d in dome_draws])
    assert set(rows[:, 2].tolist()) == {BOX, POLE_SPHERE, DOME}  # never a cone or a ball
    domes = rows[rows[:, 2] == DOME]
    assert 0.25 < len(domes) / len(rows) < 0.35
    assert (domes[:, 4] == domes[:, 3]).all()  # top at one radius: half a ball, flat on the ground
    assert DOME_RADIUS[0] <= domes[:, 3].min() and domes[:, 3].max() <= DOME_RADIUS[1]
    assert max(hue_gap(rgb) for rgb in domes[:, 5:8]) <= DECOYS.near_hue + 0.5
    v2 = np.concatenate([draw_decoys(s, _scene(s)).objects for s in range(300)])
    assert DOME not in v2[:, 2]  # the other mixes draw as before


def test_a_dome_is_painted_as_half_a_ball():
    """A red-orange dome of radius 0.8 m, 5 m ahead, fills a half disc: its top one radius
    above the ground, where a ball of that radius would reach two."""
    env = NavEnv(NavEnvConfig(height=72, width=128, decoys=True, decoy_mix="domes"))
    env.reset(seed=3)
    x, y, _, yaw = env.scene.start
    dome = [5.0 * np.cos(yaw) + x, 5.0 * np.sin(yaw) + y, DOME, 0.8, 0.8, 235.0, 72.0, 28.0]
    env.scene.decoys = np.array([dome])
    frame = env.renderer.render(env.scene.start, env.look, env.scene).astype(float)
    r = env.renderer
    radius = 0.8 * r.focal / 5.0  # px
    ground = r.cy - env.scene.start[2] * r.focal / 5.0
    red = (np.abs(frame - [235, 72, 28]).max(axis=-1) < 50)[:, 56:72]
    rows = np.flatnonzero(red.any(axis=1))
    assert abs(rows.min() - (ground - radius)) <= 1.5
    assert rows.max() >= ground - 1.5
    assert red[int(ground - 0.3 * radius)].mean() > 0.9  # filled across, near its foot


def test_dome_shares_that_crowd_out_the_other_decoys_are_refused():
    with pytest.raises(ValueError, match="dome_share must be in"):
        DecoyConfig(dome_share=0.8)


def test_domes_dirt_is_the_domes_mix_with_dense_dirts_lens():
    mix = DECOY_MIXES["domes-dirt"]
    assert replace(mix, lens_dirt=0.0) == DECOY_MIXES["domes"]
    assert (mix.lens_dirt, mix.dirt_count) == (0.3, DECOY_MIXES["dense-dirt"].dirt_count)
    draws = [draw_decoys(s, _scene(s), mix) for s in range(300)]
    for s, d in enumerate(draws[:30]):  # the objects are the domes mix's, to the bit
        assert np.array_equal(d.objects, draw_decoys(s, _scene(s), DECOY_MIXES["domes"]).objects)
    dirt = [len(d.dirt) for d in draws]
    assert max(dirt) == MAX_DIRT < OCCLUSION_PRESET and 0.2 < np.mean([n > 0 for n in dirt]) < 0.4


def test_the_table_beside_the_presets_shows_the_domes():
    doc = shifts.__doc__ or ""
    domes = DECOY_MIXES["domes"]
    lo, hi = DOME_RADIUS
    assert f"--decoy-mix domes: v2 with {domes.dome_share:.0%} of" in doc
    assert "--decoy-mix domes-dirt: the domes" in doc
    assert f"(radius {lo:g}..{hi:g} m)" in doc
