"""`edgeliquid demo` with a fixture model: video, top-down plot and summary."""

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
from onnx_fixtures import write_model

from edgeliquid.errors import EdgeLiquidError

pytest.importorskip("edgeliquid.sim.env", reason="the simulator is not in this tree yet")
from edgeliquid.demo import DemoConfig, run_demo

REPO = Path(__file__).resolve().parents[1]


def test_demo_writes_video_plot_and_summary(tmp_path):
    model = write_model(tmp_path / "m.onnx", height=24, width=32)
    lines = []
    summary = run_demo(model, tmp_path / "out", DemoConfig(episodes=2, seed=5), echo=lines.append)
    video = Path(summary["video"])
    assert video.name in ("rollout.mp4", "rollout.avi") and video.stat().st_size > 0
    capture = cv2.VideoCapture(str(video))
    ok, frame = capture.read()
    count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
    capture.release()
    assert ok and frame.shape == (24 * 4, 32 * 4, 3)
    plot = cv2.imread(str(tmp_path / "out" / "trajectories.png"))
    assert plot.shape == (420, 840, 3)  # two panels side by side
    saved = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert saved == summary
    assert summary["episodes"] == 2 and [r["seed"] for r in summary["results"]] == [5, 6]
    assert summary["success_rate"] == summary["successes"] / 2
    steps = sum(round(r["time_s"] / 0.1) for r in summary["results"])
    assert abs(count - (steps + 2)) <= 2  # one frame per step plus an end card per episode
    assert len(lines) == 2 and lines[0].startswith("episode 1:")


def test_demo_without_a_model_says_what_to_do(tmp_path):
    with pytest.raises(EdgeLiquidError, match=r"model file not found: .*--model"):
        run_demo(tmp_path / "nav_cfc.onnx", tmp_path / "out")


def test_demo_config_names_the_bad_value():
    with pytest.raises(ValueError, match=r"episodes must be in 1\.\.100"):
        DemoConfig(episodes=0)


def test_demo_command_line(tmp_path):
    model = write_model(tmp_path / "m.onnx", height=24, width=32)
    out = tmp_path / "demo_out"
    cmd = [sys.executable, "-m", "edgeliquid.cli", "demo", "--model", str(model)]
    cmd += ["--episodes", "1", "--out", str(out)]
    env = os.environ | {"PYTHONPATH": str(REPO)}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "success 0/1" in done.stdout or "success 1/1" in done.stdout
    assert {p.name for p in out.iterdir()} >= {"trajectories.png", "summary.json"}
