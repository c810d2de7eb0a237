"""Issue 10, flight recorder: two runs cannot record into one folder at once, and a folder
that cannot take episodes stops `run --record` before it flies, in one line."""

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]
from onnx_fixtures import write_model  # noqa: E402

from edgeliquid.cli import app  # noqa: E402
from edgeliquid.errors import EdgeLiquidError  # noqa: E402
from edgeliquid.runtime.engine import OnnxPolicy  # noqa: E402
from edgeliquid.runtime.recorder import FlightRecorder  # noqa: E402


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("m") / "nav.onnx")


def run_record(model, folder):
    args = ["run", str(model), "--sink", "null", "--duration", "0.3", "--record", str(folder)]
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output


def test_a_second_recorder_on_the_same_folder_is_refused(model, tmp_path):
    policy = OnnxPolicy(model)
    first = FlightRecorder(tmp_path / "rec", policy)
    with first, pytest.raises(EdgeLiquidError, match="another run"):
        FlightRecorder(tmp_path / "rec", policy).__enter__()
    with FlightRecorder(tmp_path / "rec", policy):  # released on close: a later flight appends
        pass


def test_run_into_a_folder_another_run_records_into_is_one_line(model, tmp_path):
    with FlightRecorder(tmp_path / "rec", OnnxPolicy(model)):  # stands for the first run
        code, out = run_record(model, tmp_path / "rec")
    assert code == 1, out
    assert out.startswith("edgeliquid: error: ") and out.count("\n") == 1, out
    assert "another run" in out


def _unwritable(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o500)
        return folder
    folder = Path("/proc/self/fdinfo")  # root writes anywhere; nobody creates files in /proc
    if not folder.is_dir():
        pytest.skip("root and no /proc: no folder here refuses writes")
    return folder


def test_an_unwritable_record_folder_stops_the_run_before_it_flies(model, tmp_path):
    folder = _unwritable(tmp_path)
    try:
        code, out = run_record(model, folder)  # main: flies, loses every step, warns at the end
    finally:
        if folder.parent == tmp_path:
            folder.chmod(0o700)
    assert code == 1, out
    assert out.startswith("edgeliquid: error: cannot record into") and out.count("\n") == 1, out
