"""int8 step graphs: static QDQ (S8S8) calibrated on simulator frames, judged closed loop.

Only the conv head and its dense layer are quantized (`op_types`: Conv, Gemm feeding from the
flattened map); the CfC core stays float, as ONNX Runtime's guidance suggests for recurrent
parts (static quantization of a state that feeds back compounds its error). A quantized file
is kept only if its closed-loop success on the training distribution is within
`max_drop` of the fp32 graph's.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

from edgeliquid.export.graph import ExportOptions, save
from edgeliquid.export.verify import sim_flight, torch_rollout
from edgeliquid.model.policy import PolicyBase
from edgeliquid.runtime.metadata import ModelMetadata, sign


@dataclass(frozen=True)
class QuantizeOptions:
    """Calibration and acceptance settings for `--quantize int8`."""

    calibration_steps: int = 400  # simulator frames (several episodes) for min/max ranges
    episodes: int = 50  # closed-loop episodes per model for the acceptance test
    seed: int = 777  # eval seed of the acceptance test (not a training seed)
    max_drop: float = 0.05  # largest tolerated loss of success rate (5 points)

    def __post_init__(self) -> None:
        if self.calibration_steps < 16:
            raise ValueError(f"calibration_steps must be >= 16, got {self.calibration_steps}")
        if self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")
        if not 0 <= self.max_drop <= 1:
            raise ValueError(f"max_drop must be in [0, 1], got {self.max_drop}")


def calibration_feeds(policy: PolicyBase, options: ExportOptions, steps: int) -> list[dict]:
    """Graph inputs from a real flight: frames with the states torch had at each step."""
    frames, dts = sim_flight(policy, steps, seed=4242)
    _, states = torch_rollout(policy, frames, dts, options.dt_mode == "fixed")
    feeds = []
    for frame, state, dt in zip(frames, states[:-1], dts, strict=True):
        feed = {"image": frame[None], "state": state[None].astype(np.float32)}
        if options.dt_mode == "input":
            feed["dt"] = np.full((1, 1), dt, np.float32)
        feeds.append(feed)
    return feeds


def _conv_head_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the Conv nodes and the Gemm right after the flatten (the feature layer)."""
    names = [n.name for n in model.graph.node if n.op_type == "Conv"]
    flat = {o for n in model.graph.node if n.op_type in ("Reshape", "Flatten") for o in n.output}
    names += [n.name for n in model.graph.node if n.op_type == "Gemm" and n.input[0] in flat]
    return names


def quantize_int8(
    fp32_path: Path, out: Path, policy: PolicyBase, options: ExportOptions, steps: int
) -> int:
    """Write a static-QDQ int8 copy of the step graph at `fp32_path` to `out`; return size."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    feeds = calibration_feeds(policy, options, steps)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(feeds)

        def get_next(self) -> dict | None:
            return next(self._it, None)

    meta = ModelMetadata.from_props(
        {p.key: p.value for p in onnx.load(str(fp32_path)).metadata_props}
    )
    with tempfile.TemporaryDirectory() as tmp:
        raw, prepared = Path(tmp) / "int8.onnx", Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared))  # shape inference + ORT graph cleanup
        fp32 = onnx.load(str(prepared))
        quantize_static(
            fp32,
            raw,
            Reader(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            nodes_to_quantize=_conv_head_nodes(fp32),
            per_channel=True,
        )
        model = onnx.load(str(raw))
    del model.metadata_props[:]
    props = {
        **meta.to_props(),
        "quantization": "int8 static QDQ S8S8 (conv head), CfC core fp32",
    }
    onnx.helper.set_model_props(model, sign(model.SerializeToString(), props))
    onnx.checker.check_model(model, full_check=True)
    return save(model, out)


def closed_loop_success(path: Path, episodes: int, seed: int) -> float:
    """Success rate of an ONNX file flying `episodes` episodes of the `none` scene."""
    from edgeliquid.evaluate import evaluate_model

    torch.set_num_threads(1)
    report = evaluate_model(str(path), episodes=episodes, seed=seed, shifts=["none"])
    return float(report["results"][0]["success_rate"])
