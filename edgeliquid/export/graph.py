"""Checkpoint → closed-form ONNX graph: prepare, export, describe, save.

Two graphs, both closed form (no ODE solver, no Loop/Scan):

- `step`: one control step, `image` uint8 [1,H,W,3], `state` [1,S] (+ `dt` [1,1]) →
  `command` [1,4], `state_out` [1,S]. Cast, normalisation and layout happen inside.
- `unrolled`: T steps in one graph, `images` [T,H,W,3], `state` [1,S] (+ `dt` [T,1]) →
  `commands` [T,4], `state_out` [1,S], for batch replay and offline validation.

Before export the model is copied and prepared: BatchNorm (eval mode, running statistics) is
folded into the conv before it, so the graph is Conv + Relu as without it; NCP masks are
multiplied into the ff1/ff2 weights, each CfC layer's four heads become one Gemm, and with
`dt_mode="fixed"` the nominal step is folded into the time gate, so `time_a·ts + time_b`
becomes one affine map and the graph has no `dt` input.
Verification lives in `verify.py`, int8 in `quantize.py`, the command in `__init__.py`.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
import torch
from torch import nn

from edgeliquid import __version__
from edgeliquid.contract import COMMAND_LIMITS, COMMAND_NAMES, COMMAND_UNITS, ModelMetadata
from edgeliquid.episodes import atomic_write
from edgeliquid.errors import EdgeLiquidError
from edgeliquid.model.cfc import CfCCell, as_timespan
from edgeliquid.model.flops import count_parameters
from edgeliquid.model.policy import NavPolicyConfig, PolicyBase
from edgeliquid.runtime.metadata import sign

GRAPHS = ("step", "unrolled")
DT_MODES = ("input", "fixed")
OPSETS = (17, 18)


DEFAULT_ATOL = 1e-5
# A per-frame normalised model divides by the frame's std, a float32 sum over its pixels that
# torch and ONNX Runtime add in different orders: 1.1e-5 seen in the state of the shipped one.
FRAME_ATOL = 3e-5


def tolerance(options: ExportOptions, config: NavPolicyConfig) -> float:
    """The verification tolerance: the one asked for, else the model's default."""
    if options.atol is not None:
        return options.atol
    return FRAME_ATOL if config.input_norm == "frame" else DEFAULT_ATOL


@dataclass(frozen=True)
class ExportOptions:
    """How to turn a checkpoint into a graph (the `edgeliquid export` flags)."""

    graph: str = "step"  # step: what the daemon flies; unrolled: T steps for batch replay
    steps: int = 16  # T of the unrolled graph
    dt_mode: str = "input"  # input: real frame intervals; fixed: nominal dt folded in
    opset: int = 18  # pinned: ONNX Runtime ≥1.14 and TensorRT 8.6+ run 18
    # fp32 torch vs ONNX Runtime, per output and over the rollout; None: DEFAULT_ATOL, or
    # FRAME_ATOL for a per-frame normalised model (see `tolerance`)
    atol: float | None = None

    def __post_init__(self) -> None:
        if self.graph not in GRAPHS:
            raise ValueError(f"graph must be one of {GRAPHS}, got {self.graph!r}")
        if self.dt_mode not in DT_MODES:
            raise ValueError(f"dt must be one of {DT_MODES}, got {self.dt_mode!r}")
        if self.opset not in OPSETS:
            raise ValueError(f"opset must be one of {OPSETS}, got {self.opset}")
        if not 1 <= self.steps <= 1024:
            raise ValueError(f"steps must be in [1, 1024], got {self.steps}")
        if self.atol is not None and not 0 < self.atol <= 1e-2:  # looser flies wrong
            raise ValueError(f"atol must be in (0, 0.01], got {self.atol}")


class FusedCfCCell(nn.Module):
    """A gated CfC cell for export: its heads stacked into one Gemm (masks already folded).

    ff1, ff2, time_a and time_b read the same `x`, so one [4H, X] matrix computes all four.
    With a fixed timespan `ts` the time gate's `time_a·ts + time_b` is one affine map, so
    three heads remain and the graph has no dt. Same numbers as `CfCCell` (verified on export).
    """

    def __init__(self, cell: CfCCell, fixed_ts: float | None) -> None:
        super().__init__()
        self.mode, self.size, self.fixed = cell.mode, cell.hidden_size, fixed_ts is not None
        self.backbone = cell.backbone
        weights: list[torch.Tensor] = [cell.ff1.weight, cell.ff2.weight]
        biases: list[torch.Tensor] = [cell.ff1.bias, cell.ff2.bias]
        if fixed_ts is None:
            weights += [cell.time_a.weight, cell.time_b.weight]
            biases += [cell.time_a.bias, cell.time_b.bias]
        else:
            weights.append(cell.time_a.weight * fixed_ts + cell.time_b.weight)
            biases.append(cell.time_a.bias * fixed_ts + cell.time_b.bias)
        self.heads = nn.Linear(cell.head_features, len(weights) * self.size)
        with torch.no_grad():
            self.heads.weight.copy_(torch.cat(weights))
            self.heads.bias.copy_(torch.cat(biases))

    def forward(self, input: torch.Tensor, hx: torch.Tensor, ts: Any) -> tuple[Any, Any]:
        x = torch.cat([input, hx], 1)
        if self.backbone is not None:
            x = self.backbone(x)
        heads = torch.split(self.heads(x), self.size, dim=1)
        ff1, ff2 = torch.tanh(heads[0]), torch.tanh(heads[1])
        gate = heads[2] if self.fixed else heads[2] * as_timespan(ts) + heads[3]
        t_interp = torch.sigmoid(gate)
        if self.mode == "no_gate":
            new_hidden = ff1 + t_interp * ff2
        else:
            new_hidden = ff1 * (1.0 - t_interp) + t_interp * ff2
        return new_hidden, new_hidden


def fold_batch_norms(model: nn.Module) -> None:
    """Fold each eval-mode BatchNorm2d into the Conv2d before it (BN becomes Identity)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        for i in range(1, len(seq)):
            conv, norm = seq[i - 1], seq[i]
            if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
                seq[i - 1], seq[i] = fuse_conv_bn_eval(conv, norm), nn.Identity()


def fold_masks(model: nn.Module) -> None:
    """Multiply every CfC sparsity mask into its ff1/ff2 weights and drop the mask."""
    for cell in model.modules():
        if isinstance(cell, CfCCell) and cell.sparsity_mask is not None:
            with torch.no_grad():
                cell.ff1.weight.mul_(cell.sparsity_mask)
                if hasattr(cell, "ff2"):
                    cell.ff2.weight.mul_(cell.sparsity_mask)
            cell.sparsity_mask = None


def fuse_cells(model: nn.Module, fixed_ts: float | None) -> None:
    """Swap every gated CfCCell (masks folded) for a FusedCfCCell; pure cells stay."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, CfCCell) and child.mode != "pure":
                setattr(parent, name, FusedCfCCell(child, fixed_ts))


def prepare(model: PolicyBase, dt_mode: str) -> PolicyBase:
    """A copy of `model` in eval mode with BatchNorm and masks folded, CfC heads fused.

    With `dt_mode="fixed"` the nominal step (ts = 1: cores see dt / nominal_dt) is folded in.
    """
    model = copy.deepcopy(model).eval()
    fold_batch_norms(model)
    fold_masks(model)
    fuse_cells(model, 1.0 if dt_mode == "fixed" else None)
    return model


class StepGraph(nn.Module):
    """(image, state[, dt]) → (command, state_out): the daemon's graph."""

    def __init__(self, policy: PolicyBase, dt_mode: str) -> None:
        super().__init__()
        self.policy, self.fixed = policy, dt_mode == "fixed"

    def forward(self, image: torch.Tensor, state: torch.Tensor, dt: Any = None) -> Any:
        return self.policy.step(image, state, self.policy.config.nominal_dt if self.fixed else dt)


class UnrolledGraph(nn.Module):
    """(images[T], state[, dt[T,1]]) → (commands[T,4], state_out): T steps, one graph."""

    def __init__(self, policy: PolicyBase, dt_mode: str, steps: int) -> None:
        super().__init__()
        self.policy, self.fixed, self.steps = policy, dt_mode == "fixed", steps

    def forward(self, images: torch.Tensor, state: torch.Tensor, dt: Any = None) -> Any:
        nominal = self.policy.config.nominal_dt
        commands = []
        for t in range(self.steps):
            step_dt = nominal if self.fixed else dt[t : t + 1]
            command, state = self.policy.step(images[t : t + 1], state, step_dt)
            commands.append(command)
        return torch.cat(commands, 0), state


def example_inputs(policy: PolicyBase, options: ExportOptions) -> tuple[torch.Tensor, ...]:
    """Zero inputs with the graph's shapes (the exporter traces with these)."""
    config = policy.config
    frames = options.steps if options.graph == "unrolled" else 1
    image = torch.zeros(frames, config.input_height, config.input_width, 3, dtype=torch.uint8)
    state = policy.initial_state(1)
    if options.dt_mode == "fixed":
        return image, state
    return image, state, torch.full((frames, 1), config.nominal_dt)


def io_names(options: ExportOptions) -> tuple[list[str], list[str]]:
    """ONNX input and output names of the graph `options` describes."""
    unrolled = options.graph == "unrolled"
    inputs = ["images" if unrolled else "image", "state"]
    if options.dt_mode == "input":
        inputs.append("dt")
    return inputs, ["commands" if unrolled else "command", "state_out"]


def build_graph(policy: PolicyBase, options: ExportOptions) -> nn.Module:
    """The prepared wrapper module that `to_onnx` exports."""
    prepared = prepare(policy, options.dt_mode)
    if options.graph == "unrolled":
        return UnrolledGraph(prepared, options.dt_mode, options.steps).eval()
    return StepGraph(prepared, options.dt_mode).eval()


def to_onnx(graph: nn.Module, inputs: tuple, options: ExportOptions) -> onnx.ModelProto:
    """Export with the dynamo exporter (static shapes, one file); quiet unless it fails."""
    input_names, output_names = io_names(options)
    log = io.StringIO()
    quiet = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "onnxscript")]
    levels = [logger.level for logger in quiet]
    try:
        for logger in quiet:
            logger.setLevel(logging.ERROR)
        with (
            torch.no_grad(),
            warnings.catch_warnings(),  # torch's own deprecations inside the exporter
            contextlib.redirect_stdout(log),
            contextlib.redirect_stderr(log),
        ):
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            program = torch.onnx.export(
                graph,
                inputs,
                input_names=input_names,
                output_names=output_names,
                opset_version=options.opset,
                dynamo=True,
                external_data=False,
                optimize=True,
                verbose=False,
            )
    except Exception as e:  # the exporter raises many types; keep its log for the user
        tail = log.getvalue().strip().splitlines()[-3:]
        raise EdgeLiquidError(f"ONNX export failed: {e}; {' | '.join(tail)}") from None
    finally:
        for logger, level in zip(quiet, levels, strict=True):
            logger.setLevel(level)
    if program is None:  # torch returns None only when asked to write a file itself
        raise EdgeLiquidError("ONNX export produced no program")
    return program.model_proto


def strip_debug(model: onnx.ModelProto) -> onnx.ModelProto:
    """Drop the exporter's per-node debug records (stack traces with local paths: ~70 KB)."""
    for node in model.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    return model


def describe(
    model: onnx.ModelProto, policy: PolicyBase, options: ExportOptions, ckpt: dict
) -> ModelMetadata:
    """The metadata the runtime reads; the command contract is written from `contract.py`."""
    config = policy.config
    data = ckpt.get("data") or {}
    return ModelMetadata(
        input_height=config.input_height,
        input_width=config.input_width,
        state_size=policy.state_size,
        dt_mode=options.dt_mode,
        nominal_dt=config.nominal_dt,
        command_names=COMMAND_NAMES,
        command_units=COMMAND_UNITS,
        command_limits=COMMAND_LIMITS,  # the simulator's clamps: the envelope it was trained in
        graph=options.graph,
        steps=options.steps if options.graph == "unrolled" else 1,
        normalization=(
            f"x/255, (x-mean)/std per channel inside the graph; mean={list(config.image_mean)}"
            f" std={list(config.image_std)}"
        ),
        arch=config.arch,
        param_count=count_parameters(policy),
        training_data=str(data.get("summary", data)) if data else "unknown",
        edgeliquid_version=__version__,
    )


def finish(model: onnx.ModelProto, meta: ModelMetadata) -> onnx.ModelProto:
    """Attach the metadata, signed (`sha256` over weights and metadata), and check the model."""
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, sign(model.SerializeToString(), meta.to_props()))
    onnx.checker.check_model(model, full_check=True)
    return model


def save(model: onnx.ModelProto, path: Path) -> int:
    """Write one self-contained file atomically, plus a `sha256sum`-style sidecar.

    Returns the file size in bytes. The sidecar (`OUT.onnx.sha256`) lets the runtime and
    `sha256sum -c` check the whole file after copying it to a device.
    """
    return save_bytes(model.SerializeToString(), path)


def save_bytes(data: bytes, path: Path) -> int:
    """A serialised model (e.g. an exported file's bytes, copied) as `save` writes one."""
    sidecar = path.with_name(path.name + ".sha256")
    atomic_write(sidecar, f"{hashlib.sha256(data).hexdigest()}  {path.name}\n".encode())
    atomic_write(path, data)
    return len(data)


def export_checkpoint(
    policy: PolicyBase, ckpt: dict, options: ExportOptions
) -> tuple[onnx.ModelProto, nn.Module]:
    """Build, export and describe; returns the finished model and the torch graph module."""
    graph = build_graph(policy, options)
    model = strip_debug(to_onnx(graph, example_inputs(policy, options), options))
    model.producer_name, model.producer_version = "edgeliquid", __version__
    return finish(model, describe(model, policy, options, ckpt)), graph
