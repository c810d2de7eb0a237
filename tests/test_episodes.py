"""Episode files, manifests, datasets, and `collect`: atomic writes, resume, clean labels."""

import json
import os

import numpy as np
import pytest
from typer.testing import CliRunner

from edgeliquid import episodes as data
from edgeliquid.cli import app
from edgeliquid.errors import EdgeLiquidError
from edgeliquid.sim import NavEnv
from edgeliquid.sim.expert import Expert
from edgeliquid.training.collect import CollectConfig, collect, record_episode

TINY = dict(height=18, width=32)


def make_episode(steps: int = 5, seed: int = 0) -> data.Episode:
    rng = np.random.default_rng(seed)
    return data.Episode(
        frames=rng.integers(0, 256, (steps, 18, 32, 3), dtype=np.uint8),
        commands=rng.standard_normal((steps, 4)).astype(np.float32),
        dt=np.full(steps, 0.1, np.float32),
        states=rng.standard_normal((steps, 10)).astype(np.float32),
        meta={"outcome": "success", "note": "ünïcode ok"},
    )


def tiny_collect(out, episodes: int = 3, **changes) -> dict:
    return collect(out, CollectConfig(episodes=episodes, seed=2, **{**TINY, **changes}))


def test_episode_validates_dtypes_and_shapes():
    good = make_episode()
    with pytest.raises(ValueError, match="frames must be uint8"):
        data.Episode(good.frames.astype(np.float32), good.commands, good.dt, good.states)
    with pytest.raises(ValueError, match="commands must be float32"):
        data.Episode(good.frames, good.commands[:, :3], good.dt, good.states)
    with pytest.raises(ValueError, match="dt must be float32"):
        data.Episode(good.frames, good.commands, good.dt[:-1], good.states)


def test_save_load_round_trip_leaves_no_tmp(tmp_path):
    episode = make_episode()
    path = data.save_episode(tmp_path, 123, episode)
    assert path.name == "episode_000123.npz"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["episode_000123.npz"]
    loaded = data.load_episode(path)
    for key in data.ARRAY_KEYS:
        assert np.array_equal(getattr(loaded, key), getattr(episode, key))
    assert loaded.meta == {**episode.meta, "steps": 5}


def test_a_write_that_dies_keeps_the_old_file(tmp_path, monkeypatch):
    path = data.save_episode(tmp_path, 0, make_episode(seed=1))

    def die(file, **arrays):
        file.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", die)
    with pytest.raises(KeyboardInterrupt):
        data.save_episode(tmp_path, 0, make_episode(seed=2))
    assert np.array_equal(data.load_episode(path).frames, make_episode(seed=1).frames)
    assert data.list_episodes(tmp_path) == [path]  # the leftover .tmp is not an episode


def test_unreadable_episode_files_name_the_file(tmp_path):
    path = data.save_episode(tmp_path, 1, make_episode())
    truncated = tmp_path / "episode_000002.npz"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    foreign = tmp_path / "episode_000003.npz"
    np.savez(foreign, frames=np.zeros(3))
    with pytest.raises(EdgeLiquidError, match=r"episode_000002.npz: corrupt or truncated"):
        data.load_episode(truncated)
    with pytest.raises(EdgeLiquidError, match=r"episode_000003.npz: not an edgeliquid episode"):
        data.load_episode(foreign)
    with pytest.raises(EdgeLiquidError, match=r"episode_000009.npz: no such episode file"):
        data.load_episode(tmp_path / "episode_000009.npz")


def test_list_episodes_sorted_by_index_and_only_episodes(tmp_path):
    for index in (10, 2, 1000000):
        data.save_episode(tmp_path, index, make_episode())
    (tmp_path / "episode_000003.npz.tmp").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("hi")
    assert [data.episode_index(p) for p in data.list_episodes(tmp_path)] == [2, 10, 1000000]


def test_load_dataset_checks_the_folder(tmp_path):
    with pytest.raises(EdgeLiquidError, match="no such data folder"):
        data.load_dataset(tmp_path / "missing")
    with pytest.raises(EdgeLiquidError, match=r"no manifest.json"):
        data.load_dataset(tmp_path)
    manifest = data.new_manifest(height=18, width=32, nominal_dt=0.1, shift="none", seed=0)
    data.write_manifest(tmp_path, manifest)
    with pytest.raises(EdgeLiquidError, match="did not finish"):
        data.load_dataset(tmp_path)
    data.write_manifest(tmp_path, {**manifest, "complete": True})
    with pytest.raises(EdgeLiquidError, match="holds no episodes"):
        data.load_dataset(tmp_path)
    data.write_manifest(tmp_path, {**manifest, "version": 2})
    with pytest.raises(EdgeLiquidError, match="manifest version 2"):
        data.load_dataset(tmp_path)


def test_collect_writes_a_loadable_dataset_with_manifest(tmp_path):
    manifest = tiny_collect(tmp_path)
    on_disk = json.loads((tmp_path / "manifest.json").read_text())
    assert on_disk == manifest
    assert (on_disk["format"], on_disk["version"], on_disk["complete"]) == (data.FORMAT, 1, True)
    assert (on_disk["height"], on_disk["width"], on_disk["nominal_dt"]) == (18, 32, 0.1)
    assert [e["index"] for e in on_disk["episodes"]] == [0, 1, 2]
    episodes = data.load_dataset(tmp_path)
    assert [e.steps for e in episodes] == [e["steps"] for e in on_disk["episodes"]]
    assert all(e.frames.shape[1:] == (18, 32, 3) for e in episodes)
    assert episodes[0].dt[0] == pytest.approx(0.1)


def test_labels_are_the_clean_expert_commands_while_noise_moves_the_drone():
    config = CollectConfig(episodes=1, seed=3, action_noise=0.3, **TINY)
    noisy = record_episode(config, 0)
    clean = record_episode(CollectConfig(episodes=1, seed=3, action_noise=0.0, **TINY), 0)
    assert not np.allclose(noisy.states[10:20, :3], clean.states[10:20, :3], atol=0.05)
    env, expert = NavEnv(config.env_config()), Expert()
    env.reset(seed=noisy.meta["episode_seed"])
    for t in range(noisy.steps):  # put the drone where it was; the expert must say the label
        x, y, z, yaw, vx, vy, vz, yaw_rate = noisy.states[t, :8].astype(float)
        env.position, env.yaw = np.array([x, y, z]), yaw
        env.velocity, env.yaw_rate, env.dt = np.array([vx, vy, vz]), yaw_rate, float(noisy.dt[t])
        assert np.allclose(expert.act(env), noisy.commands[t], atol=2e-3), f"step {t}"


def test_resume_after_a_kill_completes_without_duplicates(tmp_path):
    tiny_collect(tmp_path, episodes=4)
    reference = {i: data.load_episode(data.episode_path(tmp_path, i)) for i in range(4)}
    kept = data.episode_path(tmp_path, 0).stat().st_mtime_ns
    # what a kill leaves: a manifest not marked complete, a half-written .tmp, a missing episode
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    data.write_manifest(tmp_path, {**manifest, "complete": False, "episodes": []})
    data.episode_path(tmp_path, 2).unlink()
    (tmp_path / ".episode_000002.npz.k3x9q1.tmp").write_bytes(b"PK\x03\x04 torn")
    (tmp_path / "episode_000003.npz.tmp").write_bytes(b"PK\x03\x04 torn")  # older versions'
    resumed = tiny_collect(tmp_path, episodes=4)
    assert resumed["complete"] and [e["index"] for e in resumed["episodes"]] == [0, 1, 2, 3]
    names = [f"episode_00000{i}.npz" for i in range(4)]
    assert sorted(os.listdir(tmp_path)) == [*names, "manifest.json"]
    assert data.episode_path(tmp_path, 0).stat().st_mtime_ns == kept  # skipped, not redone
    again = data.load_episode(data.episode_path(tmp_path, 2))
    assert np.array_equal(again.frames, reference[2].frames)
    assert np.array_equal(again.commands, reference[2].commands)


def test_resume_refuses_other_settings(tmp_path):
    tiny_collect(tmp_path, episodes=1)
    with pytest.raises(EdgeLiquidError, match=r"other settings.*seed 2 vs 5"):
        collect(tmp_path, CollectConfig(episodes=1, seed=5, **TINY))


def test_collect_data_is_the_same_for_any_number_of_workers(tmp_path):
    tiny_collect(tmp_path / "one", episodes=3, workers=1)
    tiny_collect(tmp_path / "two", episodes=3, workers=2)
    for i in range(3):
        a = data.load_episode(data.episode_path(tmp_path / "one", i))
        b = data.load_episode(data.episode_path(tmp_path / "two", i))
        assert np.array_equal(a.frames, b.frames) and np.array_equal(a.commands, b.commands)


def test_collect_cli(tmp_path):
    runner = CliRunner()
    args = ["collect", "--out", str(tmp_path), "--episodes", "2", "--height", "18", "--width", "32"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 episodes" in result.output and len(data.load_dataset(tmp_path)) == 2
    bad = runner.invoke(app, [*args[:5], "--shift", "summer"])
    assert bad.exit_code == 1
    assert "edgeliquid: error: unknown shift 'summer'" in bad.output


def test_hover_records_the_stop_after_arrival():
    hover = record_episode(CollectConfig(episodes=1, seed=4, hover_s=2.0, **TINY), 0)
    arrive = record_episode(CollectConfig(episodes=1, seed=4, hover_s=0.0, **TINY), 0)
    assert hover.meta["outcome"] == arrive.meta["outcome"] == "success"
    assert hover.steps >= arrive.steps + 19  # 2 s more at 10 Hz (jitter-free)
    assert np.array_equal(hover.frames[: arrive.steps], arrive.frames)  # same flight until then
    distance = hover.states[:, 8]
    assert distance[arrive.steps :].max() < 2.0  # the hover stays at the target
    forward = hover.commands[arrive.steps :, 0]
    assert np.abs(forward).mean() < 0.25  # and its labels say stop
