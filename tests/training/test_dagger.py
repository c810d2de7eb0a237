"""DAgger: `collect --policy` (a policy flies, the expert labels) and multi-folder `train`."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from edgeliquid.errors import EdgeLiquidError
from edgeliquid.training.collect import CollectConfig, collect

H, W = 36, 64
SMALL = dict(height=H, width=W, hover_s=0.0)


@pytest.fixture(scope="module")
def policies(tmp_path_factory):
    """A tiny random .pt checkpoint and a tiny .onnx step graph, both at 36x64."""
    from onnx_fixtures import write_model
    from tiny import TINY

    from edgeliquid.model import build_policy, save_checkpoint

    folder = tmp_path_factory.mktemp("policies")
    config = dataclasses.replace(TINY, input_height=H, input_width=W)
    pt = save_checkpoint(folder / "tiny.pt", build_policy(config).eval())
    return {
        "pt": pt,
        "onnx": write_model(folder / "tiny.onnx", height=H, width=W),
        "onnx2": write_model(folder / "other.onnx", height=H, width=W, seed=1),
    }


def _episodes(folder):
    from edgeliquid.episodes import load_dataset

    return load_dataset(folder)


def _expert_labels(config: CollectConfig, episode) -> np.ndarray:
    """The expert called afresh on each recorded frame's privileged state."""
    from edgeliquid.sim import NavEnv
    from edgeliquid.sim.env import Privileged
    from edgeliquid.sim.expert import Expert

    env = NavEnv(config.env_config())
    env.reset(seed=episode.meta["episode_seed"])  # the scene: target and trees
    expert = Expert()
    labels = []
    for state, dt in zip(episode.states, episode.dt, strict=True):
        view = Privileged(state[:8].astype(np.float64), env.scene.target, env.scene.trees, dt)
        labels.append(expert.act(view))
    return np.array(labels)


@pytest.mark.parametrize("kind", ["pt", "onnx"])
def test_policy_flies_and_the_expert_labels_every_frame(policies, tmp_path, kind):
    config = CollectConfig(episodes=2, seed=3, policy=str(policies[kind]), **SMALL)
    manifest = collect(tmp_path / "dagger", config)
    assert manifest["policy"] == str(policies[kind]) and manifest["beta"] == 0.0
    assert len(manifest["policy_sha256"]) == 64
    expert_run = collect(tmp_path / "expert", CollectConfig(episodes=2, seed=3, **SMALL))
    assert "policy" not in expert_run and expert_run["policy_sha256"] is None
    flown, reference = _episodes(tmp_path / "dagger"), _episodes(tmp_path / "expert")
    for ours, theirs in zip(flown, reference, strict=True):
        np.testing.assert_allclose(ours.commands, _expert_labels(config, ours), atol=1e-4)
        assert ours.meta["expert_flown_steps"] == 0
        np.testing.assert_array_equal(ours.states[0], theirs.states[0])  # same start
        steps = min(ours.steps, theirs.steps)
        assert not np.allclose(ours.states[:steps, :3], theirs.states[:steps, :3], atol=0.1)


def test_beta_one_flies_the_expert_exactly(policies, tmp_path):
    common = dict(episodes=1, seed=5, action_noise=0.0, **SMALL)
    collect(tmp_path / "mixed", CollectConfig(policy=str(policies["onnx"]), beta=1.0, **common))
    collect(tmp_path / "expert", CollectConfig(**common))
    (mixed,), (expert,) = _episodes(tmp_path / "mixed"), _episodes(tmp_path / "expert")
    np.testing.assert_array_equal(mixed.states, expert.states)
    np.testing.assert_array_equal(mixed.commands, expert.commands)
    assert mixed.meta["expert_flown_steps"] == mixed.steps - 1  # the terminal frame is not flown


def test_resume_refuses_another_policy_and_continues_with_the_same(policies, tmp_path):
    out = tmp_path / "d"
    collect(out, CollectConfig(episodes=1, policy=str(policies["onnx"]), **SMALL))
    with pytest.raises(EdgeLiquidError, match="policy_sha256"):
        collect(out, CollectConfig(episodes=2, policy=str(policies["onnx2"]), **SMALL))
    with pytest.raises(EdgeLiquidError, match="policy_sha256"):
        collect(out, CollectConfig(episodes=2, **SMALL))  # the expert instead
    manifest = collect(out, CollectConfig(episodes=2, policy=str(policies["onnx"]), **SMALL))
    assert manifest["complete"] and len(manifest["episodes"]) == 2


def test_workers_give_the_same_episodes(policies, tmp_path):
    config = dict(episodes=2, seed=1, policy=str(policies["onnx"]), **SMALL)
    collect(tmp_path / "one", CollectConfig(workers=1, **config))
    collect(tmp_path / "two", CollectConfig(workers=2, **config))
    for a, b in zip(_episodes(tmp_path / "one"), _episodes(tmp_path / "two"), strict=True):
        np.testing.assert_array_equal(a.states, b.states)
        np.testing.assert_array_equal(a.commands, b.commands)


def _cli(*args):
    from edgeliquid.cli import app

    return CliRunner().invoke(app, [*map(str, args)])


def test_cli_reports_the_policy_success(policies, tmp_path):
    out = tmp_path / "d"
    args = ("collect", "--out", out, "--episodes", 2, "--height", H, "--width", W, "--hover", 0)
    result = _cli(*args, "--policy", policies["onnx"])
    assert result.exit_code == 0, result.output
    entries = json.loads((out / "manifest.json").read_text())["episodes"]
    rate = sum(e["outcome"] == "success" for e in entries) / 2
    frames = sum(e["steps"] for e in entries)
    assert f"policy success {rate:.2f}, expert-labelled {frames:,} frames" in result.output


def _one_error_line(result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgeliquid: error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize("case", ["corrupt pt", "corrupt onnx", "missing", "suffix", "size"])
def test_cli_bad_policy_is_one_line(policies, tmp_path, case):
    path = {
        "corrupt pt": tmp_path / "bad.pt",
        "corrupt onnx": tmp_path / "bad.onnx",
        "missing": tmp_path / "nowhere.onnx",
        "suffix": tmp_path / "model.txt",
        "size": policies["onnx"],
    }[case]
    if case in ("corrupt pt", "corrupt onnx", "suffix"):
        path.write_bytes(b"\x00garbage, not a model" * 10)
    size = (24, 32) if case == "size" else (H, W)
    out = tmp_path / "d"
    result = _cli(
        "collect", "--out", out, "--episodes", 1, "--height", size[0], "--width", size[1],
        "--policy", path,
    )  # fmt: skip
    line = _one_error_line(result)
    assert str(path) in line or path.name in line
    assert not list(out.glob("episode_*.npz"))


# -- multi-folder train ----------------------------------------------------------------------


def _train_config():
    from edgeliquid.training.config import TrainConfig

    return TrainConfig(epochs=1, seq_len=8, seq_shift=8, batch_size=8, val_fraction=0.4)


def test_train_on_two_folders_records_both(policies, tmp_path):
    from edgeliquid.model import load_checkpoint
    from edgeliquid.training.trainer import train

    expert, dagger = tmp_path / "expert", tmp_path / "dagger"
    collect(expert, CollectConfig(episodes=2, **SMALL))
    collect(dagger, CollectConfig(episodes=2, policy=str(policies["onnx"]), **SMALL))
    result = train([expert, dagger], tmp_path / "run", _train_config(), log=lambda line: None)
    data = json.loads((tmp_path / "run" / "metrics.json").read_text())["data"]
    assert data["dirs"] == [str(expert), str(dagger)] and data["episodes"] == 4
    assert data["folders"][1]["policy_sha256"] == collect_sha(dagger)
    assert load_checkpoint(result.best_path)[1]["data"]["dirs"] == data["dirs"]


def collect_sha(folder) -> str:
    return json.loads((folder / "manifest.json").read_text())["policy_sha256"]


def test_each_folder_is_split_as_alone():
    from edgeliquid.training.windows import split_episodes, split_folders

    assert split_folders([9], 0.3, 4) == split_episodes(9, 0.3, 4)
    train_ids, val_ids = split_folders([9, 5], 0.3, 4)
    alone = split_episodes(9, 0.3, 4)[1]
    assert [i for i in val_ids if i < 9] == alone
    assert sorted(train_ids + val_ids) == list(range(14)) and any(i >= 9 for i in val_ids)


def _tiny_folder(folder, height: int, width: int, nominal_dt: float = 0.1):
    from edgeliquid import episodes as data

    folder.mkdir()
    steps = 10
    frames = np.full((steps, height, width, 3), 90, np.uint8)
    zeros = np.zeros((steps, 4), np.float32)
    episode = data.Episode(frames, zeros, np.full(steps, 0.1, np.float32), zeros[:, :2])
    data.save_episode(folder, 0, episode)
    manifest = data.new_manifest(
        height=height, width=width, nominal_dt=nominal_dt, shift="none", seed=0
    )
    manifest.update(episodes=[{"file": "episode_000000.npz", "steps": steps}], complete=True)
    data.write_manifest(folder, manifest)
    return folder


@pytest.mark.parametrize("other", [(24, 40, 0.1), (36, 64, 0.05)])
def test_cli_train_refuses_folders_that_disagree(tmp_path, other):
    first = _tiny_folder(tmp_path / "a", H, W)
    second = _tiny_folder(tmp_path / "b", *other)
    line = _one_error_line(_cli("train", first, second, "--out", tmp_path / "run"))
    assert "data folders disagree" in line and str(second) in line
    assert not (tmp_path / "run" / "best.pt").exists()


def test_cli_train_refuses_a_folder_given_twice(tmp_path):
    first = _tiny_folder(tmp_path / "a", H, W)
    line = _one_error_line(_cli("train", first, tmp_path / "." / "a", "--out", tmp_path / "r"))
    assert "given twice" in line
