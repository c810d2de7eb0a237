"""The grid engine under scripts/compare_archs.py: a failed run is named, the others are kept,
and a run the local Ray cannot place is refused instead of waiting forever."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from edgeliquid.errors import EdgeLiquidError
from edgeliquid.training.config import TrainConfig
from edgeliquid.tune.grid import FlightPlan, GridJob, run_grid

TINY = dict(epochs=1, batch_size=8, seq_len=8, seq_shift=4, model={"feature_size": 4})


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    from edgeliquid.training.collect import CollectConfig, collect

    out = tmp_path_factory.mktemp("grid-data") / "episodes"
    collect(out, CollectConfig(episodes=3, seed=0, height=24, width=32, hover_s=0.0))
    return out


@pytest.mark.timeout(240)
def test_a_failed_run_is_named_and_the_others_are_kept(tiny_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths, as on compare_archs's command line
    data = Path(os.path.relpath(tiny_data, tmp_path))
    plan = FlightPlan(episodes=1, seed=777, shifts=("none",), workers=1)
    good = GridJob("good", Path("good"), (data,), TrainConfig(**TINY), plan)
    bad = GridJob("bad", Path("bad"), (Path("no-data"),), TrainConfig(**TINY), plan)
    lines: list[str] = []
    with pytest.raises(EdgeLiquidError, match=rf"1 of 2 runs failed: {tmp_path}/bad/train.log$"):
        run_grid([good, bad], Path("."), cpus=2, echo=lines.append)
    metrics = json.loads((tmp_path / "good" / "metrics.json").read_text())
    report = json.loads((tmp_path / "good" / "eval.json").read_text())
    assert metrics["train_config"]["epochs"] == 1 and len(report["episode_results"]) == 1
    assert len(lines) == 1 and lines[0].startswith("[1/2] good: best val ")
    assert (
        "failed: EdgeLiquidError: no such data folder"
        in (tmp_path / "bad" / "train.log").read_text()
    )


@pytest.mark.timeout(120)
def test_a_run_that_cannot_be_placed_is_refused(tiny_data, tmp_path):
    job = GridJob("gpu", tmp_path / "gpu", (tiny_data,), TrainConfig(**TINY))
    with pytest.raises(EdgeLiquidError, match="needs 1 CPUs and 1 GPUs, the local Ray has 1 and 0"):
        run_grid([job], tmp_path, gpus_per_job=1, cpus=1)
    assert not (tmp_path / "gpu").exists()
