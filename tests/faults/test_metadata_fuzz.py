"""Issue 10, done-when 2: random metadata edits either refuse in one line or fly within limits.

Each example edits one or two metadata entries of a valid tiny model (NaN, inf, negative, zero,
huge, wrong type, wrong length, or a duplicated key) and re-signs the file, so the field
validation — not only the hash — is what is exercised. Loading must then raise EdgeLiquidError
with a one-line message, or the model must fly in the daemon (fast simulator) and send only
finite commands within the contract's true limits.
"""

import json

import numpy as np
import pytest
from helpers import ListSink
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from onnx_fixtures import build_model, resign

from edgeliquid.contract import COMMAND_LIMITS
from edgeliquid.errors import EdgeLiquidError
from edgeliquid.runtime.daemon import Daemon, DaemonConfig
from edgeliquid.runtime.engine import OnnxPolicy
from edgeliquid.runtime.sources import FastClock

pytest.importorskip("edgeliquid.sim.env")
from edgeliquid.runtime.simsource import SimSource, SimSourceConfig

# Per field, values that may load (then they must fly within the true limits) ...
PLAUSIBLE = {
    "input_height": ["16"], "input_width": ["20"], "state_size": ["6"],
    "dt_mode": ["input"], "nominal_dt": ["0.05", "1", "0.2", "1e-3"], "graph": ["step"],
    "steps": ["1"], "color_order": ["RGB"], "command_names": ['["forward", "right", "down", '
    '"yaw_rate"]'], "command_units": ['["m/s", "m/s", "m/s", "rad/s"]'],
    "command_limits": ["[1.5, 1, 0.5, 0.25]", "[3, 2, 1, 1]", "[1e-3, 1e-3, 1e-3, 1e-3]"],
    "arch": ["lstm", "edited by hand"], "param_count": ["0", "123"],
    "training_data": ["", "{'episodes': 1}"], "edgeliquid_version": ["9.9"],
    "normalization": ["none"],
}  # fmt: skip
# ... and hostile ones: NaN, inf, negative, zero, huge, wrong type, wrong length.
NUMBERS = st.sampled_from(
    ["NaN", "Infinity", "-Infinity", "-1", "0", "-0.0", "1e9", "1e308", "1e400", "0.5", "3"]
)
SCALARS = NUMBERS | st.sampled_from(['"3"', "true", "null", "[]", "{}", "", "x", "6.0", "0x10"])
LISTS = st.lists(NUMBERS | st.sampled_from(['"a"', "[1]", "true", "2", "0.1"]), max_size=6).map(
    lambda items: "[" + ", ".join(items) + "]"
)
WEIRD = st.sampled_from(["a\nb", "x" * 5000, json.dumps(["forward"] * 4), "1" * 30])
HOSTILE = SCALARS | LISTS | WEIRD
EDIT = st.sampled_from(sorted(PLAUSIBLE)).flatmap(
    lambda field: st.tuples(st.just(field), st.sampled_from(PLAUSIBLE[field]) | HOSTILE)
)
VALID = build_model(gain=50.0)  # saturating commands: the clamp is what keeps them in range


def _fly(policy) -> np.ndarray:
    clock = FastClock()
    height, width = policy.input_size
    source = SimSource(SimSourceConfig(fast=True, height=height, width=width), clock=clock)
    sink = ListSink()
    with source:
        Daemon(policy, source, sink, DaemonConfig(max_steps=24), clock=clock).run()
    return np.array(sink.commands)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    edits=st.lists(EDIT, min_size=1, max_size=2),
    duplicate=st.sampled_from([False, False, False, True]),
)
def test_random_metadata_edits_refuse_in_one_line_or_fly_within_limits(tmp_path, edits, duplicate):
    key, value = edits[0]
    data = resign(VALID, dict(edits), extra=((key, value),) if duplicate else ())
    path = tmp_path / "fuzzed.onnx"
    path.write_bytes(data)
    try:
        policy = OnnxPolicy(path)
    except EdgeLiquidError as e:
        message = str(e)
        assert message and "\n" not in message and len(message) < 400, message
        assert not duplicate or "appears twice" in message
        event("refused")
        return
    assert not duplicate
    event("flew")
    commands = _fly(policy)
    assert len(commands) and np.all(np.isfinite(commands))
    assert np.all(np.abs(commands) <= np.array(COMMAND_LIMITS) + 1e-6), commands.max(axis=0)


def test_the_unedited_model_flies_saturated_at_the_true_limits(tmp_path):
    path = tmp_path / "valid.onnx"
    path.write_bytes(resign(VALID))
    commands = _fly(OnnxPolicy(path))
    assert np.all(np.abs(commands) <= np.array(COMMAND_LIMITS) + 1e-6)
    assert np.isclose(np.abs(commands).max(axis=0), COMMAND_LIMITS).any()  # the clamp bites
