"""Issue 10, "flies what it must not" (model half): tampered or implausible .onnx files.

Edits are re-signed (`resign`) where the point is that the *validation* refuses them; an
unsigned edit shows that the hash, which now covers the metadata, refuses it first.
"""

import csv
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import ListSink
from onnx import TensorProto, helper, numpy_helper
from onnx_fixtures import STATE, build_model, edit_props, resign
from typer.testing import CliRunner

from edgeliquid.cli import app
from edgeliquid.contract import COMMAND_LIMITS, HASH_KEY
from edgeliquid.errors import EdgeLiquidError
from edgeliquid.runtime.daemon import Daemon, DaemonConfig
from edgeliquid.runtime.engine import OnnxPolicy
from edgeliquid.runtime.metadata import metadata_props, strip_metadata
from edgeliquid.runtime.sources import FastClock

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _refused(path: Path, match: str) -> str:
    with pytest.raises(EdgeLiquidError, match=match) as caught:
        OnnxPolicy(path)
    message = str(caught.value)
    assert "\n" not in message and len(message) < 400
    return message


def _write(tmp_path: Path, data: bytes, name: str = "m.onnx") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


NAN4, NEG4, HUGE4 = "[NaN, NaN, NaN, NaN]", "[-1, -1, -1, -1]", "[1e9, 1e9, 1e9, 1e9]"
TAMPERED = [
    ({"command_limits": NAN4}, r"command_limits\[0\] must be finite"),
    ({"command_limits": NEG4}, r"command_limits\[0\] \(forward\) must be in \(0, 3.0\]"),
    ({"command_limits": HUGE4}, r"must be in \(0, 3.0\].*never looser"),
    ({"command_limits": "[Infinity, 2, 1, 1]"}, r"command_limits\[0\] must be finite"),
    ({"command_limits": "[3, 2, 1, 1.5]"}, r"command_limits\[3\] \(yaw_rate\) must be in"),
    ({"command_limits": '["3", "2", "1", "1"]'}, r"command_limits\[0\] must be a number"),
    ({"command_limits": "[[3], [2], [1], [1]]"}, r"command_limits\[0\] must be a number"),
    ({"command_limits": "[true, true, true, true]"}, r"command_limits\[0\] must be a number"),
    ({"command_limits": "[3, 2, 1]"}, "command_limits needs 4 values"),
    ({"command_limits": "3.0"}, "command_limits must be a list"),
    ({"command_limits": "[3, 2,"}, "command_limits is not valid JSON"),
    ({"command_names": '["a"]', "command_limits": "[1]"}, "command_names must be exactly"),
    ({"command_units": '["m/s", "m/s", "m/s", "deg/s"]'}, "command_units must be exactly"),
    ({"state_size": "0"}, r"state_size must be an integer in \[1, 4096\], got 0"),
    ({"state_size": "100000000"}, r"state_size must be an integer in \[1, 4096\]"),
    ({"state_size": "6.0"}, "state_size must be an integer"),
    ({"input_height": "4000", "input_width": "4000"}, r"input_height .*\[8, 1080\]"),
    ({"input_width": "100000"}, r"input_width must be an integer in \[8, 1920\]"),
    ({"nominal_dt": "NaN"}, "nominal_dt must be finite"),
    ({"nominal_dt": "0"}, r"nominal_dt must be a finite number in \(0, 1\]"),
    ({"nominal_dt": "-0.1"}, r"nominal_dt must be a finite number in \(0, 1\]"),
    ({"nominal_dt": '"0.1"'}, "nominal_dt must be a number"),
    ({"steps": "0"}, r"steps must be an integer in \[1, 1024\]"),
    ({"color_order": "BGR"}, "color_order must be 'RGB'"),
    ({"arch": "x" * 200}, "arch must be one printable line"),
    ({"training_data": "a\nb"}, "training_data must be one printable line"),
    ({"dt_mode": "sometimes"}, "dt_mode must be one of"),
]


@pytest.mark.parametrize(("edits", "match"), TAMPERED)
def test_resigned_implausible_metadata_is_refused_naming_the_field(tmp_path, edits, match):
    _refused(_write(tmp_path, resign(build_model(), edits)), match)


@pytest.mark.parametrize("edits", [{"command_limits": NEG4}, {"state_size": "5"}, {"arch": "x"}])
def test_unsigned_metadata_edit_is_refused_by_the_hash(tmp_path, edits):
    path = _write(tmp_path, edit_props(build_model(), edits), "edited.onnx")
    _refused(path, r"edited\.onnx: metadata or weights do not match their sha256")


def test_added_metadata_entry_is_refused_by_the_hash(tmp_path):
    model = onnx.load_from_string(build_model())
    model.metadata_props.add(key="note", value="harmless?")
    _refused(_write(tmp_path, model.SerializeToString()), "do not match their sha256")


def test_duplicated_key_is_refused_even_when_signed(tmp_path):
    # ORT's custom_metadata_map keeps one of the two; which one flies must not be a guess
    data = resign(build_model(), extra=(("command_limits", HUGE4),))
    assert len(onnx.load_from_string(data).metadata_props) > len(metadata_props(build_model()))
    _refused(_write(tmp_path, data), "model metadata key 'command_limits' appears twice")


def test_file_from_before_the_metadata_hash_is_told_to_re_export(tmp_path):
    model = onnx.load_from_string(build_model())
    props = {p.key: p.value for p in model.metadata_props}
    del props[HASH_KEY], model.metadata_props[:]
    old_hash = hashlib.sha256(strip_metadata(model.SerializeToString())).hexdigest()
    helper.set_model_props(model, props | {"weights_sha256": old_hash})
    _refused(_write(tmp_path, model.SerializeToString()), f"carries no {HASH_KEY}.*re-export it")


def test_stricter_limits_fly_and_clamp_to_them(tmp_path):
    strict = (1.5, 1.0, 0.5, 0.25)  # a file may clamp harder than the simulator
    path = _write(tmp_path, build_model(gain=10.0, limits=strict))
    policy = OnnxPolicy(path)
    assert policy.metadata.command_limits == strict
    commands = fly(policy)
    assert commands and np.all(np.abs(commands) <= np.array(strict) + 1e-6)
    assert np.isclose(np.abs(commands).max(axis=0), strict).any()  # gain 10 saturates


def fly(policy, steps: int = 30) -> list:
    """Fly `policy` in the fast simulator for `steps` ticks; the commands it sent."""
    from edgeliquid.runtime.simsource import SimSource, SimSourceConfig

    clock = FastClock()
    height, width = policy.input_size
    source = SimSource(SimSourceConfig(fast=True, height=height, width=width), clock=clock)
    sink = ListSink()
    with source:
        Daemon(policy, source, sink, DaemonConfig(max_steps=steps), clock=clock).run()
    return sink.commands


# --- the graph must be what the metadata says ---------------------------------------------


def test_state_size_must_match_the_graph(tmp_path):
    path = _write(tmp_path, resign(build_model(), {"state_size": str(STATE - 1)}))
    _refused(path, rf"state input is tensor\(float\) \[1, {STATE}\], metadata says float")


def test_command_output_must_have_four_values(tmp_path):
    model = onnx.load_from_string(build_model())
    for node in model.graph.node:
        node.output[:] = ["command4" if o == "command" else o for o in node.output]
    model.graph.initializer.extend(
        numpy_helper.from_array(np.array(v, np.int64), n)
        for n, v in (("s0", [0]), ("s3", [3]), ("ax1", [1]))
    )
    model.graph.node.append(helper.make_node("Slice", ["command4", "s0", "s3", "ax1"], ["command"]))
    out = next(o for o in model.graph.output if o.name == "command")
    out.CopyFrom(helper.make_tensor_value_info("command", TensorProto.FLOAT, [1, 3]))
    onnx.checker.check_model(model)
    path = _write(tmp_path, resign(model.SerializeToString()))
    _refused(path, r"command output is tensor\(float\) \[1, 3\].*\[1, 4\]")


# --- external data --------------------------------------------------------------------------


def _with_constant_weight(data: bytes) -> onnx.ModelProto:
    """The fixture with its `Wi` initializer moved into a Constant node's attribute."""
    model = onnx.load_from_string(data)
    wi = next(t for t in model.graph.initializer if t.name == "Wi")
    model.graph.initializer.remove(wi)
    model.graph.node.insert(0, helper.make_node("Constant", [], ["Wi"], value=wi))
    return model


@pytest.mark.parametrize("where", ["initializer", "constant"])
def test_external_data_is_refused_before_ort_opens_it(tmp_path, where):
    data = build_model()
    model = onnx.load_from_string(data) if where == "initializer" else _with_constant_weight(data)
    onnx.save(model, tmp_path / "ext.onnx", save_as_external_data=True, size_threshold=0,
              all_tensors_to_one_file=True, location="ext.bin")  # fmt: skip
    assert (tmp_path / "ext.bin").stat().st_size > 0
    signed = resign((tmp_path / "ext.onnx").read_bytes())  # the hash would pass
    path = _write(tmp_path, signed, "ext.onnx")
    _refused(path, r"ext\.onnx: tensor '\w+' keeps its data in another file \(external data\)")


def test_self_contained_constant_still_loads(tmp_path):
    OnnxPolicy(_write(tmp_path, resign(_with_constant_weight(build_model()).SerializeToString())))


# --- the .sha256 sidecar ---------------------------------------------------------------------


@pytest.mark.parametrize("content", [b"\xff\xfe\x00garbage\x80", b"", b"a" * 5000])
def test_undecodable_sidecar_is_one_line(tmp_path, content):
    path = _write(tmp_path, build_model())
    (tmp_path / "m.onnx.sha256").write_bytes(content)
    _refused(path, r"m\.onnx\.sha256 is not a sha256sum line")


# --- through the CLI: one line on stderr, exit 1, only a hold sent ------------------------


SIZES = [
    {"state_size": "0"},
    {"state_size": "100000000"},
    {"input_height": "4000", "input_width": "4000"},
    {"input_height": "100000", "input_width": "100000"},
]


@pytest.mark.parametrize("edits", SIZES)
def test_run_refuses_implausible_sizes_with_one_line_and_a_hold(tmp_path, edits):
    path = _write(tmp_path, resign(build_model(), edits))
    out = tmp_path / "sent.csv"
    result = runner.invoke(app, ["run", str(path), "--sink", f"csv:{out}", "--duration", "1"])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgeliquid: error: m.onnx: metadata ")
    field = next(iter(edits))
    assert field in lines[0] and "Traceback" not in result.output
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["hold"]
    assert all(float(rows[0][k]) == 0.0 for k in ("forward", "right", "down", "yaw_rate"))


def test_run_subprocess_refuses_a_huge_input_without_a_traceback(tmp_path):
    path = _write(tmp_path, resign(build_model(), SIZES[-1]))
    cmd = [sys.executable, "-m", "edgeliquid.cli", "run", str(path), "--sink", "null"]
    env = os.environ | {"PYTHONPATH": str(REPO)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "edgeliquid: error: m.onnx: metadata input_height must be an integer in [8, 1080], "
        "got 100000"
    ]


def test_eval_of_a_model_with_the_wrong_state_size_is_one_line(tmp_path):
    path = _write(tmp_path, resign(build_model(), {"state_size": str(STATE + 3)}))
    result = runner.invoke(app, ["eval", str(path), "--episodes", "1"])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    errors = [line for line in result.stderr.splitlines() if line.startswith("edgeliquid:")]
    assert len(errors) == 1 and errors[0].startswith("edgeliquid: error: m.onnx: state input")
    assert "Traceback" not in result.output


def test_true_limits_bound_what_a_valid_file_flies(tmp_path):
    policy = OnnxPolicy(_write(tmp_path, build_model(gain=100.0)))
    commands = fly(policy, steps=20)
    assert commands and np.all(np.isfinite(commands))
    assert np.all(np.abs(commands) <= np.array(COMMAND_LIMITS) + 1e-6)
