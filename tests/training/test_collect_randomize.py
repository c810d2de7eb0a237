"""`collect --randomize`: the same flights in other light, recorded in the manifest, resumable."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from edgeliquid import episodes as data
from edgeliquid.cli import app
from edgeliquid.errors import EdgeLiquidError
from edgeliquid.training.collect import CollectConfig, collect, record_episode

SMALL = dict(height=36, width=64, seed=3, hover_s=0.0)


def test_randomized_episodes_fly_the_same_flight_in_other_light():
    plain = [record_episode(CollectConfig(episodes=2, **SMALL), i) for i in range(2)]
    lit = [record_episode(CollectConfig(episodes=2, randomize=True, **SMALL), i) for i in range(2)]
    again = record_episode(CollectConfig(episodes=2, randomize=True, **SMALL), 1)
    assert np.array_equal(again.frames, lit[1].frames)  # deterministic for a seed
    for p, r in zip(plain, lit, strict=True):
        assert np.array_equal(p.commands, r.commands) and np.array_equal(p.states, r.states)
        assert np.abs(p.frames.astype(int) - r.frames.astype(int)).mean() > 2.0
        assert "appearance" in r.meta and "appearance" not in p.meta
    assert lit[0].meta["appearance"] != lit[1].meta["appearance"]


def test_manifest_records_randomize_and_resume_refuses_a_mismatch(tmp_path):
    manifest = collect(tmp_path, CollectConfig(episodes=1, randomize=True, **SMALL))
    assert manifest["randomize"] is True
    with pytest.raises(EdgeLiquidError, match=r"other settings.*randomize True vs False"):
        collect(tmp_path, CollectConfig(episodes=2, **SMALL))
    resumed = collect(tmp_path, CollectConfig(episodes=2, randomize=True, **SMALL))
    assert len(resumed["episodes"]) == 2


def test_collect_cli_randomize(tmp_path):
    args = ["collect", "--out", str(tmp_path), "--episodes", "1", "--height", "18", "--width", "32"]
    result = CliRunner().invoke(app, [*args, "--randomize", "--hover", "0"])
    assert result.exit_code == 0, result.output
    assert data.read_manifest(tmp_path)["randomize"] is True
    again = CliRunner().invoke(app, [*args, "--no-randomize", "--hover", "0"])
    assert again.exit_code == 1 and "randomize True vs False" in again.output


def test_decoys_are_recorded_and_an_older_manifest_means_none(tmp_path):
    manifest = collect(tmp_path / "d", CollectConfig(episodes=1, decoys=True, **SMALL))
    assert manifest["decoys"] is True
    assert "objects" in data.load_dataset(tmp_path / "d")[0].meta["decoys"]
    with pytest.raises(EdgeLiquidError, match=r"other settings.*decoys True vs False"):
        collect(tmp_path / "d", CollectConfig(episodes=2, **SMALL))
    collect(tmp_path / "old", CollectConfig(episodes=1, **SMALL))
    path = tmp_path / "old" / data.MANIFEST
    old = json.loads(path.read_text())
    del old["decoys"]  # written before the field existed
    path.write_text(json.dumps(old))
    assert len(collect(tmp_path / "old", CollectConfig(episodes=2, **SMALL))["episodes"]) == 2


def test_glare_ahead_is_recorded_and_an_older_manifest_means_off(tmp_path):
    config = CollectConfig(episodes=1, randomize=True, glare_ahead=True, **SMALL)
    assert collect(tmp_path / "g", config)["glare_ahead"] is True
    with pytest.raises(EdgeLiquidError, match=r"other settings.*glare_ahead True vs False"):
        collect(tmp_path / "g", CollectConfig(episodes=2, randomize=True, **SMALL))
    with pytest.raises(ValueError, match="needs randomize"):
        CollectConfig(episodes=1, glare_ahead=True, **SMALL)
    collect(tmp_path / "old", CollectConfig(episodes=1, randomize=True, **SMALL))
    path = tmp_path / "old" / data.MANIFEST
    old = json.loads(path.read_text())
    del old["glare_ahead"]  # written before the field existed
    path.write_text(json.dumps(old))
    resumed = collect(tmp_path / "old", CollectConfig(episodes=2, randomize=True, **SMALL))
    assert len(resumed["episodes"]) == 2
