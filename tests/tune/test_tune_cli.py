"""`edgeliquid tune` end to end at tiny sizes on a local Ray, resumed and interrupted; its
one-line errors; the extras it needs and the device install it stays out of.

The end-to-end tests run the real command in a subprocess (its own Ray, stopped with it) on a
tiny simulator dataset with tests/tune/tiny-space.yaml: 2 seeds per trial, one epoch, one
episode per shift, ~10 s a trial here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tomllib
from helpers import one_error_line
from onnx_fixtures import write_model
from typer.testing import CliRunner

from edgeliquid.cli import app

REPO = Path(__file__).resolve().parents[2]
SPACE = Path(__file__).with_name("tiny-space.yaml")
TUNE = [sys.executable, "-m", "edgeliquid.cli", "tune", str(SPACE)]
runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """Four expert flights at 24x32, recorded by the simulator as `collect` does."""
    from edgeliquid.training.collect import CollectConfig, collect

    out = tmp_path_factory.mktemp("tune-data") / "episodes"
    collect(out, CollectConfig(episodes=4, seed=0, height=24, width=32, hover_s=0.0))
    return out


def _command(data: Path, out: Path, trials: int, cpus: int = 2) -> list[str]:
    return [
        *TUNE,
        "--data",
        str(data),
        "--out",
        str(out),
        "--trials",
        str(trials),
        "--cpus",
        str(cpus),
    ]


def _start(args: list[str]) -> subprocess.Popen:
    # its own session: Ray's processes join its group, so the test can tell they all ended
    return subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def _finish(proc: subprocess.Popen, timeout: float = 150) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    _assert_group_gone(proc.pid)
    return proc.returncode, out, err


def _assert_group_gone(pgid: int, wait_s: float = 10.0) -> None:
    """Nothing the command started (Ray's raylet, workers, agents) outlives it."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.killpg(pgid, signal.SIGKILL)  # our own group: do not leave it to the next test
    pytest.fail("processes of the tune command were still running after it exited")


def _run(args: list[str]) -> tuple[int, str, str]:
    return _finish(_start(args))


def _seed_checkpoints(out: Path) -> dict[str, int]:
    return {
        str(p.relative_to(out)): p.stat().st_mtime_ns for p in out.glob("trials/*/seed-*/best.pt")
    }


def _finished(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in out.glob("trials/*/metrics.json")]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_tune_writes_the_front_and_a_rerun_continues_the_study(tiny_data, tmp_path):
    out = tmp_path / "study"
    code, stdout, stderr = _run(_command(tiny_data, out, trials=2))
    assert code == 0, stderr
    assert re.search(r"^trial 2/2 \w+: success \d\.\d\d \(worst seed", stdout, re.M), stdout
    first = _seed_checkpoints(out)
    assert len(first) == 4  # 2 trials x 2 seeds

    reference = write_model(tmp_path / "shipped.onnx", height=24, width=32)
    args = [*_command(tiny_data, out, trials=4), "--reference", str(reference)]
    code, stdout, stderr = _run(args)
    assert code == 0, stderr
    print(stdout)
    assert re.search(r"^reference shipped: success \d\.\d\d \| p50 \d+ µs", stdout, re.M)
    assert stdout.startswith(f"tune: 2 of 4 trials already finished in {out}")
    assert "trial 1/4" not in stdout and re.search(r"^trial 4/4 ", stdout, re.M)
    trials = _finished(out)
    assert len(trials) == 4 and all(t["status"] == "ok" for t in trials)
    assert all(
        len(t["seeds"]) == 2 and 0 <= t["success_worst_seed"] <= t["success"] for t in trials
    )
    again = _seed_checkpoints(out)
    assert len(again) == 8 and all(again[k] == first[k] for k in first)  # not retrained
    assert sorted(p.name for p in (out / "ray").iterdir()) == ["round-001", "round-002"]

    page = (out / "front.md").read_text()
    assert "## Pareto front" in page and "4 finished trials (0 failed)" in page
    assert "| shipped (fixture) | " in page.split("## Reference models")[1]
    assert (out / "front.png").read_bytes()[:4] == b"\x89PNG"
    _fly(out / "best.onnx")


def _fly(path: Path) -> None:
    """The runtime engine opens best.onnx (sidecar, hash, metadata) and steps it."""
    from edgeliquid.runtime.engine import OnnxPolicy

    policy = OnnxPolicy(path)
    h, w = policy.input_size
    frame = np.full((h, w, 3), 128, np.uint8)
    commands = [policy.step(frame, 0.1) for _ in range(3)]
    assert all(c.shape == (4,) and np.isfinite(c).all() for c in commands)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_an_interrupted_study_continues_where_it_stopped(tiny_data, tmp_path):
    out = tmp_path / "study"
    proc = _start(_command(tiny_data, out, trials=2, cpus=1))
    assert proc.stdout is not None
    for line in proc.stdout:  # one trial at a time: the second is running when this is read
        if line.startswith("trial 1/2 "):
            break
    else:
        pytest.fail(f"no progress line; stderr: {proc.stderr.read() if proc.stderr else ''}")
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    code, _, stderr = _finish(proc)
    assert code == 1 and "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == (
        f"edgeliquid: error: stopped: 1 of 2 trials finished in {out}; rerun the same command "
        "to continue"
    )
    kept = _seed_checkpoints(out)
    assert len(_finished(out)) == 1 and (out / "front.md").is_file()

    code, stdout, stderr = _run(_command(tiny_data, out, trials=2, cpus=1))
    assert code == 0, stderr
    assert stdout.startswith("tune: 1 of 2 trials already finished") and "trial 2/2 " in stdout
    assert len(_finished(out)) == 2
    assert all(_seed_checkpoints(out)[k] == kept[k] for k in kept)
    assert [p.name for p in (out / "ray").iterdir()] == ["round-001"]  # the round restored


# -- one-line errors, before Ray starts: nothing written, nothing lost ------------------------


def _tune(*args: str):
    return runner.invoke(app, ["tune", *args])


def test_bad_space_missing_data_and_a_file_as_out_are_one_line(tiny_data, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("search: {lr: [0.001\n")
    out = tmp_path / "out"
    line = one_error_line(_tune(str(bad), "--data", str(tiny_data), "--out", str(out)))
    assert f"{bad}: not valid YAML (line 2" in line
    line = one_error_line(_tune(str(SPACE), "--data", str(tmp_path / "nope"), "--out", str(out)))
    assert "no such data folder" in line
    missing = tmp_path / "missing.yaml"
    line = one_error_line(_tune(str(missing), "--data", str(tiny_data), "--out", str(out)))
    assert f"cannot read the space file {missing}" in line
    ref = tmp_path / "shipped.onnx"
    line = one_error_line(
        _tune(str(SPACE), "--data", str(tiny_data), "--out", str(out), "--reference", str(ref))
    )
    assert f"--reference {ref}: no such file" in line
    assert not out.exists()
    small = REPO / "configs" / "tune-small.yaml"  # 2 CPUs a trial
    line = one_error_line(
        _tune(str(small), "--data", str(tiny_data), "--out", str(out), "--cpus", "1")
    )
    assert "study.cpus_per_trial 2 is more than the local Ray's 1 CPUs" in line
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    line = one_error_line(_tune(str(SPACE), "--data", str(tiny_data), "--out", str(a_file)))
    assert "is a file, not a folder" in line and a_file.read_text() == "mine"


def test_another_study_or_other_files_in_out_are_refused(tiny_data, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    line = one_error_line(_tune(str(SPACE), "--data", str(tiny_data), "--out", str(out)))
    assert "holds files but no tune study" in line
    (out / "keep.txt").unlink()
    study = {"space_file": "other.yaml", "space": {}, "data": [str(tiny_data.resolve())]}
    (out / "study.json").write_text(json.dumps(study))
    line = one_error_line(_tune(str(SPACE), "--data", str(tiny_data), "--out", str(out)))
    assert "holds a study with other search space (other.yaml on" in line
    assert json.loads((out / "study.json").read_text()) == study  # untouched


def test_without_the_tune_extra_the_command_says_so(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a)
    )
    line = one_error_line(_tune(str(SPACE), "--data", str(tmp_path), "--out", str(tmp_path)))
    assert line == (
        "edgeliquid: error: edgeliquid tune needs the tune extra (Ray Tune, Optuna; torch): "
        'pip install "edgeliquid[train,tune]"'
    )


def test_the_cli_imports_no_ray_and_the_device_install_has_none():
    code = "import sys, edgeliquid.cli; print(sorted({'ray', 'optuna'} & set(sys.modules)))"
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert imported.stdout.strip() == "[]", imported.stderr
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    runtime = {re.split(r"[\[<>=!~; ]", dep)[0].lower() for dep in project["dependencies"]}
    assert not runtime & {"torch", "ray", "optuna", "onnx", "ncps"}, runtime
    tune = project["optional-dependencies"]["tune"]
    assert any(d.startswith("ray[tune,client]") for d in tune) and any(
        d.startswith("optuna") for d in tune
    )
    assert '".[train,mavlink,tune,dev]"' in (REPO / "Makefile").read_text()  # CI tests it
