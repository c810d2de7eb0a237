"""The study's report: the Pareto front, front.md, front.png and best.onnx (no Ray, no training)."""

from __future__ import annotations

import hashlib
import json

from onnx_fixtures import write_model

from edgeliquid.paths import is_png
from edgeliquid.runtime.engine import OnnxPolicy
from edgeliquid.tune.front import best_trial, markdown, pareto_front, trial_line, write_report

STUDY = {
    "space_file": "configs/tune-small.yaml",
    "data": ["/data/shipped"],
    "space": {
        "eval": {"shifts": ["none", "dusk"], "episodes": 20, "seed": 12345},
        "train": {"seeds": [0, 1]},
    },
}


def trial(id_, success, latency, status="ok"):
    return {
        "id": id_, "status": status, "success": success, "success_worst_seed": success - 0.1,
        "latency_us": latency, "params": 20308, "size_bytes": 100_000, "seconds": 90.0,
        "point": {"arch": "cfc", "lr": 0.0031, "ncp_units": 24}, "model": "seed-0/model.onnx",
    }  # fmt: skip


TRIALS = [
    trial("slow-good", 0.9, 300.0),
    trial("fast-poor", 0.4, 60.0),
    trial("dominated", 0.4, 200.0),  # fast-poor is as good and faster
    trial("middle", 0.7, 120.0),
    trial("tie-slower", 0.9, 310.0),  # slow-good is as good and faster
    {"id": "broken", "status": "failed", "error": "EdgeLiquidError: training diverged"},
]


def test_the_front_is_the_non_dominated_trials_fastest_first():
    front = pareto_front(TRIALS)
    assert [t["id"] for t in front] == ["fast-poor", "middle", "slow-good"]
    assert best_trial(front)["id"] == "slow-good"
    assert best_trial([]) is None


def test_progress_lines():
    line = trial_line(TRIALS[3], done=4, target=16)
    assert line.startswith("trial 4/16 middle: success 0.70 (worst seed 0.60) | p50 120 µs")
    assert "20,308 params | 97.7 KB | cfc, ncp_units 24, lr 0.0031 | 1.5 min" in line
    failed = trial_line(TRIALS[-1], done=5, target=16)
    assert failed == "trial 5/16 broken: failed after 0.0 min: EdgeLiquidError: training diverged"


def test_markdown_lists_the_front_then_every_trial():
    page = markdown(TRIALS, STUDY)
    front, everything = page.split("## All trials")
    assert "6 finished trials (1 failed)" in page and "shifts none, dusk (20 episodes" in page
    assert "| slow-good (best.onnx) | 0.90 | 0.80 | 300 | 20,308 | 97.7 |" in front
    assert "dominated" not in front and "dominated" in everything
    assert "| broken | failed: EdgeLiquidError: training diverged |" in everything


def test_write_report_copies_the_best_model_with_its_own_sidecar(tmp_path):
    for t in TRIALS:
        folder = tmp_path / "trials" / t["id"]
        (folder / "seed-0").mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps({k: v for k, v in t.items() if k != "id"}))
    model = write_model(tmp_path / "trials" / "slow-good" / "seed-0" / "model.onnx")
    best = write_report(tmp_path, STUDY)
    assert best["id"] == "slow-good"
    assert "## Pareto front" in (tmp_path / "front.md").read_text()
    assert is_png(tmp_path / "front.png")
    copied = tmp_path / "best.onnx"
    assert copied.read_bytes() == model.read_bytes()
    digest = hashlib.sha256(copied.read_bytes()).hexdigest()
    assert (tmp_path / "best.onnx.sha256").read_text() == f"{digest}  best.onnx\n"
    OnnxPolicy(copied)  # the runtime opens it (hash, metadata, sidecar)
