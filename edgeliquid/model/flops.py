"""Parameter counts and FLOPs per control step (multiply-add = 2 FLOPs).

`estimate_flops` runs one `step` on a blank frame and counts, per sample:
- preprocessing: 3 FLOPs per input value (cast, subtract mean, divide by std);
- every Conv2d / Linear in the conv head and the readout (from hooks, so real map sizes):
  2 * fan_in per output, +1 for the bias; ReLU / tanh 1 per element; a BatchNorm2d 1 per
  element (export folds it into the conv before it, whose bias it becomes);
- the recurrent core analytically (`policy.core_flops()`: cell matmuls counted dense, as an
  exported graph runs them, plus gate arithmetic).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from edgeliquid.model.policy import PolicyBase


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters (buffers such as NCP masks and command scaling excluded)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _layer_flops(module: nn.Module, output: torch.Tensor) -> int:
    per_sample = output[0].numel()
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        fan_in = module.in_channels // module.groups * kh * kw
        return per_sample * (2 * fan_in + (module.bias is not None))
    if isinstance(module, nn.Linear):
        return per_sample * (2 * module.in_features + (module.bias is not None))
    return per_sample  # elementwise: activation, or a folded BatchNorm's bias


def estimate_flops(model: PolicyBase) -> int:
    """FLOPs of one `model.step` for one sample (see the module docstring for what counts)."""
    config = model.config
    counted = (nn.Conv2d, nn.Linear, nn.ReLU, nn.Tanh, nn.BatchNorm2d)
    total = [3 * 3 * config.input_height * config.input_width]

    def hook(module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        total.append(_layer_flops(module, output))

    modules = [*model.head.modules(), *model.readout.modules()]
    handles = [m.register_forward_hook(hook) for m in modules if isinstance(m, counted)]
    try:
        frame = torch.zeros(1, config.input_height, config.input_width, 3, dtype=torch.uint8)
        was_training = model.training
        model.eval()
        with torch.no_grad():
            model.step(frame.to(model.command_mean.device))
        model.train(was_training)
    finally:
        for handle in handles:
            handle.remove()
    feature_tanh = config.feature_size  # torch.tanh in ConvHead, not a module
    return sum(total) + feature_tanh + model.core_flops()


def policy_summary(model: PolicyBase) -> dict[str, str]:
    """What `edgeliquid info` prints: arch, input, parameters, MFLOP per step, state, dt."""
    config = model.config
    return {
        "arch": f"{config.arch} ({model.core_summary})",
        "input": f"{config.input_height}x{config.input_width} RGB uint8",
        "parameters": f"{count_parameters(model):,}",
        "MFLOP/step": f"{estimate_flops(model) / 1e6:.2f}",
        "state size": str(model.state_size),
        "nominal dt": f"{config.nominal_dt} s",
    }
