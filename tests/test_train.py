"""Behaviour cloning: windows, augmentation, a short run, checkpoints, --init, CLI errors."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from edgeliquid.augment import AugmentConfig, augment_frames
from edgeliquid.windows import command_statistics, gather, make_windows, split_episodes


def _fake_episode(length: int, offset: float = 0.0) -> SimpleNamespace:
    steps = np.arange(length, dtype=np.float32)
    frames = np.broadcast_to(steps[:, None, None, None] % 256, (length, 4, 6, 3))
    commands = np.stack([steps + offset, -steps, steps * 0, steps * 2], axis=1)
    dt = np.full(length, 0.1, dtype=np.float32)
    return SimpleNamespace(frames=frames.astype(np.uint8), commands=commands, dt=dt)


# -- windows ------------------------------------------------------------------------------


def test_windows_cover_every_step_once_or_more():
    lengths = [10, 3, 32, 33]
    rows = make_windows(lengths, seq_len=8, seq_shift=5)
    for episode, length in enumerate(lengths):
        covered = np.zeros(length, dtype=bool)
        for _, start, size in rows[rows[:, 0] == episode]:
            assert size == min(8, length) and start + size <= length
            covered[start : start + size] = True
        assert covered.all()


def test_windows_validate_arguments():
    with pytest.raises(ValueError, match="seq_len"):
        make_windows([5], seq_len=0, seq_shift=1)


def test_split_is_by_episode_and_seeded():
    train, val = split_episodes(20, 0.2, seed=3)
    assert sorted(train + val) == list(range(20)) and len(val) == 4
    assert split_episodes(20, 0.2, seed=3) == (train, val)
    assert split_episodes(20, 0.2, seed=4) != (train, val)
    assert split_episodes(1, 0.5, seed=0) == ([0], [])


def test_gather_pads_with_mask_and_nominal_dt():
    episodes = [_fake_episode(5), _fake_episode(12)]
    rows = make_windows([5, 12], seq_len=8, seq_shift=8)
    batch = gather(episodes, rows, seq_len=8, nominal_dt=0.1)
    assert batch.frames.shape == (len(rows), 8, 4, 6, 3) and batch.frames.dtype == np.uint8
    assert batch.mask[0].tolist() == [True] * 5 + [False] * 3
    np.testing.assert_array_equal(batch.commands[1], episodes[1].commands[:8])
    np.testing.assert_array_equal(batch.commands[2], episodes[1].commands[4:12])
    assert np.all(batch.dt[0, 5:] == np.float32(0.1))


def test_command_statistics_floor_constant_labels():
    mean, std = command_statistics([_fake_episode(10), _fake_episode(6, offset=1.0)])
    assert mean.shape == (4,) and std[2] == pytest.approx(1e-2)
    assert std[0] > 1.0


# -- augmentation -------------------------------------------------------------------------


def _frames(seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, 4, 8, 10, 3), generator=gen, dtype=torch.uint8)


def test_augment_keeps_uint8_contract_and_is_seeded():
    frames = _frames()
    out = augment_frames(frames, AugmentConfig(), torch.Generator().manual_seed(1))
    again = augment_frames(frames, AugmentConfig(), torch.Generator().manual_seed(1))
    assert out.dtype == torch.uint8 and out.shape == frames.shape
    assert torch.equal(out, again) and not torch.equal(out, frames)


def test_augment_off_is_identity():
    frames = _frames()
    config = AugmentConfig(brightness=0, contrast=0, saturation=0, noise_std=0)
    assert torch.equal(augment_frames(frames, config, torch.Generator()), frames)


def test_augment_colour_factors_are_per_sequence():
    frames = torch.full((2, 5, 6, 6, 3), 100, dtype=torch.uint8)
    config = AugmentConfig(contrast=0, saturation=0, noise_std=0)
    out = augment_frames(frames, config, torch.Generator().manual_seed(0))
    for sequence in out:
        assert torch.equal(sequence, sequence[:1].expand_as(sequence))  # same over time
    assert not torch.equal(out[0], out[1])  # different between sequences


def test_augment_config_rejects_bad_values():
    with pytest.raises(ValueError, match="brightness"):
        AugmentConfig(brightness=1.5)


def test_metrics_json_is_plain():
    from edgeliquid.train import TrainConfig, _plain

    plain = _plain(TrainConfig(max_minutes=2.0))
    assert json.loads(json.dumps(plain)) == plain and plain["augment"]["noise_std"] == 0.05
