"""Photometric augmentation: uint8 contract, seeding, one draw per window, each op's direction."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from edgeliquid.training.augment import (
    DIRT_AHEAD,
    AugmentConfig,
    Augmenter,
    temperature_gains,
)

LIGHT_OPS = (
    "gamma",
    "exposure",
    "temperature",
    "veil",
    "glare",
    "vignette",
    "gradient",
    "low_light",
)


def _off(**overrides) -> AugmentConfig:
    """Every op off (identity), then `overrides`."""
    base = dict(brightness=0.0, contrast=0.0, saturation=0.0, noise_std=0.0, channel_gain=0.0)
    base.update({f"{op}_p": 0.0 for op in LIGHT_OPS})
    return AugmentConfig(**{**base, **overrides})


def _only(op: str, value: float, **overrides) -> AugmentConfig:
    """Only light op `op`, always applied at strength `value`."""
    return _off(**{f"{op}_p": 1.0, f"{op}_range": (value, value)}, **overrides)


def _frames(seed: int = 0, shape=(3, 4, 8, 10, 3)) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8)


def _grey(value: int, shape=(2, 3, 12, 16, 3)) -> torch.Tensor:
    return torch.full(shape, value, dtype=torch.uint8)


def _run(config: AugmentConfig, frames: torch.Tensor, seed: int = 0) -> torch.Tensor:
    return Augmenter(config, seed=seed)(frames)


def test_keeps_uint8_contract_and_is_seeded():
    frames = _frames()
    out = _run(AugmentConfig(), frames, seed=1)
    assert out.dtype == torch.uint8 and out.shape == frames.shape
    assert torch.equal(out, _run(AugmentConfig(), frames, seed=1))
    assert not torch.equal(out, _run(AugmentConfig(), frames, seed=2))
    assert not torch.equal(out, frames)


def test_rejects_frames_that_are_not_uint8_windows():
    with pytest.raises(ValueError, match="uint8"):
        Augmenter(AugmentConfig(), seed=0)(_frames().float())
    with pytest.raises(ValueError, match=r"\[B,T,H,W,3\]"):
        Augmenter(AugmentConfig(), seed=0)(_frames()[0])


def test_all_off_is_identity():
    frames = _frames()
    assert torch.equal(_run(_off(), frames), frames)


IDENTITY = {"gamma": 1.0, "exposure": 1.0, "temperature": 6500.0, "veil": 0.0, "glare": 0.0}
IDENTITY.update(vignette=0.0, gradient=0.0, low_light=0.0)


@pytest.mark.parametrize("op", LIGHT_OPS)
def test_switching_one_op_off_leaves_the_other_draws_alone(op):
    """p = 0 must equal drawing the op at its identity strength: no reshuffled draws."""
    frames = _frames()
    full = AugmentConfig(**{f"{name}_p": 1.0 for name in LIGHT_OPS})
    without = dataclasses.replace(full, **{f"{op}_p": 0.0})
    neutral = dataclasses.replace(full, **{f"{op}_range": (IDENTITY[op], IDENTITY[op])})
    assert torch.equal(_run(without, frames), _run(neutral, frames))
    assert not torch.equal(_run(without, frames), _run(full, frames))


def _reference(x: torch.Tensor, gains, b: float, c: float, s: float) -> torch.Tensor:
    """Gains, brightness, contrast (toward the window's mean grey), saturation, one by one."""
    luma = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64)
    x = x.double() * torch.tensor(gains, dtype=torch.float64) * b
    mean = (x @ luma).mean()
    x = (x - mean) * c + mean
    grey = (x @ luma).unsqueeze(-1)
    return ((x - grey) * s + grey).clamp(0, 255).round()


def test_folded_paper_ops_equal_sequential_ops(monkeypatch):
    frames = _frames()[:1]
    augmenter = Augmenter(_off(), seed=0)  # the patched draws below switch the ops on
    drawn = iter([1.3, np.array([0.9, 1.1, 1.05]), 0.7, 1.2])  # brightness, gains, c, s
    monkeypatch.setattr(augmenter, "_jitter", lambda strength, size=None: next(drawn))
    expected = _reference(frames, (0.9, 1.1, 1.05), 1.3, 0.7, 1.2)
    assert (augmenter(frames).double() - expected).abs().max() <= 1.0


def test_paper_preset_is_the_old_recipe():
    paper = AugmentConfig.paper()
    assert all(getattr(paper, f"{op}_p") == 0.0 for op in LIGHT_OPS)
    assert (paper.brightness, paper.contrast, paper.saturation, paper.noise_std) == (
        0.4,
        0.4,
        0.4,
        0.05,
    )
    assert any(getattr(AugmentConfig(), f"{op}_p") > 0 for op in LIGHT_OPS)  # default is new


def test_scaled_recipe_is_one_strength_for_a_search():
    assert AugmentConfig.scaled(1.0) == AugmentConfig()
    off = AugmentConfig.scaled(0.0)
    assert (off.brightness, off.channel_gain, off.noise_std) == (0.0, 0.0, 0.0)
    assert all(getattr(off, f"{op}_p") == 0.0 for op in LIGHT_OPS)
    strong = AugmentConfig.scaled(2.0)
    assert strong.brightness == pytest.approx(0.8) and strong.gamma_p == 1.0  # capped at 1
    assert strong.gamma_range == AugmentConfig().gamma_range
    with pytest.raises(ValueError, match="augmentation strength must be in"):
        AugmentConfig.scaled(2.5)


def test_every_op_is_drawn_once_per_window():
    """All ops but noise on: a window of identical frames stays identical; windows differ."""
    frames = _frames(shape=(4, 1, 12, 16, 3)).expand(4, 5, 12, 16, 3).contiguous()
    light = {f"{op}_p": 1.0 for op in LIGHT_OPS}
    config = AugmentConfig(noise_std=0, **{**light, "low_light_p": 0.0})
    out = _run(config, frames)
    for window in out:
        assert torch.equal(window, window[:1].expand_as(window))
    assert not torch.equal(out[0], out[1])


def test_gamma_above_one_darkens_midtones_and_below_brightens():
    assert _run(_only("gamma", 2.0), _grey(128)).unique().tolist() == [64]  # 255·(128/255)²
    assert _run(_only("gamma", 0.5), _grey(128)).unique().tolist() == [181]  # 255·√(128/255)
    assert _run(_only("gamma", 2.0), _grey(255)).unique().tolist() == [255]  # white stays


def test_exposure_is_a_gain_in_linear_light_that_clips_at_white():
    bright = _run(_only("exposure", 2.5), _grey(200))
    assert bright.unique().tolist() == [255]  # 0.58 linear x 2.5 > 1: clipped
    # 50/255 -> linear 0.032, x 2.5 = 0.080 -> sRGB 0.314 -> 80: brighter, not clipped
    assert _run(_only("exposure", 2.5), _grey(50)).unique().tolist() == [80]
    assert _run(_only("exposure", 0.4), _grey(200)).unique().tolist()[0] < 200


def test_temperature_warms_or_cools_a_grey_frame():
    warm = _run(_only("temperature", 3000.0), _grey(128))[0, 0, 0, 0].tolist()
    cool = _run(_only("temperature", 10000.0), _grey(128))[0, 0, 0, 0].tolist()
    assert warm[0] > warm[1] > warm[2]  # red over blue
    assert cool[2] > cool[0]  # blue over red
    assert np.allclose(temperature_gains(6500.0), 1.0)
    assert temperature_gains(3000.0) @ np.array([0.299, 0.587, 0.114]) == pytest.approx(1.0)


def test_veil_lowers_contrast_toward_a_bright_haze():
    frames = _frames(shape=(2, 2, 16, 16, 3))
    out = _run(_only("veil", 0.5), frames).double()
    assert out.std() < 0.6 * frames.double().std()
    assert out.mean() > frames.double().mean() + 20  # haze is brighter than mid-grey


def test_glare_raises_brightness_locally():
    frames = _grey(60, shape=(3, 2, 36, 64, 3))
    out = _run(_only("glare", 0.7), frames).double()
    assert (out >= 60).all()
    for window in out:
        red = window[..., 0]
        assert red.max() > 60 + 0.8 * 0.7 * 255  # the blob's peak lies inside the frame
        assert red.min() < 60 + 0.1 * 0.7 * 255  # ... and it is local
        assert window[..., 2].max() < red.max()  # warm: less blue than red


def test_glare_centre_falls_inside_its_box():
    box = (-0.6, -0.2, 0.4, 0.8)  # upper half, right of centre
    config = _only("glare", 0.7, glare_box=box, glare_radius=(0.05, 0.05))
    out = _run(config, _grey(0, shape=(20, 1, 36, 64, 3)))[:, 0, ..., 0].numpy()
    for frame in out:
        y, x = np.unravel_index(np.argmax(frame), frame.shape)
        y, x = (y + 0.5) / 36 * 2 - 1, (x + 0.5) / 64 * 2 - 1
        assert box[0] - 0.06 <= y <= box[1] + 0.06 and box[2] - 0.04 <= x <= box[3] + 0.04


def test_wider_glare_radius_lights_more_of_the_frame():
    lit = []
    for radius in (0.05, 0.35):
        config = _only("glare", 0.7, glare_box=(0, 0, 0, 0), glare_radius=(radius, radius))
        out = _run(config, _grey(0, shape=(1, 1, 36, 64, 3))).double()
        lit.append(float((out[..., 0] > 50).double().mean()))
    assert lit[0] < 0.1 < 0.5 < lit[1]


def test_lens_dirt_is_dark_fixed_for_the_window_and_covers_a_little():
    config = _off(dirt_p=1.0, dirt_range=(1.0, 3.0))
    out = _run(config, _grey(220, shape=(6, 4, 36, 64, 3)))
    covered = []
    for window in out:
        assert torch.equal(window, window[:1].expand_as(window))  # stuck on the lens
        dark = window[0].double().mean(-1) < 100
        assert window[0][dark].double().max() <= 80 * 1.2 + 1  # 10..80 grey, tinted ±20%
        covered.append(float(dark.double().mean()))
    assert min(covered) > 0.0 and max(covered) < 0.3  # 1 to 3 blobs, each 6-16% across
    assert len(set(covered)) > 1  # each window its own dirt


def test_lens_dirt_draws_from_its_own_stream():
    """Dirt on leaves every other op's draw as it was (the default recipe keeps its draws)."""
    frames = _frames(shape=(3, 2, 36, 64, 3))
    clean = _run(AugmentConfig(), frames)
    dirty = _run(AugmentConfig(dirt_p=1.0), frames)
    assert not torch.equal(clean, dirty)
    same = (clean == dirty).all(-1)
    assert same.double().mean() > 0.7  # only the blobs differ


def test_dirt_ahead_puts_the_blobs_mid_frame():
    """The dirt-ahead preset's blobs are centred in DIRT_AHEAD: the dark pixels' centroid of
    every window lies in it (a pixel's slack), and the frame's edges stay clean."""
    config = _off(dirt_p=1.0, dirt_box=DIRT_AHEAD, dirt_size=(0.05, 0.11))
    out = _run(config, _grey(220, shape=(40, 1, 72, 128, 3)))
    y0, y1, x0, x1 = DIRT_AHEAD
    for window in out:
        dark = (window[0].double().mean(-1) < 100).numpy()
        rows, cols = np.nonzero(dark)
        assert y0 * 72 - 1 <= rows.mean() <= y1 * 72 + 1
        assert x0 * 128 - 1 <= cols.mean() <= x1 * 128 + 1
        assert not dark[:, :16].any() and not dark[:, -16:].any()
    ahead = AugmentConfig.dirt_ahead()
    assert ahead.dirt_box == DIRT_AHEAD and ahead.dirt_size == (0.05, 0.11)
    assert ahead.dirt_range[1] < 4  # never the occlusion preset's 4 blobs


def test_vignette_darkens_corners_not_the_centre():
    out = _run(_only("vignette", 0.5), _grey(200, shape=(1, 1, 36, 64, 3)))[0, 0, ..., 1]
    assert out[18, 32] >= 199
    corners = torch.stack([out[0, 0], out[0, -1], out[-1, 0], out[-1, -1]]).double()
    assert (corners < 200 * (1 - 0.5 * 0.8)).all()


def test_gradient_brightens_one_side_and_darkens_the_other():
    out = _run(_only("gradient", 0.4), _grey(128, shape=(4, 1, 36, 64, 3))).double()
    for window in out:
        assert window.max() > 128 * 1.25 and window.min() < 128 * 0.75
        assert window.mean() == pytest.approx(128, abs=2)  # a ramp, centred


def test_low_light_noise_grows_as_the_frame_gets_darker():
    config = _only("low_light", 0.08)
    dark = _run(config, _grey(40, shape=(2, 4, 24, 32, 3))).double()
    bright = _run(config, _grey(200, shape=(2, 4, 24, 32, 3))).double()
    expected = 0.08 * 255 * (1 - 40 / 255) ** 2
    assert dark.std() == pytest.approx(expected, rel=0.15)
    assert dark.std() > 5 * bright.std()


def test_noise_has_the_configured_strength_and_differs_per_frame():
    out = _run(_off(noise_std=0.05), _grey(128, shape=(4, 8, 16, 16, 3))).double()
    assert out.mean().item() == pytest.approx(128, abs=1.0)
    assert (out - 128).std().item() == pytest.approx(0.05 * 255, rel=0.1)
    assert not torch.equal(out[0, 0], out[0, 1])  # each frame its own noise
    assert not torch.equal(out[0, 0], out[1, 0])  # each window too


def test_colour_factors_are_per_window():
    out = _run(_off(brightness=0.4), _grey(100, shape=(2, 5, 6, 6, 3)))
    for window in out:
        assert torch.equal(window, window[:1].expand_as(window))  # same over time
    assert not torch.equal(out[0], out[1])  # different between windows


def test_channel_gain_tints_each_window_once():
    out = _run(_off(channel_gain=0.3), _grey(120, shape=(2, 4, 6, 6, 3)))
    first = out[0, 0, 0, 0]
    assert len(set(first.tolist())) == 3  # R, G and B scaled differently
    assert torch.equal(out[0], first.expand_as(out[0]))  # one tint for the whole window
    assert not torch.equal(out[1, 0, 0, 0], first)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("brightness", 1.5),
        ("noise_std", -0.1),
        ("noise_bank", 0),
        ("gamma_p", 1.5),
        ("glare_p", -0.1),
        ("gamma_range", (2.0, 1.0)),
        ("gamma_range", (0.0, 1.0)),
        ("veil_range", (0.0, 2.0)),
        ("temperature_range", (3000.0,)),
        ("dirt_range", (1.0, 4.0)),  # the occlusion preset's count
        ("glare_radius", (0.0, 0.2)),
        ("glare_box", (-1.0, 1.0, 0.5, 0.2)),
        ("dirt_box", (0.0, 1.2, 0.0, 1.0)),
        ("dirt_size", (0.05, 0.2)),  # larger than the occlusion preset's blobs
    ],
)
def test_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        AugmentConfig(**{field: value})
