"""scripts/compare_archs.py: Wilson cells, paired differences, marked blocks, a tiny sweep."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
sys.path.insert(0, str(SCRIPTS))

import compare_archs  # noqa: E402
import compare_pages  # noqa: E402
import compare_report  # noqa: E402

from edgeliquid.evaluate import wilson_interval  # noqa: E402


def test_wilson_known_values():
    low, high = wilson_interval(8, 10)
    assert (round(low, 3), round(high, 3)) == (0.490, 0.943)
    cell = compare_report.wilson_cell(np.array([[1, 1, 1, 1, 0], [1, 1, 1, 1, 0]]))
    assert (cell["successes"], cell["flights"], cell["rate"]) == (8, 10, 0.8)
    assert cell["ci95"] == [low, high] and cell["per_seed"] == [0.8, 0.8]


def _scenes(rng, seeds=5, scenes=100, p=0.5):
    """Outcomes that depend on the scene only: every seed flies a scene the same way."""
    per_scene = rng.random(scenes) < p
    return np.tile(per_scene, (seeds, 1)).astype(float)


def test_paired_difference_keeps_the_pairing():
    a = _scenes(np.random.default_rng(0))
    same = compare_report.paired_difference(a, a.copy())
    assert same["diff"] == 0.0 and same["ci95"] == [0.0, 0.0]  # unpaired it would be ±0.14
    better = a.copy()
    better[:, np.flatnonzero(a[0] == 0)[:30]] = 1.0  # 30 more scenes flown, same elsewhere
    result = compare_report.paired_difference(better, a)
    assert result["diff"] == pytest.approx(0.30)
    low, high = result["ci95"]
    assert 0.2 < low < 0.30 < high < 0.4


def test_paired_difference_carries_seed_spread():
    a = _scenes(np.random.default_rng(1))
    stalled = a.copy()
    stalled[2] = 0.0  # one training seed never learned
    result = compare_report.paired_difference(stalled, a)
    assert result["diff"] == pytest.approx(-a[2].mean() / 5)
    assert result["ci95"][0] < result["diff"] < result["ci95"][1] <= 0.0
    with pytest.raises(ValueError, match="same scenes"):
        compare_report.paired_difference(a, a[:, :50])


def test_lowest_loss_picks_the_lr_and_nan_loses():
    assert compare_report.lowest({"0.001": 0.2, "0.002": 0.1, "0.004": float("nan")}) == "0.002"


def test_marker_rewrite_keeps_text_outside_the_block():
    begin, end = compare_pages.BEGIN, compare_pages.END
    text = f"# Title\nkept above\n{begin}\nold table\n{end}\nkept below\n"
    new = compare_pages.replace_block(text, "new table\n")
    assert new == f"# Title\nkept above\n{begin}\nnew table\n{end}\nkept below\n"
    assert compare_pages.replace_block(new, "new table") == new  # idempotent
    for bad in ("no markers", f"{end}\n{begin}", f"{begin}{begin}{end}"):
        with pytest.raises(ValueError, match="exactly one"):
            compare_pages.replace_block(bad, "x")


def test_lr_seed_may_not_be_a_compared_seed(tmp_path):
    with pytest.raises(ValueError, match="lr-seed"):
        compare_archs.Sweep(data=tmp_path, out=tmp_path, lr_grid=(1e-3,), lr_seed=2, seeds=5)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from edgeliquid.training.collect import CollectConfig, collect

    out = tmp_path_factory.mktemp("data") / "d"
    collect(out, CollectConfig(episodes=3, seed=1, height=24, width=32, hover_s=0.5))
    return out


def test_tiny_sweep_end_to_end(tiny_data, tmp_path):
    readme = tmp_path / "README.md"
    begin, end = compare_pages.BEGIN, compare_pages.END
    readme.write_text(f"# Readme\n## Results\nshipped table\n{begin}\nold\n{end}\n## Export\n")
    argv = ["--data", str(tiny_data), "--out", str(tmp_path / "runs"), "--archs", "cfc,cnn"]
    argv += ["--seeds", "1", "--epochs", "1", "--episodes", "2", "--shifts", "none,lowfps"]
    argv += ["--lr-grid", "4e-3,1e-2", "--workers", "1", "--docs", str(tmp_path / "docs")]
    argv += ["--readme", str(readme)]
    compare_archs.main(argv)
    result = json.loads((tmp_path / "docs" / "results.json").read_text())
    assert set(result["archs"]) == {"cfc", "cnn"} and result["shifts"] == ["none", "lowfps"]
    assert set(result["setup"]["lr"].values()) <= {4e-3, 1e-2}
    cell = result["archs"]["cfc"]["success"]["none"]
    assert cell["flights"] == 2 and 0 <= cell["ci95"][0] <= cell["rate"] <= cell["ci95"][1]
    assert set(result["paired"]) == {"cnn"}
    page = readme.read_text()
    assert page.startswith("# Readme\n## Results\nshipped table\n") and page.endswith("## Export\n")
    assert "old" not in page and "| cnn |" in page
    md = (tmp_path / "docs" / "results.md").read_text()
    assert "Regenerate with" in md and "--lr-grid 4e-3,1e-2" in md
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").rglob("metrics.json")}
    compare_archs.main(argv)  # resumed: nothing retrained
    assert before == {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").rglob("metrics.json")}
    compare_archs.main([*argv, "--tasks", "reach,reacquire"])  # the same runs, flown on both
    assert before == {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").rglob("metrics.json")}
    result = json.loads((tmp_path / "docs" / "results.json").read_text())
    assert result["shifts"] == ["none", "lowfps", "reacquire", "reacquire:lowfps"]
    assert result["setup"]["eval"]["tasks"] == ["reach", "reacquire"]
    cfc = result["archs"]["cfc"]
    assert cfc["mean_over_shifts"]["rate"] == cfc["success"]["lowfps"]["rate"]  # reach only
    assert set(result["paired"]["cnn"]) == {*result["shifts"], "mean of shifts"}
    evals = [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*/eval.json")]
    assert all(r["tasks"] == ["reach", "reacquire"] for r in evals) and len(evals) == 2
    assert "`TASK:SHIFT` are the other tasks" in (tmp_path / "docs" / "results.md").read_text()
    _pages_come_back_from_the_stored_runs(tmp_path, [*argv, "--tasks", "reach,reacquire"])


def _pages_come_back_from_the_stored_runs(tmp_path, argv):
    """--report-only: the store alone (no run folder, no Ray) rewrites the same pages."""
    import shutil

    docs, store = tmp_path / "docs", tmp_path / "docs" / "compare"
    stored = sorted(p.relative_to(store).as_posix() for p in store.rglob("*") if p.is_file())
    packed = [p for p in stored if p.endswith("_seed0/eval.json.gz")]
    assert [p.split("_")[0] for p in packed] == ["cfc", "cnn"], stored
    assert sum(p.startswith("lr_grid/") for p in stored) == 4  # 2 archs x 2 lrs, metrics only
    before = json.loads((docs / "results.json").read_text())
    shutil.rmtree(tmp_path / "runs")
    (docs / "results.json").unlink()
    compare_archs.main([*argv, "--report-only"])
    again = json.loads((docs / "results.json").read_text())
    assert again["archs"] == before["archs"] and again["paired"] == before["paired"]
    assert not (tmp_path / "runs").exists()  # nothing trained, nothing flown
    with pytest.raises(SystemExit, match=r"--report-only, but .* lacks runs lr_grid/gru_lr"):
        compare_archs.main([*argv, "--archs", "cfc,gru", "--report-only"])


def test_columns_name_the_task_and_only_reach_shifts_are_averaged():
    rows = [
        {"shift": "none"},  # a report from before tasks
        {"task": "reach", "shift": "winter"},
        {"task": "chain", "shift": "none"},
        {"task": "follow", "shift": "dusk"},
    ]
    columns = [compare_report.column(row) for row in rows]
    assert columns == ["none", "winter", "chain", "follow:dusk"]
    assert compare_report.shifted_columns(columns) == [1]
    with pytest.raises(SystemExit, match="unknown task 'hike'"):
        compare_archs.main(["--data", "x", "--tasks", "reach,hike"])


def test_stored_runs_are_matched_to_the_data_by_what_it_is_not_where(tmp_path):
    """A clone elsewhere (another path) reuses the store; other data is refused."""
    from edgeliquid.episodes import read_manifest
    from edgeliquid.training.collect import CollectConfig, collect

    data = tmp_path / "shipped"
    collect(data, CollectConfig(episodes=2, seed=3, height=24, width=32, hover_s=0.0))
    manifest = read_manifest(data)
    recorded = {"dir": "/elsewhere/shipped", "episodes": 2, "seed": manifest["seed"]}
    recorded |= {"hover_s": manifest["hover_s"]}
    assert compare_archs._same_data({**recorded, "dir": str(data)}, data)
    assert compare_archs._same_data(recorded, data)  # moved, collected the same way
    assert not compare_archs._same_data({**recorded, "seed": 4}, data)
    assert not compare_archs._same_data({**recorded, "episodes": 3}, data)
    assert not compare_archs._same_data({**recorded, "dir": "/elsewhere/other"}, data)
    assert compare_archs._same_data(recorded, tmp_path / "gone" / "shipped")  # report-only
    decoyed = tmp_path / "decoyed" / "shipped"  # a run from before decoys vs data with them
    collect(
        decoyed, CollectConfig(episodes=2, seed=3, height=24, width=32, hover_s=0.0, decoys=True)
    )
    assert not compare_archs._same_data(recorded, decoyed)


def test_a_failed_run_keeps_the_finished_ones_in_the_store(tmp_path, monkeypatch):
    """One failed run of a grid: the others' records are stored, so a rerun does only it."""
    import edgeliquid.tune.grid as grid
    from edgeliquid.errors import EdgeLiquidError

    sweep = compare_archs.Sweep(data=tmp_path / "data", out=tmp_path / "runs", docs=tmp_path)
    jobs = [compare_archs.Job(arch, 0, 4e-3, f"{arch}_seed0") for arch in ("cfc", "cnn")]

    def one_fails(grid_jobs, out, **_):
        done = out / "cfc_seed0"
        done.mkdir(parents=True)
        (done / "metrics.json").write_text("{}")
        (done / "eval.json").write_text('{"results": []}')
        (out / "cnn_seed0").mkdir()
        (out / "cnn_seed0" / "metrics.json").write_text("{}")  # trained, never flown
        raise EdgeLiquidError("1 of 2 runs failed: cnn_seed0/train.log")

    monkeypatch.setattr(grid, "run_grid", one_fails)
    with pytest.raises(EdgeLiquidError, match="1 of 2 runs failed"):
        compare_archs._run_missing(sweep, jobs, flies=True)
    stored = sorted(p.relative_to(sweep.store).as_posix() for p in sweep.store.rglob("*.*"))
    assert stored == ["cfc_seed0/eval.json.gz", "cfc_seed0/metrics.json"]


def test_the_setup_names_every_machine_the_runs_trained_on():
    one = {("cfc", 0): {"machine": "A"}, ("cfc", 1): {"machine": "A"}}
    assert compare_report._machines(one) == "A"
    two = {**one, ("cnn", 0): {"machine": "B"}}
    assert compare_report._machines(two) == "A (2 runs); B (1 runs)"
