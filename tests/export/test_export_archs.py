"""Every arch exports (dt input and fixed), passes export verification and flies in the daemon.

The wired CfC's graph is covered in detail by test_export.py; here each arch of the comparison
goes through the same `run_export` (verification on simulator frames included) at the tiny
size, and the two new cores get the closed-form checks of the wired one.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import onnxruntime as ort
import pytest
import torch
from helpers import ListSink
from tiny import TINY

from edgeliquid.export import run_export
from edgeliquid.export.graph import DT_MODES, ExportOptions, export_checkpoint
from edgeliquid.model import ARCHS, build_policy, save_checkpoint
from edgeliquid.runtime.daemon import Daemon, DaemonConfig
from edgeliquid.runtime.engine import OnnxPolicy
from edgeliquid.runtime.simsource import SimSource, SimSourceConfig
from edgeliquid.runtime.sources import FastClock


def _policy(arch: str):
    torch.manual_seed(0)
    policy = build_policy(dataclasses.replace(TINY, arch=arch)).eval()
    with torch.no_grad():  # non-trivial label statistics, as after training
        policy.command_mean.copy_(torch.tensor([1.0, 0.1, -0.1, 0.05]))
        policy.command_std.copy_(torch.tensor([0.8, 0.5, 0.3, 0.4]))
    return policy


def _fly(path, steps: int = 40) -> list[np.ndarray]:
    """The daemon flies the file in the simulator (no pacing) for `steps` commands."""
    clock = FastClock()
    size = {"height": TINY.input_height, "width": TINY.input_width}
    source = SimSource(SimSourceConfig(fast=True, **size), clock=clock)
    sink = ListSink()
    with source:
        stats = Daemon(
            OnnxPolicy(path), source, sink, DaemonConfig(rate_hz=10, max_steps=steps), clock=clock
        ).run()
    assert set(stats.reasons) <= {"overrun", "shutdown"}, stats.reasons
    assert stats.steps >= steps - 2
    return sink.commands


# dt as input for every arch; the fixed-dt graph for the two new cores (the wired CfC's is in
# test_export.py), which keeps this file to about half a minute
CASES = [(arch, "input") for arch in ARCHS] + [("cfc_dense", "fixed"), ("lstm_dt", "fixed")]


@pytest.mark.parametrize("arch, dt_mode", CASES)
def test_every_arch_exports_verifies_and_flies(arch, dt_mode, tmp_path):
    ckpt = save_checkpoint(tmp_path / f"{arch}.pt", _policy(arch))
    out = tmp_path / f"{arch}.onnx"
    result = run_export(ckpt, out, ExportOptions(dt_mode=dt_mode), lambda _: None, 60)
    assert result.checks and all(check.ok for check in result.checks)
    assert OnnxPolicy(out).metadata.arch == arch
    commands = _fly(out)
    assert np.isfinite(commands).all()
    assert np.ptp(np.stack(commands), axis=0).max() > 0  # it reacts to the frames


def _session(model):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("arch", ["cfc_dense", "lstm_dt"])
def test_new_cores_step_graph_equals_torch_with_varying_dt(arch):
    policy = _policy(arch)
    session = _session(export_checkpoint(policy, {}, ExportOptions())[0])
    rng = np.random.default_rng(4)
    state = (rng.standard_normal((1, policy.state_size)) * 0.5).astype(np.float32)
    for _ in range(6):
        frame = rng.integers(0, 256, (1, TINY.input_height, TINY.input_width, 3), np.uint8)
        dt = rng.uniform(0.03, 0.4, (1, 1)).astype(np.float32)
        command, state_out = session.run(None, {"image": frame, "state": state, "dt": dt})
        with torch.no_grad():
            ref = policy.step(torch.from_numpy(frame), torch.from_numpy(state), torch.tensor(dt))
        torch.testing.assert_close(torch.from_numpy(command), ref[0], atol=1e-5, rtol=0)
        torch.testing.assert_close(torch.from_numpy(state_out), ref[1], atol=1e-5, rtol=0)
        state = state_out


def test_dense_cfc_fixed_graph_folds_the_time_gate():
    # as the wired cell: four heads in one Gemm with dt as input, three with dt folded in
    policy = _policy("cfc_dense")
    graphs = {m: export_checkpoint(policy, {}, ExportOptions(dt_mode=m))[0] for m in DT_MODES}
    rows = {
        mode: sum(i.dims[0] for i in model.graph.initializer if "heads.weight" in i.name)
        for mode, model in graphs.items()
    }
    assert rows["input"] == 4 * policy.hidden_size and rows["fixed"] == 3 * policy.hidden_size
    assert [i.name for i in graphs["fixed"].graph.input] == ["image", "state"]
    fixed, step = _session(graphs["fixed"]), _session(graphs["input"])
    rng = np.random.default_rng(5)
    s_fixed = s_step = np.zeros((1, policy.state_size), np.float32)
    nominal = np.full((1, 1), TINY.nominal_dt, np.float32)
    for _ in range(4):
        frame = rng.integers(0, 256, (1, TINY.input_height, TINY.input_width, 3), np.uint8)
        c_fixed, s_fixed = fixed.run(None, {"image": frame, "state": s_fixed})
        c_step, s_step = step.run(None, {"image": frame, "state": s_step, "dt": nominal})
        np.testing.assert_allclose(c_fixed, c_step, atol=1e-5, rtol=0)
        np.testing.assert_allclose(s_fixed, s_step, atol=1e-5, rtol=0)
