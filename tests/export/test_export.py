"""Export layer: torch → ONNX graphs at a tiny size, compared with torch; metadata; the CLI."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from tiny import TINY
from typer.testing import CliRunner

from edgeliquid.cli import app
from edgeliquid.contract import COMMAND_LIMITS
from edgeliquid.errors import EdgeLiquidError
from edgeliquid.export import graph as export_graph
from edgeliquid.export.graph import ExportOptions, export_checkpoint
from edgeliquid.model import NavPolicy, save_checkpoint
from edgeliquid.runtime.engine import OnnxPolicy
from edgeliquid.runtime.metadata import ModelMetadata, metadata_props, model_sha256

runner = CliRunner()


@pytest.fixture(scope="module")
def policy() -> NavPolicy:
    torch.manual_seed(0)
    model = NavPolicy(TINY).eval()
    with torch.no_grad():  # non-trivial label and BatchNorm statistics, as after training
        model.command_mean.copy_(torch.tensor([1.0, 0.1, -0.1, 0.05]))
        model.command_std.copy_(torch.tensor([0.8, 0.5, 0.3, 0.4]))
        for norm in [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]:
            norm.running_mean.uniform_(-0.5, 0.5)
            norm.running_var.uniform_(0.2, 3.0)
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.3, 0.3)
    assert model.config.conv_norm == "batch"
    return model


@pytest.fixture(scope="module")
def graphs(policy):
    """Each graph variant exported once for the module."""
    variants = {
        "step": ExportOptions(),
        "fixed": ExportOptions(dt_mode="fixed"),
        "unrolled": ExportOptions(graph="unrolled", steps=5),
    }
    return {k: (export_checkpoint(policy, {}, o)[0], o) for k, o in variants.items()}


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _inputs(steps: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (steps, TINY.input_height, TINY.input_width, 3), np.uint8)
    dts = rng.uniform(0.05, 0.2, (steps, 1)).astype(np.float32)
    state = (rng.standard_normal((1, 10)) * 0.5).astype(np.float32)
    return frames, dts, state


def test_step_graph_equals_torch_step(policy, graphs):
    session = _session(graphs["step"][0])
    frames, dts, state = _inputs(6)
    for frame, dt in zip(frames, dts, strict=True):
        command, state_out = session.run(
            None, {"image": frame[None], "state": state, "dt": dt[None]}
        )
        with torch.no_grad():
            ref_cmd, ref_state = policy.step(
                torch.from_numpy(frame[None]), torch.from_numpy(state), torch.from_numpy(dt[None])
            )
        torch.testing.assert_close(torch.from_numpy(command), ref_cmd, atol=1e-5, rtol=0)
        torch.testing.assert_close(torch.from_numpy(state_out), ref_state, atol=1e-5, rtol=0)
        state = state_out


def test_unrolled_graph_equals_step_calls(graphs):
    unrolled, step = _session(graphs["unrolled"][0]), _session(graphs["step"][0])
    frames, dts, state0 = _inputs(5, seed=1)
    commands, final = unrolled.run(None, {"images": frames, "state": state0, "dt": dts})
    state = state0
    for t in range(5):
        command, state = step.run(
            None, {"image": frames[t : t + 1], "state": state, "dt": dts[t : t + 1]}
        )
        np.testing.assert_allclose(commands[t : t + 1], command, atol=1e-5, rtol=0)
    np.testing.assert_allclose(final, state, atol=1e-5, rtol=0)
    assert commands.shape == (5, 4)


def test_fixed_dt_graph_equals_input_graph_at_nominal_dt(graphs):
    fixed_model, step_model = graphs["fixed"][0], graphs["step"][0]
    assert [i.name for i in fixed_model.graph.input] == ["image", "state"]
    sizes = [
        sum(i.dims[0] for i in m.graph.initializer if "heads.weight" in i.name)
        for m in (fixed_model, step_model)
    ]
    assert sizes[0] * 4 == sizes[1] * 3, "time_a·ts + time_b should be one affine map per layer"
    fixed, step = _session(fixed_model), _session(step_model)
    frames, _, state = _inputs(4, seed=2)
    nominal = np.full((1, 1), TINY.nominal_dt, np.float32)
    s_fixed = s_step = state
    for frame in frames:
        c_fixed, s_fixed = fixed.run(None, {"image": frame[None], "state": s_fixed})
        c_step, s_step = step.run(None, {"image": frame[None], "state": s_step, "dt": nominal})
        np.testing.assert_allclose(c_fixed, c_step, atol=1e-5, rtol=0)
        np.testing.assert_allclose(s_fixed, s_step, atol=1e-5, rtol=0)


def test_masks_are_folded_into_weights(policy, graphs):
    model = graphs["step"][0]
    masks = {tuple(b.shape) for n, b in policy.named_buffers() if n.endswith("sparsity_mask")}
    assert masks, "the NCP policy should have sparsity masks to fold"
    for init in model.graph.initializer:
        values = onnx.numpy_helper.to_array(init)
        is_binary = values.size > 1 and np.isin(values, (0.0, 1.0)).all()
        assert not (tuple(values.shape) in masks and is_binary), f"mask left: {init.name}"


def _moved(session: ort.InferenceSession, feed: dict, other: np.ndarray) -> float:
    """How far the command moves when the feed's image is replaced by `other`."""
    clean = session.run(None, feed)[0]
    return float(np.abs(session.run(None, feed | {"image": other[None]})[0] - clean).max())


def test_frame_normalised_head_exports_with_parity(policy):
    """input_norm "frame": the per-frame statistics are graph ops, equal to torch's, and a
    gain plus offset on the whole frame barely moves the command (rounding to uint8 only)."""
    framed = NavPolicy(dataclasses.replace(TINY, input_norm="frame")).eval()
    framed.load_state_dict(policy.state_dict())
    session = _session(export_checkpoint(framed, {}, ExportOptions())[0])
    fixed = _session(export_checkpoint(policy, {}, ExportOptions())[0])
    frames, dts, state = _inputs(3, seed=2)
    veiled = np.clip(frames.astype(np.float32) * 0.75 + 60, 0, 255).round().astype(np.uint8)
    for frame, other, dt in zip(frames, veiled, dts, strict=True):
        feed = {"image": frame[None], "state": state, "dt": dt[None]}
        command, _ = session.run(None, feed)
        with torch.no_grad():
            ref, _ = framed.step(torch.from_numpy(frame[None]), torch.from_numpy(state), dt[0])
        torch.testing.assert_close(torch.from_numpy(command), ref, atol=1e-5, rtol=0)
        moves = [_moved(s, feed, other) for s in (session, fixed)]
        assert moves[0] < 0.05 * moves[1], moves


def test_batch_norm_is_folded_into_the_convs(graphs):
    """Conv + Relu only, the same ops as a head without BatchNorm (int8 and runtimes see one
    graph); parity with torch, running statistics included, is in the step test above."""
    torch.manual_seed(0)
    plain = NavPolicy(dataclasses.replace(TINY, conv_norm="none")).eval()
    plain_model = export_checkpoint(plain, {}, ExportOptions())[0]

    def ops(model):
        return sorted(n.op_type for n in model.graph.node)

    assert "BatchNormalization" not in ops(graphs["step"][0])
    assert ops(graphs["step"][0]) == ops(plain_model)


def test_prepare_folds_batch_norm_whatever_the_exporter_does(policy):
    """The fold is ours, not left to the exporter's constant folding: the prepared copy has
    no BatchNorm2d, its convs carry the folded bias, and it steps as the original does."""
    prepared = export_graph.prepare(policy, "input")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in prepared.modules())
    convs = [m for m in prepared.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == len(TINY.conv_channels) and all(c.bias is not None for c in convs)
    frames = torch.from_numpy(_inputs(2)[0])
    with torch.no_grad():
        torch.testing.assert_close(prepared.step(frames)[0], policy.step(frames)[0])


def test_metadata_round_trip(policy, graphs, tmp_path):
    model = graphs["step"][0]
    props = metadata_props(model.SerializeToString())
    meta = ModelMetadata.from_props(props)
    assert (meta.input_height, meta.input_width) == (24, 32)
    assert (meta.state_size, meta.dt_mode, meta.graph, meta.arch) == (10, "input", "step", "cfc")
    assert meta.param_count == sum(p.numel() for p in policy.parameters())
    assert meta.sha256 == model_sha256(model.SerializeToString(), props)
    assert meta.command_limits == COMMAND_LIMITS
    path = tmp_path / "m.onnx"
    export_graph.save(model, path)
    engine = OnnxPolicy(path)  # the runtime accepts it from the file alone
    assert engine.metadata == meta
    assert engine.step(np.zeros((48, 64, 3), np.uint8), 0.1).shape == (4,)


def test_default_step_graph_is_small():
    torch.manual_seed(0)
    model, _ = export_checkpoint(NavPolicy().eval(), {}, ExportOptions())
    onnx.checker.check_model(model, full_check=True)
    assert len(model.SerializeToString()) <= 150 * 1024
    assert not any(
        init.data_location == onnx.TensorProto.EXTERNAL for init in model.graph.initializer
    )


def test_cli_export_verifies(policy, tmp_path):
    ckpt = save_checkpoint(tmp_path / "tiny.pt", policy)
    out = tmp_path / "tiny.onnx"
    result = runner.invoke(app, ["export", str(ckpt), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "-[✓] command: max abs diff" in result.output
    assert "-[✓] rollout 500 steps" in result.output
    assert out.is_file() and (tmp_path / "tiny.onnx.sha256").is_file()


def test_cli_export_that_diverges_fails_and_removes_file(policy, tmp_path, monkeypatch):
    ckpt = save_checkpoint(tmp_path / "tiny.pt", policy)
    strip = export_graph.strip_debug

    def perturbed(model):  # a broken exporter: one bias off by 1e-3
        model = strip(model)
        bias = next(i for i in model.graph.initializer if i.name.endswith("readout.bias"))
        bias.CopyFrom(
            onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(bias) + 1e-3, bias.name)
        )
        return model

    monkeypatch.setattr(export_graph, "strip_debug", perturbed)
    out = tmp_path / "bad.onnx"
    result = runner.invoke(app, ["export", str(ckpt), "-o", str(out)])
    assert result.exit_code == 1
    assert "-[✗] command: max abs diff 8.0e-04" in result.output  # 1e-3 x command_std 0.8
    assert "verification failed" in result.output
    assert not out.exists() and not (tmp_path / "bad.onnx.sha256").exists()


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", bytes(range(256))])
def test_cli_export_rejects_non_checkpoint(tmp_path, content):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(content)
    result = runner.invoke(app, ["export", str(bad), "-o", str(tmp_path / "x.onnx")])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgeliquid: error:") and "bad.pt" in lines[0]


def test_cli_export_rejects_bad_options(policy, tmp_path):
    ckpt = save_checkpoint(tmp_path / "tiny.pt", policy)
    result = runner.invoke(
        app, ["export", str(ckpt), "-o", str(tmp_path / "x.onnx"), "--opset", "9"]
    )
    assert result.exit_code == 1 and "opset must be one of" in result.output
    result = runner.invoke(app, ["export", str(ckpt), "-o", str(tmp_path / "x.txt")])
    assert result.exit_code == 1 and "must end in .onnx" in result.output


def _quantize(policy, tmp_path, force=False):
    from edgeliquid.export import run_export, run_quantize
    from edgeliquid.export.quantize import QuantizeOptions

    ckpt = save_checkpoint(tmp_path / "tiny.pt", policy)
    fp32 = run_export(ckpt, tmp_path / "tiny.onnx", ExportOptions(), lambda _: None, None).path
    settings = QuantizeOptions(calibration_steps=32, episodes=2)
    return run_quantize(ckpt, fp32, ExportOptions(), force, lambda _: None, settings)


def test_int8_graph_is_quantized_and_flies(policy, tmp_path):
    path = _quantize(policy, tmp_path)
    model = onnx.load(str(path))
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert path.stat().st_size < (tmp_path / "tiny.onnx").stat().st_size
    engine = OnnxPolicy(path)  # metadata and hash were rewritten for the int8 graph
    assert engine.metadata.input_height == TINY.input_height
    assert np.isfinite(engine.step(np.zeros((24, 32, 3), np.uint8), 0.1)).all()


def test_int8_refused_when_closed_loop_success_drops(policy, tmp_path, monkeypatch):
    from edgeliquid.export import quantize

    def success(path, episodes, seed):  # fp32 flies 0.9, int8 0.8: a 10-point drop
        return 0.8 if path.name.endswith(".int8.onnx") else 0.9

    monkeypatch.setattr(quantize, "closed_loop_success", success)
    with pytest.raises(EdgeLiquidError, match=r"more than 0\.05 below fp32"):
        _quantize(policy, tmp_path)
    assert not (tmp_path / "tiny.int8.onnx").exists()
    assert (tmp_path / "tiny.onnx").exists()
    assert _quantize(policy, tmp_path, force=True).exists()


def test_verification_tolerance_follows_the_model_unless_asked():
    framed = dataclasses.replace(TINY, input_norm="frame")
    assert export_graph.tolerance(ExportOptions(), TINY) == export_graph.DEFAULT_ATOL == 1e-5
    assert export_graph.tolerance(ExportOptions(), framed) == export_graph.FRAME_ATOL == 3e-5
    assert export_graph.tolerance(ExportOptions(atol=2e-6), framed) == 2e-6
    with pytest.raises(ValueError, match="atol"):
        ExportOptions(atol=0.5)
