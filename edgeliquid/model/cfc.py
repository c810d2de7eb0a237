"""Closed-form continuous-time (CfC) cells, numerically identical to `ncps.torch` 1.0.1.

`CfCCell` and `WiredCfCCell` compute exactly what `ncps.torch.CfCCell` / `WiredCfCCell` compute
and use the same `state_dict` keys, so weights load both ways (strict). Differences, all for
export and deployment:

- the sparsity mask is a buffer (ncps: a frozen Parameter; same key), so an exporter can fold
  `weight * mask` into one constant;
- no Python control flow depends on tensor values; `mode` and the backbone are fixed at build;
- `ts` may be a python float, a 0-d tensor or a per-sample `(B, 1)` tensor; a `(B,)` tensor is
  read as per-sample too (ncps issues #81/#82 squeeze timespans to `(B,)`, which then broadcasts
  against the hidden axis instead of the batch axis).

With `x = backbone([input ; h])` (or `[input ; h]` itself when there is no backbone):

    ff1 = tanh(W1 x + b1), ff2 = tanh(W2 x + b2), t = sigmoid((Wa x + ba) * ts + (Wb x + bb))
    default: h' = ff1 * (1 - t) + t * ff2      no_gate: h' = ff1 + t * ff2
    pure:    h' = -A * exp(-ts * (|w_tau| + |W1 x + b1|)) * (W1 x + b1) + A
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

MODES = ("default", "no_gate", "pure")
Timespan = float | torch.Tensor


class LeCunTanh(nn.Module):
    """1.7159 * tanh(0.666 x): ncps's `lecun_tanh` (0.666, not 2/3)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1.7159 * torch.tanh(0.666 * x)


ACTIVATIONS: dict[str, type[nn.Module]] = {
    "silu": nn.SiLU,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "lecun_tanh": LeCunTanh,
}
# Elementwise FLOPs per unit, for `CfCCell.flops` (lecun_tanh: two multiplies and a tanh).
_ACTIVATION_FLOPS = {"silu": 2, "relu": 1, "tanh": 1, "gelu": 2, "lecun_tanh": 3}
_MODE_FLOPS = {"default": 9, "no_gate": 7, "pure": 9}  # per unit, after the linear heads


def as_timespan(ts: Timespan, trailing: int = 1) -> Timespan:
    """A tensor of `trailing` dims gets a trailing unit axis: `(B,)` as `(B, 1)` (or, with
    `trailing=2`, `(B, T)` as `(B, T, 1)`); floats and every other shape are unchanged.
    The one place dt/ts is reshaped: the cells, the baselines and the policies all use it."""
    if isinstance(ts, torch.Tensor) and ts.dim() == trailing:
        return ts.unsqueeze(-1)
    return ts


def _build_backbone(
    in_features: int, units: int, layers: int, activation: str, dropout: float
) -> nn.Sequential:
    # Same layout as ncps (so the keys match): Linear, act, then (Linear, act, [Dropout]) ...
    act = ACTIVATIONS[activation]
    modules: list[nn.Module] = [nn.Linear(in_features, units), act()]
    for _ in range(1, layers):
        modules += [nn.Linear(units, units), act()]
        if dropout > 0.0:
            modules.append(nn.Dropout(dropout))
    return nn.Sequential(*modules)


class CfCCell(nn.Module):
    """One CfC step: `forward(input[B,I], hx[B,H], ts) -> (h'[B,H], h'[B,H])`, as ncps."""

    sparsity_mask: torch.Tensor | None  # buffer (declared for the type checker)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        mode: str = "default",
        backbone_activation: str = "lecun_tanh",
        backbone_units: int = 128,
        backbone_layers: int = 1,
        backbone_dropout: float = 0.0,
        sparsity_mask: Any = None,
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if backbone_activation not in ACTIVATIONS:
            raise ValueError(
                f"backbone_activation must be one of {tuple(ACTIVATIONS)}, "
                f"got {backbone_activation!r}"
            )
        if backbone_layers < 0:
            raise ValueError(f"backbone_layers must be >= 0, got {backbone_layers}")
        self.input_size, self.hidden_size, self.mode = input_size, hidden_size, mode
        self.backbone_layers, self.backbone_activation = backbone_layers, backbone_activation
        mask = None
        if sparsity_mask is not None:  # ncps takes [in, hidden] and stores |mask|^T
            mask = torch.as_tensor(np.abs(np.asarray(sparsity_mask)).T.astype(np.float32))
        self.register_buffer("sparsity_mask", mask)
        self.backbone = None
        if backbone_layers > 0:
            self.backbone = _build_backbone(
                input_size + hidden_size,
                backbone_units,
                backbone_layers,
                backbone_activation,
                backbone_dropout,
            )
        cat = backbone_units if backbone_layers > 0 else input_size + hidden_size
        self.head_features = cat
        self.ff1 = nn.Linear(cat, hidden_size)
        if mode == "pure":
            self.w_tau = nn.Parameter(torch.zeros(1, hidden_size))
            self.A = nn.Parameter(torch.ones(1, hidden_size))
        else:
            self.ff2 = nn.Linear(cat, hidden_size)
            self.time_a = nn.Linear(cat, hidden_size)
            self.time_b = nn.Linear(cat, hidden_size)
        self.init_weights()

    def init_weights(self) -> None:
        """xavier_uniform on every 2-D parameter, as ncps (so pure mode's w_tau/A too)."""
        for w in self.parameters():
            if w.dim() == 2 and w.requires_grad:
                nn.init.xavier_uniform_(w)

    def _head(self, layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        weight = layer.weight if self.sparsity_mask is None else layer.weight * self.sparsity_mask
        return F.linear(x, weight, layer.bias)

    def forward(
        self, input: torch.Tensor, hx: torch.Tensor, ts: Timespan
    ) -> tuple[torch.Tensor, torch.Tensor]:
        ts = as_timespan(ts)
        x = torch.cat([input, hx], 1)
        if self.backbone is not None:
            x = self.backbone(x)
        ff1 = self._head(self.ff1, x)
        if self.mode == "pure":
            decay = torch.exp(-ts * (torch.abs(self.w_tau) + torch.abs(ff1)))
            new_hidden = -self.A * decay * ff1 + self.A
            return new_hidden, new_hidden
        ff1 = torch.tanh(ff1)
        ff2 = torch.tanh(self._head(self.ff2, x))
        t_interp = torch.sigmoid(self.time_a(x) * ts + self.time_b(x))
        if self.mode == "no_gate":
            new_hidden = ff1 + t_interp * ff2
        else:
            new_hidden = ff1 * (1.0 - t_interp) + t_interp * ff2
        return new_hidden, new_hidden

    def flops(self) -> int:
        """FLOPs for one sample (multiply-add = 2; masked weights counted dense, as run)."""
        total, width = 0, self.input_size + self.hidden_size
        if self.backbone is not None:
            for layer in self.backbone:
                if isinstance(layer, nn.Linear):
                    width = layer.out_features
                    total += (2 * layer.in_features + 1) * width
                    total += _ACTIVATION_FLOPS[self.backbone_activation] * width
        heads = 1 if self.mode == "pure" else 4
        total += heads * (2 * self.head_features + 1) * self.hidden_size
        return total + _MODE_FLOPS[self.mode] * self.hidden_size


class WiredCfCCell(nn.Module):
    """A CfC wired as a neural circuit policy (ncps `WiredCfCCell`).

    One backbone-free `CfCCell` per wiring layer (`layer_0`, `layer_1`, ...); layer i reads
    layer i-1's new state; masks (|adjacency| over a dense same-layer block) on ff1/ff2 only.
    State is laid out in layer order ([inter|command|motor] for an NCP); output = last layer.
    `wiring` is an `ncps.wirings.Wiring` (e.g. `AutoNCP`); only its matrices are kept.
    """

    def __init__(self, input_size: int | None, wiring: Any, mode: str = "default") -> None:
        super().__init__()
        if input_size is not None:
            wiring.build(input_size)
        if not wiring.is_built():
            raise ValueError("wiring has no input size: pass input_size or call wiring.build()")
        self.sensory_size = int(wiring.input_dim)
        self.motor_size = int(wiring.output_dim)
        layers = [list(wiring.get_neurons_of_layer(i)) for i in range(wiring.num_layers)]
        self.layer_sizes = tuple(len(units) for units in layers)
        in_features = self.sensory_size
        for i, units in enumerate(layers):
            if i == 0:
                inbound = wiring.sensory_adjacency_matrix[:, units]
            else:
                inbound = wiring.adjacency_matrix[layers[i - 1], :][:, units]
            mask = np.concatenate([inbound, np.ones((len(units), len(units)))], axis=0)
            cell = CfCCell(in_features, len(units), mode, backbone_layers=0, sparsity_mask=mask)
            self.register_module(f"layer_{i}", cell)
            in_features = len(units)

    @property
    def state_size(self) -> int:
        return sum(self.layer_sizes)

    @property
    def output_size(self) -> int:
        return self.motor_size

    def cells(self) -> list[CfCCell]:
        return [getattr(self, f"layer_{i}") for i in range(len(self.layer_sizes))]

    def forward(
        self, input: torch.Tensor, hx: torch.Tensor, ts: Timespan
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`(input[B,I], hx[B,S], ts) -> (motor[B,M], new state[B,S])`."""
        ts = as_timespan(ts)
        states = torch.split(hx, list(self.layer_sizes), dim=1)
        new_states, h = [], input
        for cell, state in zip(self.cells(), states, strict=True):
            h, _ = cell(h, state, ts)
            new_states.append(h)
        return h, torch.cat(new_states, dim=1)

    def flops(self) -> int:
        """FLOPs for one sample, all layers."""
        return sum(cell.flops() for cell in self.cells())
