"""Issue 10, "tracebacks instead of one line" (offline commands): bad manifests, configs that
ask for absurd sizes, over-long training windows, foreign ONNX files for bench, bad preview
options, and SIGTERM/SIGINT to collect/eval with worker pools."""

import dataclasses
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]
from helpers import one_error_line  # noqa: E402
from tiny import MICRO  # noqa: E402

from edgeliquid import episodes as data  # noqa: E402
from edgeliquid.cli import app  # noqa: E402
from edgeliquid.errors import EdgeLiquidError  # noqa: E402
from edgeliquid.model import NavPolicy, NavPolicyConfig, load_checkpoint, save_checkpoint  # noqa: E402

runner = CliRunner()
MEMORY_CAP = 3 * 2**30  # the subprocess cases run under this address-space limit


def edgeliquid_capped(*args, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """The CLI in a child with its memory capped: a missing bound fails, it cannot OOM us."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "edgeliquid.cli", *map(str, args)]
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, preexec_fn=cap, env=env
    )


def assert_one_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgeliquid: error: "), proc.stderr[-2000:]
    return lines[0]


def small_dataset(folder: Path, episodes: int = 2, steps: int = 12) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    entries = []
    for i in range(episodes):
        ep = data.Episode(
            frames=rng.integers(0, 256, (steps, 18, 32, 3), np.uint8),
            commands=rng.normal(size=(steps, 4)).astype(np.float32),
            dt=np.full(steps, 0.1, np.float32),
            states=np.zeros((steps, 2), np.float32),
        )
        path = data.save_episode(folder, i, ep)
        entries.append({"index": i, "file": path.name, "steps": steps, "outcome": "success"})
    manifest = data.new_manifest(height=18, width=32, nominal_dt=0.1, shift="none", seed=0)
    data.write_manifest(folder, {**manifest, "episodes": entries, "complete": True})
    return folder


# -- manifests ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m.pop("height"), "height must be an integer"),
        (lambda m: m.update(width="128"), "width must be an integer"),
        (lambda m: m.update(episodes=[1, 2]), r"episodes\[0\] must be a dict"),
        (lambda m: m.update(episodes={"a": 1}), "episodes must be a list"),
        (lambda m: m["episodes"][0].update(file="../../etc/passwd"), "episode_NNNNNN.npz"),
        (lambda m: m["episodes"][1].update(index=0), r"episodes\[1\].index"),
        (lambda m: m.update(nominal_dt="fast"), "nominal_dt"),
    ],
)
def test_bad_manifest_is_one_line(tmp_path, edit, message):
    folder = small_dataset(tmp_path / "d")
    manifest = json.loads((folder / data.MANIFEST).read_text())
    edit(manifest)
    (folder / data.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(EdgeLiquidError, match=message):
        data.read_manifest(folder)
    result = runner.invoke(app, ["train", str(folder), "--out", str(tmp_path / "run")])
    assert "bad manifest" in one_error_line(result)


# -- model config bounds ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(ncp_units=100000), "ncp_units must be >= 7 and <= 512"),
        (dict(feature_size=10**6), "feature_size must be in 1..1024"),
        (dict(conv_channels=(8, 12, 16, 24, 100000)), "conv_channels must be in 1..512"),
        (dict(conv_kernels=(99, 3, 3, 3, 1)), "conv_kernels must be in 1..15"),
        (dict(input_height=100000, input_width=100000), "input must be in 16..1080"),
        (dict(conv_strides=(1, 1, 1, 1, 1), feature_size=1024), "weights exceed"),
        (dict(rnn_hidden=10**7), "rnn_hidden must be in 0..4096"),
        (dict(ncp_units="24"), "ncp_units must be integers"),
        (dict(ncp_units=True), "ncp_units must be integers"),
        (dict(nominal_dt=float("nan")), "nominal_dt must be finite"),
        (dict(image_mean=(0.5, float("inf"), 0.5)), "image_mean must be finite"),
        (dict(conv_channels=(8,) * 9, conv_kernels=(3,) * 9, conv_strides=(1,) * 9), "at most 8"),
    ],
)
def test_policy_config_is_bounded(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(NavPolicyConfig(), **change)


def test_info_of_a_checkpoint_asking_for_100000_units_is_one_line(tmp_path):
    raw = torch.load(save_checkpoint(tmp_path / "c.pt", NavPolicy(MICRO)), weights_only=True)
    raw["config"]["ncp_units"] = 100000
    torch.save(raw, tmp_path / "big.pt")
    with pytest.raises(EdgeLiquidError, match="bad config: ncp_units"):
        load_checkpoint(tmp_path / "big.pt")
    line = assert_one_line(edgeliquid_capped("info", tmp_path / "big.pt"))
    assert "big.pt" in line and "ncp_units" in line


# -- train windows ------------------------------------------------------------------------------


def test_train_seq_len_is_capped_before_any_memory_is_spent(tmp_path):
    folder = small_dataset(tmp_path / "d")
    args = ("train", folder, "--out", tmp_path / "run", "--epochs", 1, "--seq-len", 100000)
    line = assert_one_line(edgeliquid_capped(*args))
    assert "seq_len must be <= 256" in line


def test_train_window_longer_than_every_episode_is_one_line(tmp_path):
    folder = small_dataset(tmp_path / "d", steps=12)
    args = [str(folder), "--out", str(tmp_path / "run"), "--epochs", "1", "--seq-len", "40"]
    line = one_error_line(runner.invoke(app, ["train", *args]))
    assert "longer than the longest episode (12 steps)" in line
    assert not (tmp_path / "run" / "best.pt").exists()


# -- bench of a foreign ONNX file ---------------------------------------------------------------


def foreign_onnx(path: Path, props: dict[str, str]) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    helper.set_model_props(model, props)
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize(
    "props",
    [
        {},
        {"input_height": "abc", "input_width": "-5"},
        {"input_height": "100000", "input_width": "100000", "state_size": "4"},
    ],
)
def test_bench_of_a_foreign_onnx_is_one_line(tmp_path, props):
    model = foreign_onnx(tmp_path / "random.onnx", props)
    result = runner.invoke(app, ["bench", str(model), "--quick"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("edgeliquid:")]
    assert len(errors) == 1 and errors == result.stderr.strip().splitlines()[-1:]


# -- sim preview options ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["--scale", "0"], "--scale must be in 1..8"),
        (["--seeds", "0"], "--seeds must be in 1..20"),
        (["--height", "100000"], "height/width must be in"),
    ],
)
def test_sim_preview_bad_options_are_one_line(tmp_path, args, message):
    out = tmp_path / "sheet.png"
    result = runner.invoke(app, ["sim", "preview", "-o", str(out), "--shift", "none", *args])
    assert message in one_error_line(result) and not out.exists()


# -- SIGTERM / SIGINT with worker pools ---------------------------------------------------------


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def stopped(args: list[str], sig: int, ready, group: bool = False):
    """Start the CLI, wait until `ready()` (max 30 s) and its pool is up, send `sig` to it
    (or, like Ctrl-C in a terminal, to its whole process group); (returncode, stderr)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "edgeliquid.cli", *args]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (len(children(proc.pid)) >= 3 and ready()):
            time.sleep(0.1)
        time.sleep(0.5)  # workers mid-episode
        os.killpg(proc.pid, sig) if group else proc.send_signal(sig)
        start = time.monotonic()
        _, stderr = proc.communicate(timeout=30)  # EOF only once every worker is gone
        return proc.returncode, stderr, time.monotonic() - start
    finally:
        if proc.poll() is None or children(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def assert_clean_stop(rc: int, stderr: str, seconds: float) -> str:
    assert rc not in (0, None) and seconds < 10, (rc, seconds)
    for bad in ("Traceback", "leaked semaphore", "BrokenPipeError", "KeyboardInterrupt"):
        assert bad not in stderr, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("edgeliquid:")]
    assert len(errors) == 1, stderr[-3000:]
    return errors[0]


@pytest.mark.parametrize("sig, group", [(signal.SIGTERM, False), (signal.SIGINT, True)])
def test_stopping_collect_with_workers_is_one_line_and_resumable(tmp_path, sig, group):
    out = tmp_path / "eps"
    # enough episodes that an idle machine is still collecting 0.5 s after the first one
    # (12 were all written before the signal on a quiet run)
    args = ["collect", "--out", str(out), "--episodes", "120", "--workers", "2"]
    args += ["--height", "18", "--width", "32"]
    rc, stderr, seconds = stopped(args, sig, lambda: bool(data.list_episodes(out)), group)
    line = assert_clean_stop(rc, stderr, seconds)
    assert f"stopped by {signal.Signals(sig).name}" in line and "rerun" in line
    kept = data.list_episodes(out)
    assert kept and all(data.load_episode(p).steps > 0 for p in kept)
    assert not data.read_manifest(out)["complete"]
    result = runner.invoke(app, [*args[:6], "1", *args[7:]])  # resume, one process
    assert result.exit_code == 0, result.output
    assert len(data.load_dataset(out)) == 120


@pytest.mark.parametrize("sig, group", [(signal.SIGTERM, False), (signal.SIGINT, True)])
def test_stopping_eval_with_workers_is_one_line(sig, group):
    args = ["eval", "expert", "--episodes", "40", "--workers", "2"]
    rc, stderr, seconds = stopped(args, sig, lambda: True, group)
    line = assert_clean_stop(rc, stderr, seconds)
    assert f"stopped by {signal.Signals(sig).name}" in line


# -- siblings: other loaders of user files ------------------------------------------------------


@pytest.mark.parametrize(
    "result",
    [
        {"schema": "edgeliquid-bench/1"},
        {"schema": "edgeliquid-bench/1", "machine": [], "rows": 3},
    ],
)
def test_bench_from_an_incomplete_json_is_one_line(tmp_path, result):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(result))
    line = one_error_line(runner.invoke(app, ["bench", "--from-json", str(path)]))
    assert "incomplete edgeliquid-bench/1 result" in line


@pytest.mark.parametrize("atol", ["inf", "nan", "0", "0.5"])
def test_export_refuses_a_tolerance_that_would_pass_anything(tmp_path, atol):
    result = CliRunner().invoke(
        app, ["export", str(tmp_path / "c.pt"), "-o", str(tmp_path / "m.onnx"), "--atol", atol]
    )
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"edgeliquid: error: atol must be in (0, 0.01], got {float(atol)}"
    ]


def test_an_os_error_in_a_command_is_one_line(tmp_path, monkeypatch):
    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "x"))

    monkeypatch.setattr("edgeliquid.evaluate.evaluate", disk_full)
    result = CliRunner().invoke(app, ["eval", "expert", "--episodes", "1"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert errors == [f"edgeliquid: error: No space left on device: {tmp_path / 'x'}"]
