"""Closed-loop evaluation: any policy object, expert, checkpoints, ONNX files; CLI and JSON."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from edgeliquid.cli import app
from edgeliquid.errors import EdgeLiquidError
from edgeliquid.evaluate import evaluate, format_table, load_policy, wilson_interval
from edgeliquid.sim import SHIFTS

runner = CliRunner()
ROW_KEYS = {
    "task", "shift", "episodes", "success_rate", "success_ci95", "collision_rate",
    "out_of_bounds_rate", "timeout_rate", "mean_final_distance_m", "std_final_distance_m",
    "mean_time_s",
}  # fmt: skip


class Constant:
    """A policy that always sends one command and checks what it is given."""

    def __init__(self, command, size=(20, 32)):
        self.command = np.asarray(command, np.float32)
        self.input_size = size
        self.resets = 0

    def reset(self):
        self.resets += 1

    def step(self, frame, dt):
        assert frame.shape == (*self.input_size, 3) and frame.dtype == np.uint8
        assert 0.01 < dt < 0.5
        return self.command


def diver():
    return Constant([0.0, 0.0, 1.0, 0.0])


def check_schema(report, shifts, episodes):
    assert set(report) >= {"model", "seed", "results"}
    assert [row["shift"] for row in report["results"]] == list(shifts)
    for row in report["results"]:
        assert set(row) == ROW_KEYS and row["episodes"] == episodes
        rates = [row[k] for k in ("success_rate", "collision_rate", "out_of_bounds_rate")]
        assert sum(rates) + row["timeout_rate"] == pytest.approx(1.0)
        low, high = row["success_ci95"]
        assert low <= row["success_rate"] <= high
    json.dumps(report)  # plain JSON types only


def test_expert_report_schema_and_determinism():
    report = evaluate("expert", episodes=2, seed=0, shifts=["none", "lowfps"])
    check_schema(report, ["none", "lowfps"], 2)
    assert report["model"] == "expert" and report["seed"] == 0
    assert report["results"][0]["success_rate"] == 1.0
    assert evaluate("expert", episodes=2, seed=0, shifts=["none", "lowfps"]) == report


def test_any_policy_object_is_flown_and_scored():
    report = evaluate(diver, episodes=2, seed=1, keep_episodes=True)
    row = report["results"][0]
    assert (row["collision_rate"], row["success_rate"]) == (1.0, 0.0)
    assert report["model"] == "diver"
    assert all(e["outcome"] == "collision" and e["time_s"] < 4 for e in report["episode_results"])


def test_workers_do_not_change_the_report():
    one = evaluate(diver, episodes=2, seed=2, shifts=["none", "jitter"], workers=1)
    two = evaluate(diver, episodes=2, seed=2, shifts=["none", "jitter"], workers=2)
    assert one == two


def test_model_names_are_checked(tmp_path):
    with pytest.raises(EdgeLiquidError, match=r"expected 'expert', a .pt checkpoint"):
        load_policy("policy.h5")
    with pytest.raises(EdgeLiquidError, match="no such model file"):
        load_policy(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="unknown shift"):
        evaluate("expert", episodes=1, seed=0, shifts=["monsoon"])


def test_checkpoint_is_flown_at_its_input_size(tmp_path):
    pytest.importorskip("torch")
    from edgeliquid.model import NavPolicyConfig, build_policy, save_checkpoint

    model = build_policy(NavPolicyConfig(input_height=36, input_width=64))
    path = save_checkpoint(tmp_path / "tiny.pt", model)
    policy = load_policy(path)
    assert policy.input_size == (36, 64)
    command = policy.step(np.zeros((36, 64, 3), np.uint8), 0.1)
    assert command.shape == (4,) and command.dtype == np.float32
    report = evaluate(str(path), episodes=1, seed=0)
    check_schema(report, ["none"], 1)


def test_onnx_file_is_flown_through_the_runtime_engine(tmp_path):
    pytest.importorskip("onnx")
    from onnx_fixtures import write_model

    path = write_model(tmp_path / "fixture.onnx", height=16, width=20)
    report = evaluate(str(path), episodes=1, seed=0, shifts=["none", "highfps"])
    check_schema(report, ["none", "highfps"], 1)


def test_wilson_interval():
    assert wilson_interval(0, 10)[0] == 0.0 and 0.2 < wilson_interval(0, 10)[1] < 0.35
    assert wilson_interval(10, 10)[1] == 1.0
    low, high = wilson_interval(50, 100)
    assert low == pytest.approx(1 - high) and 0.39 < low < 0.41


def test_eval_cli_all_shifts_writes_the_json(tmp_path):
    out = tmp_path / "eval.json"
    result = runner.invoke(
        app,
        ["eval", "expert", "--episodes", "1", "--seed", "3", "--shift", "all", "--json", str(out)],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    check_schema(report, list(SHIFTS), 1)
    assert format_table(report).splitlines()[0] in result.output
    assert all(name in result.output for name in SHIFTS)


def test_eval_cli_all_tasks_one_table_and_a_task_per_row(tmp_path):
    from edgeliquid.sim.tasks import TASKS

    out = tmp_path / "eval.json"
    args = ["eval", "expert", "--episodes", "1", "--task", "all", "--shift", "lowfps"]
    result = runner.invoke(app, [*args, "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    check_schema(report, ["lowfps"] * len(TASKS), 1)
    assert [row["task"] for row in report["results"]] == list(TASKS) == report["tasks"]
    table = format_table(report).splitlines()
    assert table[0].split()[:2] == ["task", "shift"] and len(table) == 1 + len(TASKS)
    assert all(line in result.output for line in table)
    two = runner.invoke(app, [*args[:4], "--task", "follow,chain", "--json", str(out)])
    assert two.exit_code == 0, two.output
    assert [r["task"] for r in json.loads(out.read_text())["results"]] == ["follow", "chain"]


def test_eval_cli_unknown_task_is_one_line_naming_the_tasks():
    result = runner.invoke(app, ["eval", "expert", "--episodes", "1", "--task", "hike"])
    assert result.exit_code == 1 and result.output.count("edgeliquid: error:") == 1
    assert "task 'hike'; choose from reach, range, follow, chain, reacquire" in result.output


def test_eval_cli_errors_are_one_line():
    result = runner.invoke(app, ["eval", "model.txt", "--episodes", "1"])
    assert result.exit_code == 1
    assert result.output.strip().endswith("an .onnx file")
    assert result.output.count("edgeliquid: error:") == 1


def test_sim_preview_task_sheets_cli(tmp_path):
    import cv2

    from edgeliquid.sim.tasks import TASKS

    small = ["--seeds", "1", "--height", "24", "--width", "40"]
    result = runner.invoke(app, ["sim", "preview", "--task", "all", "-o", str(tmp_path), *small])
    assert result.exit_code == 0, result.output
    for name in TASKS:  # one row: six stamped frames of the flight, magnified x2
        assert cv2.imread(str(tmp_path / f"{name}.png")).shape == (24 * 2 + 2, 120 + 6 * 82, 3)
    one = tmp_path / "one" / "chain_winter.png"
    args = ["sim", "preview", "--task", "chain", "--shift", "winter", "-o", str(one), *small]
    assert runner.invoke(app, args).exit_code == 0 and one.is_file()
    for bad, message in (
        (["--task", "hike"], "unknown task 'hike'"),
        (["--task", "all", "--shift", "all"], "one --shift"),
    ):
        out = runner.invoke(app, ["sim", "preview", *bad, "-o", str(tmp_path), *small])
        assert out.exit_code == 1 and message in out.output


def test_sim_preview_and_bench_cli(tmp_path):
    sheet = tmp_path / "sheet.png"
    result = runner.invoke(app, ["sim", "preview", "--shift", "winter+blur", "--seeds", "1",
                                 "-o", str(sheet), "--height", "24", "--width", "40"])  # fmt: skip
    assert result.exit_code == 0, result.output
    import cv2

    image = cv2.imread(str(sheet))
    assert image.shape == ((24 + 2) * 2, 120 + 2 * (40 + 2) * 2, 3)
    out = tmp_path / "bench.json"
    result = runner.invoke(app, ["sim", "bench", "--frames", "20", "--json", str(out)])
    assert result.exit_code == 0, result.output
    bench = json.loads(out.read_text())
    assert bench["frames"] == 20 and bench["render_fps"] > 0 and bench["step_fps"] > 0
    assert "frames/s" in result.output
    bad = runner.invoke(app, ["sim", "bench", "--shift", "fog"])
    assert bad.exit_code == 1 and "unknown shift 'fog'" in bad.output
