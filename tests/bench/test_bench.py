"""The benchmark: a --quick smoke run checked for its JSON schema (not its timings), the ncps and
LTC twins of the policy, the statistics, and the torch-free path for .onnx files."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny import TINY
from typer.testing import CliRunner

from edgeliquid.bench import report as bench
from edgeliquid.bench import rows as bench_rows
from edgeliquid.cli import app
from edgeliquid.model import NavPolicy, save_checkpoint

runner = CliRunner()
MEASURED = ("p50_us", "p90_us", "p99_us", "mean_us", "steps_per_s", "speedup_vs_torch")
MEASURED += ("floor_ratio", "peak_rss_mib", "samples", "file_bytes", "cdf_us", "extra")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("bench") / "tiny.pt"
    return save_checkpoint(path, NavPolicy(TINY).eval())


@pytest.fixture(scope="module")
def quick_run(checkpoint, tmp_path_factory):
    """One `edgeliquid bench --quick` of the tiny checkpoint with every output asked for."""
    out = tmp_path_factory.mktemp("quick")
    args = ["bench", str(checkpoint), "--quick", "--workdir", str(out / "work")]
    args += ["--json", str(out / "bench.json"), "--plot", str(out / "cdf.png")]
    result = runner.invoke(app, [*args, "--markdown", str(out / "table.md")])
    assert result.exit_code == 0, result.output
    return out, json.loads((out / "bench.json").read_text()), result.output


@pytest.mark.slow
def test_quick_run_writes_every_row_with_the_schema(quick_run):
    out, result, _ = quick_run
    assert result["schema"] == bench.SCHEMA
    assert [row["key"] for row in result["rows"]] == list(bench.ROWS)
    assert all(row["status"] == "ok" for row in result["rows"]), result["rows"]
    for row in result["rows"]:
        assert set(MEASURED) <= set(row)
        assert row["p50_us"] <= row["p90_us"] <= row["p99_us"] and row["p50_us"] > 0
        assert len(row["cdf_us"]) == 101 and row["cdf_us"] == sorted(row["cdf_us"])
        assert row["samples"] >= 20
    assert result["machine"]["cpu"] and len(result["machine"]["load_avg_end"]) == 3
    assert {"torch", "onnxruntime", "numpy", "ncps"} <= set(result["versions"])
    assert result["settings"]["quick"] and result["settings"]["unrolled_steps"] == 4
    assert set(result["targets"]) == {
        "onnx_step_speedup_vs_torch",
        "onnx_step_vs_floor",
        "daemon_vs_bare_onnx_step",
    }
    assert all(isinstance(t["met"], bool) for t in result["targets"].values())
    assert (out / "cdf.png").stat().st_size > 0 and (out / "cdf.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_quick_run_rows_measure_what_they_claim(quick_run, checkpoint):
    out, result, _ = quick_run
    rows = {row["key"]: row for row in result["rows"]}
    for key in ("onnx_step", "onnx_fixed", "onnx_int8", "onnx_unrolled"):
        assert rows[key]["file_bytes"] == (out / "work" / f"{key}.onnx").stat().st_size
    assert rows["onnx_unrolled"]["extra"]["steps_per_call"] == 4
    for key in ("daemon", "daemon_udp"):
        daemon = rows[key]["extra"]  # every tick stepped the policy: no holds were timed
        assert daemon["holds"] == 0 and daemon["policy_steps"] == daemon["ticks"]
        assert daemon["sink_errors"] == 0  # every message went out (as a loopback datagram)
        assert daemon["rounds"] >= 1 and daemon["paired_bare_p50_us"] > 0
        paired = daemon["paired_ratio"]
        assert paired == pytest.approx(rows[key]["p50_us"] / daemon["paired_bare_p50_us"])
    # Each row ran in its own process: ONNX rows never load torch, so their peak RSS is smaller.
    assert max(rows[k]["peak_rss_mib"] for k in ("onnx_step", "engine", "daemon")) < min(
        rows[k]["peak_rss_mib"] for k in bench.TORCH_ROWS
    )
    assert rows["torch_eager"]["speedup_vs_torch"] == pytest.approx(1.0)
    assert result["model"]["flops_per_step"] == result["floor"]["flops_per_step"] > 0
    floor = result["floor"]["flops_per_step"] / (result["floor"]["sgemm_gflops"] * 1e3)
    assert result["floor"]["floor_us"] == pytest.approx(floor)


@pytest.mark.slow
def test_table_is_rendered_from_the_json(quick_run):
    out, result, printed = quick_run
    table = (out / "table.md").read_text().strip()
    assert table in printed and table == bench.markdown(result)
    assert table.count("\n|") == len(bench.ROWS) + 3  # head, separator, rows, floor
    again = runner.invoke(app, ["bench", "--from-json", str(out / "bench.json")])
    assert again.exit_code == 0 and table in again.output


@pytest.mark.slow
def test_onnx_model_runs_torch_free_rows_and_skips_the_rest(quick_run, tmp_path):
    out, _, _ = quick_run
    model = out / "work" / "onnx_step.onnx"
    args = [
        "bench",
        str(model),
        "--quick",
        "--iterations",
        "30",
        "--json",
        str(tmp_path / "b.json"),
    ]
    assert runner.invoke(app, args).exit_code == 0
    rows = {row["key"]: row for row in json.loads((tmp_path / "b.json").read_text())["rows"]}
    assert {k for k, row in rows.items() if row["status"] == "ok"} == {
        "onnx_step",
        "engine",
        "daemon",
        "daemon_udp",
    }
    assert all("checkpoint" in row["reason"] for row in rows.values() if row["status"] != "ok")
    assert rows["onnx_step"]["floor_ratio"] is None and rows["onnx_step"]["samples"] == 30


def test_ncps_twin_computes_what_our_policy_computes(checkpoint):
    from edgeliquid.model import load_checkpoint

    ours = load_checkpoint(checkpoint)[0]
    twin = bench_rows.ncps_policy(load_checkpoint(checkpoint)[0])
    assert type(twin.cfc).__module__.startswith("ncps.torch")
    frames = torch.randint(0, 256, (3, 24, 32, 3), dtype=torch.uint8)
    with torch.no_grad():
        state_a = state_b = ours.initial_state(3)
        for _ in range(4):
            command_a, state_a = ours.step(frames, state_a, 0.07)
            command_b, state_b = twin.step(frames, state_b, 0.07)
    torch.testing.assert_close(command_b, command_a)
    torch.testing.assert_close(state_b, state_a)


def test_ltc_twin_keeps_the_policy_interface(checkpoint):
    from edgeliquid.model import load_checkpoint

    ltc = bench_rows.ltc_policy(load_checkpoint(checkpoint)[0])
    assert type(ltc.cfc).__name__ == "LTCCell" and ltc.cfc._ode_unfolds == 6
    frames = torch.randint(0, 256, (2, 24, 32, 3), dtype=torch.uint8)
    with torch.no_grad():
        command, state = ltc.step(frames, ltc.initial_state(2), 0.1)
    assert command.shape == (2, 4) and state.shape == (2, TINY.ncp_units)
    assert torch.isfinite(command).all() and state.abs().sum() > 0


def test_time_steps_times_only_the_steps_after_warmup():
    calls = []
    samples = bench_rows.time_steps(calls.append, warmup=3, iterations=7)
    assert calls == list(range(10)) and len(samples) == 7 and min(samples) >= 0


def test_summary_statistics_and_targets_follow_the_samples():
    rng = np.random.default_rng(0)
    samples = {"torch_eager": rng.uniform(800, 900, 500), "onnx_step": rng.uniform(90, 110, 500)}
    samples["daemon"] = samples["onnx_step"] * 1.5
    rows = [
        bench.summarize(k, {"samples_us": s.tolist(), "peak_rss_kib": 2048, "extra": {}}, None)
        for k, s in samples.items()
    ]
    bench.relate(rows, floor_us=40.0)
    step = rows[1]
    assert step["p90_us"] == pytest.approx(np.percentile(samples["onnx_step"], 90))
    assert step["peak_rss_mib"] == 2.0 and step["file_bytes"] is None
    expected = np.median(samples["torch_eager"]) / np.median(samples["onnx_step"])
    assert step["speedup_vs_torch"] == pytest.approx(expected)
    assert step["floor_ratio"] == pytest.approx(np.median(samples["onnx_step"]) / 40.0)
    verdicts = bench.targets({"rows": rows})
    assert verdicts["onnx_step_speedup_vs_torch"]["met"] is bool(expected >= 8)
    assert verdicts["onnx_step_vs_floor"]["met"] is False  # p50 ≈ 100 µs is 2.5x the floor
    assert verdicts["daemon_vs_bare_onnx_step"]["value"] == pytest.approx(1.5)
    assert verdicts["daemon_vs_bare_onnx_step"]["met"] is False
    assert verdicts["daemon_vs_bare_onnx_step"]["between_rows"] == pytest.approx(1.5)
    rows[2]["extra"] = {"paired_ratio": 1.25}  # bare steps timed beside the ticks win
    paired = bench.targets({"rows": rows})["daemon_vs_bare_onnx_step"]
    assert paired["value"] == 1.25 and paired["met"] is True
    assert paired["between_rows"] == pytest.approx(1.5)


def test_bad_inputs_are_one_line_errors(tmp_path):
    missing = runner.invoke(app, ["bench", str(tmp_path / "none.pt"), "--quick"])
    assert missing.exit_code == 1 and "does not exist" in missing.output
    (tmp_path / "model.txt").write_text("x")
    wrong = runner.invoke(app, ["bench", str(tmp_path / "model.txt"), "--quick"])
    assert wrong.exit_code == 1 and ".pt or an .onnx" in wrong.output
    few = runner.invoke(app, ["bench", "--iterations", "3"])
    assert few.exit_code == 1 and "iterations must be >= 16, got 3" in few.output
    (tmp_path / "other.json").write_text("{}")
    foreign = runner.invoke(app, ["bench", "--from-json", str(tmp_path / "other.json")])
    assert foreign.exit_code == 1 and "not an edgeliquid-bench/1 result" in foreign.output


def test_bench_modules_import_no_torch():
    code = "import edgeliquid.bench.report, edgeliquid.bench.rows, sys; "
    code += "assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_readme_table_is_the_committed_run():
    """The README's Performance table is `markdown()` of docs/bench/bench.json, not hand-edited."""
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    start = readme.index("\n", readme.index("<!-- bench table:")) + 1
    block = readme[start : readme.index("<!-- end bench table -->")].strip()
    assert block == bench.markdown(bench.load_result(root / "docs" / "bench" / "bench.json"))
