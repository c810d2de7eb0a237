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
    _older_manifest_resumes(tmp_path / "old", "decoys")


def _older_manifest_resumes(folder, key, **settings):
    """A folder whose manifest predates `key` resumes with the setting's old meaning."""
    collect(folder, CollectConfig(episodes=1, **settings, **SMALL))
    path = folder / data.MANIFEST
    old = json.loads(path.read_text())
    del old[key]  # written before the field existed
    path.write_text(json.dumps(old))
    assert len(collect(folder, CollectConfig(episodes=2, **settings, **SMALL))["episodes"]) == 2


def test_glare_ahead_is_recorded_and_an_older_manifest_means_off(tmp_path):
    config = CollectConfig(episodes=1, randomize=True, glare_ahead=True, **SMALL)
    assert collect(tmp_path / "g", config)["glare_ahead"] is True
    with pytest.raises(EdgeLiquidError, match=r"other settings.*glare_ahead True vs False"):
        collect(tmp_path / "g", CollectConfig(episodes=2, randomize=True, **SMALL))
    with pytest.raises(ValueError, match="needs randomize"):
        CollectConfig(episodes=1, glare_ahead=True, **SMALL)
    _older_manifest_resumes(tmp_path / "old", "glare_ahead", randomize=True)


def test_decoy_mix_is_recorded_and_an_older_manifest_means_v2(tmp_path):
    config = CollectConfig(episodes=1, decoys=True, decoy_mix="dense-dirt", **SMALL)
    manifest = collect(tmp_path / "m", config)
    assert manifest["decoy_mix"] == "dense-dirt"
    assert "lens_dirt" in data.load_dataset(tmp_path / "m")[0].meta["decoys"]
    with pytest.raises(EdgeLiquidError, match=r"other settings.*decoy_mix 'dense-dirt' vs 'v2'"):
        collect(tmp_path / "m", CollectConfig(episodes=2, decoys=True, **SMALL))
    with pytest.raises(ValueError, match="needs decoys"):
        CollectConfig(episodes=1, decoy_mix="dense", **SMALL)
    with pytest.raises(ValueError, match="unknown decoy mix 'thick'; choose one of v2, dense"):
        CollectConfig(episodes=1, decoys=True, decoy_mix="thick", **SMALL)
    _older_manifest_resumes(tmp_path / "old", "decoy_mix", decoys=True)


def test_collect_cli_decoy_mix_errors_in_one_line(tmp_path):
    args = ["collect", "--out", str(tmp_path / "x"), "--episodes", "1", "--decoy-mix", "dense"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0 and "needs decoys" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "x").exists()
