"""Behaviour cloning: windows, config JSON, a short run, checkpoints, --init, CLI errors."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from edgeliquid.training.windows import (
    command_statistics,
    gather,
    make_windows,
    prefetched,
    split_episodes,
)


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


def test_prefetched_keeps_order_and_handles_no_batches():
    episodes = [_fake_episode(9), _fake_episode(4)]
    rows = make_windows([9, 4], seq_len=3, seq_shift=3)
    batches = [gather(episodes, rows[i : i + 2], 3, 0.1) for i in range(0, len(rows), 2)]
    out = list(prefetched(iter(batches)))
    assert len(out) == len(batches)
    for tensors, batch in zip(out, batches, strict=True):
        np.testing.assert_array_equal(tensors[1].numpy(), batch.commands)
        assert tensors[0].dtype == torch.uint8 and tensors[3].dtype == torch.bool
    assert list(prefetched(iter([]))) == []


def test_command_statistics_floor_constant_labels():
    mean, std = command_statistics([_fake_episode(10), _fake_episode(6, offset=1.0)])
    assert mean.shape == (4,) and std[2] == pytest.approx(1e-2)
    assert std[0] > 1.0


# -- config as JSON ------------------------------------------------------------------------


def test_metrics_json_is_plain():
    from edgeliquid.training.config import TrainConfig
    from edgeliquid.training.records import plain as _plain

    plain = _plain(TrainConfig(max_minutes=2.0))
    assert json.loads(json.dumps(plain)) == plain and plain["augment"]["noise_std"] == 0.05


# -- training on a tiny synthetic dataset -------------------------------------------------

H, W = 24, 32


def _write_dataset(directory, episodes: int = 8, steps: int = 12, seed: int = 0):
    """Episodes whose label is readable from the frame: a bright bar's column → yaw rate."""
    from edgeliquid import episodes as data

    rng = np.random.default_rng(seed)
    entries = []
    for index in range(episodes):
        columns = rng.integers(0, W - 4, size=steps)
        frames = np.full((steps, H, W, 3), 40, dtype=np.uint8)
        for t, c in enumerate(columns):
            frames[t, :, c : c + 4] = 230
        yaw = (columns / (W - 4) - 0.5).astype(np.float32)
        commands = np.stack([np.ones(steps), yaw * 0.2, np.zeros(steps), yaw], 1)
        dt = rng.uniform(0.07, 0.13, size=steps).astype(np.float32)
        episode = data.Episode(
            frames, commands.astype(np.float32), dt, np.zeros((steps, 2), np.float32)
        )
        data.save_episode(directory, index, episode)
        entries.append({"file": data.episode_path(directory, index).name, "steps": steps})
    manifest = data.new_manifest(height=H, width=W, nominal_dt=0.1, shift="none", seed=seed)
    manifest.update(episodes=entries, complete=True, dt_jitter=0.3)
    data.write_manifest(directory, manifest)
    return directory


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return _write_dataset(tmp_path_factory.mktemp("episodes"))


def _config(**overrides):
    from edgeliquid.training.config import TrainConfig

    base = dict(epochs=2, seq_len=6, seq_shift=3, batch_size=4, lr=1e-2, val_fraction=0.25)
    return TrainConfig(**{**base, **overrides})


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory):
    from edgeliquid.training.trainer import train

    run_dir = tmp_path_factory.mktemp("run")
    return train(dataset, run_dir, _config(epochs=6), log=lambda line: None)


def test_short_run_lowers_loss_and_writes_run_files(trained):
    metrics = trained.metrics
    assert metrics["best_val_loss"] < 0.8 * metrics["initial_val_loss"]
    assert metrics["history"][-1]["train_loss"] < metrics["history"][0]["train_loss"]
    for name in ("best.pt", "last.pt", "metrics.json", "curves.png"):
        assert (trained.run_dir / name).stat().st_size > 0
    on_disk = json.loads((trained.run_dir / "metrics.json").read_text())
    assert on_disk["best_epoch"] == metrics["best_epoch"] and on_disk["data"]["episodes"] == 8
    assert on_disk["param_count"] > 0 and on_disk["data"]["dt_jitter"] == 0.3


def test_checkpoint_stores_label_statistics_and_round_trips(trained, dataset, tmp_path):
    from edgeliquid.episodes import load_dataset
    from edgeliquid.model import load_checkpoint, save_checkpoint

    model, ckpt = load_checkpoint(trained.best_path)
    assert ckpt["epoch"] == trained.metrics["best_epoch"]
    assert 0.5 < float(model.command_mean[0]) < 1.5  # forward labels are all 1.0
    episode = load_dataset(dataset)[0]
    frames = torch.from_numpy(episode.frames).unsqueeze(0)
    dt = torch.from_numpy(episode.dt).unsqueeze(0)
    save_checkpoint(tmp_path / "again.pt", model)
    again, _ = load_checkpoint(tmp_path / "again.pt")
    with torch.no_grad():
        torch.testing.assert_close(
            model(frames, None, dt)[0], again(frames, None, dt)[0], rtol=0, atol=0
        )


def test_same_seed_same_run(dataset, tmp_path):
    from edgeliquid.training.trainer import train

    quiet = {"log": lambda line: None}
    a = train(dataset, tmp_path / "a", _config(epochs=1, seed=5), **quiet).metrics
    b = train(dataset, tmp_path / "b", _config(epochs=1, seed=5), **quiet).metrics
    c = train(dataset, tmp_path / "c", _config(epochs=1, seed=6), **quiet).metrics
    assert a["history"][0]["train_loss"] == b["history"][0]["train_loss"]
    assert a["history"][0]["train_loss"] != c["history"][0]["train_loss"]


def test_val_seed_holds_out_the_same_episodes_for_every_seed(dataset, tmp_path):
    from edgeliquid.training.trainer import train

    def held_out(name: str, **config) -> list[int]:
        metrics = train(
            dataset, tmp_path / name, _config(epochs=1, **config), log=lambda _: None
        ).metrics
        return metrics["val_episodes"]

    by_seed = [held_out(f"s{s}", seed=s) for s in range(4)]
    assert len({tuple(v) for v in by_seed}) > 1  # the split follows --seed by default
    shared = [held_out(f"v{s}", seed=s, val_seed=1) for s in range(3)]
    assert shared == [by_seed[1]] * 3
    with pytest.raises(ValueError, match="val_seed must be >= 0"):
        _config(val_seed=-1)


def test_init_resumes_from_checkpoint_and_warns_on_arch(trained, dataset, tmp_path):
    from edgeliquid.training.trainer import train

    lines = []
    config = _config(epochs=1, init=str(trained.last_path), arch="gru", conv_norm="none")
    result = train(dataset, tmp_path / "fine", config, log=lines.append)
    last_val = trained.metrics["history"][-1]["val_loss"]
    assert result.metrics["initial_val_loss"] == pytest.approx(last_val, rel=1e-5)
    assert result.metrics["arch"] == "cfc"
    assert any(line.startswith("warning: --init checkpoint has arch 'cfc'") for line in lines)
    assert any("has conv_norm 'batch'; using it and ignoring --conv-norm" in x for x in lines)


def test_fine_tune_reports_success_before_and_after(trained, dataset, tmp_path, monkeypatch):
    import edgeliquid.training.trainer as training

    calls = []

    def fake_closed_loop(checkpoint, episodes, seed, workers=1):
        calls.append((Path(checkpoint).name, episodes, seed))
        return {"shift": "none", "success_rate": 0.5 if "last" in str(checkpoint) else 0.75}

    monkeypatch.setattr(training, "closed_loop_none", fake_closed_loop)
    config = _config(epochs=1, init=str(trained.last_path), eval_episodes=3, eval_seed=99)
    metrics = training.train(dataset, tmp_path, config, log=lambda s: None).metrics
    assert calls == [("last.pt", 3, 99), ("best.pt", 3, 99)]
    assert metrics["init_eval_none"]["success_rate"] == 0.5
    assert metrics["eval_none"]["success_rate"] == 0.75


def test_max_minutes_stops_early(dataset, tmp_path):
    from edgeliquid.training.trainer import train

    result = train(dataset, tmp_path, _config(epochs=50, max_minutes=1e-6), log=lambda s: None)
    assert result.metrics["stopped_by_time"] and len(result.metrics["history"]) == 1
    assert result.best_path.is_file() and result.last_path.is_file()


def test_lr_warms_up_then_decays():
    from edgeliquid.training.trainer import _set_lr

    group = {"lr": 0.0}
    config = _config(lr=1e-2, lr_final=0.1, warmup_steps=4)
    run = SimpleNamespace(
        config=config, step=0, total_steps=20, optimizer=SimpleNamespace(param_groups=[group])
    )
    lrs = []
    for step in range(21):
        run.step = step
        lrs.append(_set_lr(run))
    cosine = [0.5 * (1 + math.cos(math.pi * k / 20)) for k in range(21)]
    planned = [1e-2 * (0.1 + 0.9 * c) for c in cosine]
    assert lrs[:4] == pytest.approx([planned[k] * (k + 1) / 4 for k in range(4)])
    assert lrs[4:] == pytest.approx(planned[4:])
    assert lrs[-1] == pytest.approx(1e-3) and group["lr"] == lrs[-1]


def test_config_validation_names_the_value():
    with pytest.raises(ValueError, match="arch must be one of"):
        _config(arch="transformer")
    with pytest.raises(ValueError, match="val_fraction"):
        _config(val_fraction=1.0)
    with pytest.raises(ValueError, match="conv_norm must be one of batch, none, got 'layer'"):
        _config(conv_norm="layer")
    with pytest.raises(ValueError, match=r"model has unknown fields \['ncp_unit'\]"):
        _config(model={"ncp_unit": 16})
    with pytest.raises(ValueError, match="model fields are for a fresh model"):
        _config(model={"ncp_units": 16}, init="runs/x/best.pt")


def test_model_fields_shape_the_fresh_model(dataset, tmp_path):
    from edgeliquid.errors import EdgeLiquidError
    from edgeliquid.model import load_checkpoint
    from edgeliquid.training.trainer import train

    model = {"conv_channels": [4], "conv_kernels": [4], "conv_strides": [4], "ncp_units": 9}
    result = train(dataset, tmp_path / "a", _config(epochs=1, model=model), log=lambda _: None)
    config = load_checkpoint(result.best_path)[0].config
    assert config.conv_strides == (4,) and config.ncp_units == 9 and config.input_width == W
    too_wide = {
        "conv_channels": [64],
        "conv_kernels": [3],
        "conv_strides": [1],
        "feature_size": 512,
    }
    with pytest.raises(EdgeLiquidError, match=r"model for 24x32 episodes: conv .* weights exceed"):
        train(dataset, tmp_path / "b", _config(model=too_wide), log=lambda _: None)


# -- CLI ----------------------------------------------------------------------------------


def _cli(*args):
    from typer.testing import CliRunner

    from edgeliquid.cli import app

    return CliRunner().invoke(app, ["train", *map(str, args)])


def test_cli_trains(dataset, tmp_path):
    from edgeliquid.model import load_checkpoint

    args = ("--epochs", 1, "--seq-len", 6, "--batch-size", 4, "--conv-norm", "none")
    result = _cli(dataset, "--out", tmp_path, *args)
    assert result.exit_code == 0, result.output
    assert "parameters" in result.output and "epoch   1" in result.output
    assert load_checkpoint(tmp_path / "best.pt")[0].config.conv_norm == "none"  # pre-fix head


def test_cli_augment_preset_paper_is_recorded_and_bad_presets_refused(dataset, tmp_path):
    args = ("--epochs", 1, "--seq-len", 6, "--batch-size", 4, "--augment-preset")
    result = _cli(dataset, "--out", tmp_path, *args, "paper")
    assert result.exit_code == 0, result.output
    augment = json.loads((tmp_path / "metrics.json").read_text())["train_config"]["augment"]
    assert augment["gamma_p"] == 0.0 and augment["brightness"] == 0.4
    result = _cli(dataset, "--out", tmp_path / "outdoor", *args, "outdoor")
    assert result.exit_code == 0, result.output
    augment = json.loads((tmp_path / "outdoor/metrics.json").read_text())["train_config"]["augment"]
    assert augment["dirt_p"] > 0 and augment["glare_p"] > 0.2  # the strong preset's
    result = _cli(dataset, "--out", tmp_path / "ahead", *args, "dirt-ahead")
    assert result.exit_code == 0, result.output
    augment = json.loads((tmp_path / "ahead/metrics.json").read_text())["train_config"]["augment"]
    assert augment["dirt_p"] > 0 and augment["dirt_box"] == [0.35, 0.7, 0.35, 0.65]
    result = _cli(dataset, "--out", tmp_path / "other", *args, "sunny")
    assert result.exit_code == 1
    assert "--augment-preset must be one of strong, outdoor, dirt-ahead, paper" in result.output


def test_cli_corrupt_data_is_one_clear_line(dataset, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(dataset, broken)
    victim = broken / "episode_000003.npz"
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 3 : len(raw) // 3 + 64] = bytes(64)  # damage the compressed frames
    victim.write_bytes(bytes(raw))
    result = _cli(broken, "--out", tmp_path / "run")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        line for line in result.output.strip().splitlines() if line.startswith("edgeliquid: error:")
    ]
    assert "episode_000003.npz" in result.output and "corrupt" in result.output


def test_cli_missing_or_empty_folder(tmp_path):
    result = _cli(tmp_path / "nowhere", "--out", tmp_path / "run")
    assert result.exit_code == 1 and "no such data folder" in result.output
    result = _cli(tmp_path, "--out", tmp_path / "run")
    assert result.exit_code == 1 and "manifest.json" in result.output


def test_cli_bad_option_is_one_line(dataset, tmp_path):
    result = _cli(dataset, "--out", tmp_path, "--arch", "transformer")
    assert result.exit_code == 1 and "edgeliquid: error: arch must be one of" in result.output
