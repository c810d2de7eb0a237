"""Reference models beside a study's front: measured on the space's plan once per file
version, listed with the trials that dominate them, drawn on front.png (no Ray, no training)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from onnx_fixtures import write_model
from test_front import STUDY, TRIALS

from edgeliquid.errors import EdgeLiquidError
from edgeliquid.paths import is_png
from edgeliquid.tune.front import markdown, plot
from edgeliquid.tune.reference import check_references, load_references, measured
from edgeliquid.tune.spacefile import load_space

SPACE = Path(__file__).with_name("tiny-space.yaml")


def reference(id_, success, latency):
    return {
        "id": id_, "path": f"models/{id_}.onnx", "success": success, "latency_us": latency,
        "success_per_shift": {"none": 1.0, "dusk": success}, "params": 20660,
        "size_bytes": 150_000, "arch": "cfc",
    }  # fmt: skip


def test_references_are_listed_with_the_trials_that_dominate_them(tmp_path):
    refs = [reference("slow", 0.85, 305.0), reference("fast", 1.0, 100.0)]
    page = markdown(TRIALS, STUDY, refs)
    front, everything = page.split("## All trials")
    assert "## Reference models" not in everything
    assert "## Reference models" in front and "trained on their own recipe" in front
    assert "| slow (cfc) | 0.85 | 305 | 20,660 | 146.5 | none 1.00, dusk 0.85 |" in front
    assert front.split("| slow (cfc) ")[1].split("\n")[0].endswith("| dominated by slow-good |")
    assert front.split("| fast (cfc) ")[1].split("\n")[0].endswith("| on the front |")
    assert "## Reference models" not in markdown(TRIALS, STUDY)
    plot(TRIALS, tmp_path / "front.png", refs)
    assert is_png(tmp_path / "front.png")


def test_a_reference_is_measured_once_per_file_version(tmp_path):
    space = load_space(SPACE)
    model = write_model(tmp_path / "shipped.onnx", height=24, width=32)
    lines: list[str] = []
    measured(tmp_path / "run", space, [model], lines.append)
    (point,) = load_references(tmp_path / "run")
    assert point["id"] == "shipped" and set(point["success_per_shift"]) == {"none", "dusk"}
    assert 0 <= point["success"] <= 1 and point["latency_us"] > 0 and point["size_bytes"] > 0
    assert lines[-1].startswith("reference shipped: success ")
    stored = (tmp_path / "run" / "references" / "shipped.json").read_text()

    measured(tmp_path / "run", space, [model], lines.append)  # same bytes: not flown again
    assert len(lines) == 2 and (tmp_path / "run" / "references" / "shipped.json").read_text() == (
        stored
    )
    write_model(model, height=24, width=32, gain=0.5)  # edited: measured again
    measured(tmp_path / "run", space, [model], lines.append)
    assert len(lines) == 4
    assert json.loads(stored)["sha256"] != load_references(tmp_path / "run")[0]["sha256"]


def test_bad_references_are_refused_before_anything_runs(tmp_path):
    with pytest.raises(EdgeLiquidError, match=r"--reference .*missing\.onnx: no such file"):
        check_references([tmp_path / "missing.onnx"])
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(EdgeLiquidError, match=r"--reference .*junk\.onnx: "):
        check_references([junk])
    (tmp_path / "a").mkdir()
    one = write_model(tmp_path / "m.onnx")
    two = write_model(tmp_path / "a" / "m.onnx")
    with pytest.raises(EdgeLiquidError, match="two files are named m"):
        check_references([one, two])
