"""Dense CfC, LSTM, GRU and feed-forward CNN policies: the wired CfC policy's comparison points.

Each shares NavPolicy's conv head, command scaling and API (`forward`, `step`,
`initial_state`, `state_size`) and swaps only the core. Fair by construction:
- hidden sizes default (`rnn_hidden=0`) to the size whose core + readout parameter count is
  nearest the wired CfC core + readout, so whole policies are within a few percent of each other;
- `cfc_dense` is the wired policy's cell without the NCP wiring: one fully connected,
  backbone-free `CfCCell` (ncps `CfC(F, H, backbone_layers=0, proj_size=4)`), so the wiring is
  the only difference; it gets dt as ts, as the wired one (`backbone_layers` > 0 adds ncps's
  backbone in front of its heads: a dimension `edgeliquid tune` searches, matched in size too);
- `lstm_dt` and `gru` get dt (in nominal steps) as an extra input feature, as the CfC gets it
  as ts; `lstm` does not (the drone paper's baselines and onboard model see no dt), so the
  pair `lstm` / `lstm_dt` shows what dt itself buys on the timing shifts;
- the cells are written out from `nn.LSTMCell` / `nn.GRUCell` parameters as plain matmuls, so
  the exported graph holds no ONNX LSTM/GRU op (the dynamo exporter once set GRU's reset gate
  wrongly, pytorch#189225). LSTM state = concat(h, c), one flat vector; the CNN has no memory:
  its state is one value that passes through unchanged (the ONNX contract needs a state of
  at least one value, so a [B, 0] state could not be exported).

`build_policy(config)` picks the class from `POLICIES` by `config.arch`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from edgeliquid.contract import COMMAND_SIZE
from edgeliquid.model.cfc import CfCCell, WiredCfCCell, as_timespan
from edgeliquid.model.flops import count_parameters
from edgeliquid.model.policy import NavPolicy, NavPolicyConfig, PolicyBase, build_wiring


@functools.lru_cache(maxsize=16)
def _cfc_core_parameters(config: NavPolicyConfig) -> int:
    cell = WiredCfCCell(config.feature_size, build_wiring(config), mode=config.cfc_mode)
    return count_parameters(cell) + config.motor_neurons * COMMAND_SIZE + COMMAND_SIZE  # + readout


# Core + readout parameters of each core for `inputs` input features and hidden size `h`.
def _lstm_parameters(inputs: int, h: int) -> int:
    return 4 * h * (inputs + h + 2) + h * COMMAND_SIZE + COMMAND_SIZE


def _gru_parameters(inputs: int, h: int) -> int:
    return 3 * h * (inputs + h + 2) + h * COMMAND_SIZE + COMMAND_SIZE


def _cnn_parameters(inputs: int, h: int) -> int:
    return h * (inputs + 1) + h * COMMAND_SIZE + COMMAND_SIZE


def _dense_cfc_parameters(mode: str, units: int = 0, layers: int = 0) -> Callable[[int, int], int]:
    """CfCCell heads (pure: ff1 + w_tau + A) on [input ; h], or on the output of a backbone of
    `layers` Linear layers `units` wide, plus the backbone and the readout."""

    def count(inputs: int, h: int) -> int:
        width = units if layers else inputs + h
        backbone = (inputs + h + 1) * units + (layers - 1) * (units + 1) * units if layers else 0
        heads = h * (width + 1) + 2 * h if mode == "pure" else 4 * h * (width + 1)
        return backbone + heads + h * COMMAND_SIZE + COMMAND_SIZE

    return count


def matched_hidden(config: NavPolicyConfig, count: Callable[[int, int], int], inputs: int) -> int:
    """`config.rnn_hidden`, or (0) the hidden size whose core + readout (`count(inputs, h)`)
    is nearest the wired CfC's."""
    if config.rnn_hidden:
        return config.rnn_hidden
    target = _cfc_core_parameters(config)
    return min(range(1, 4097), key=lambda h: abs(count(inputs, h) - target))


def _dt_column(features: torch.Tensor, ts: Any) -> torch.Tensor:
    """ts (float, 0-d, [B] or [B,1]) as a [B,1] feature column."""
    return torch.zeros_like(features[:, :1]) + as_timespan(ts)


class DenseCfCPolicy(PolicyBase):
    """Conv head → fully connected CfC (no wiring; a backbone only if `backbone_layers`) →
    linear readout; state = h."""

    def __init__(self, config: NavPolicyConfig) -> None:
        super().__init__(config)
        units, layers = config.backbone_units, config.backbone_layers
        count = _dense_cfc_parameters(config.cfc_mode, units, layers)
        self.hidden_size = matched_hidden(config, count, config.feature_size)
        self.cfc = CfCCell(
            config.feature_size,
            self.hidden_size,
            mode=config.cfc_mode,
            backbone_units=units,
            backbone_layers=layers,
        )
        self.readout = nn.Linear(self.hidden_size, COMMAND_SIZE)
        backbone = f"backbone {layers}x{units}" if layers else "no backbone"
        self.core_summary = (
            f"dense CfC ({config.cfc_mode}), {self.hidden_size} units, no wiring, {backbone}"
        )

    @property
    def state_size(self) -> int:
        return self.hidden_size

    def core(self, features: torch.Tensor, state: torch.Tensor, ts: Any) -> tuple[Any, Any]:
        h, _ = self.cfc(features, state, ts)
        return self.readout(h), h

    def core_flops(self) -> int:
        return self.cfc.flops()


class LSTMPolicy(PolicyBase):
    """Conv head → LSTM (input: features) → linear readout; state = [h | c]; dt unused."""

    dt_input = False  # LSTMDtPolicy: dt as one more input feature

    def __init__(self, config: NavPolicyConfig) -> None:
        super().__init__(config)
        self.inputs = config.feature_size + self.dt_input
        self.hidden_size = matched_hidden(config, _lstm_parameters, self.inputs)
        self.rnn = nn.LSTMCell(self.inputs, self.hidden_size)
        self.readout = nn.Linear(self.hidden_size, COMMAND_SIZE)
        timing = "dt as input" if self.dt_input else "no dt"
        self.core_summary = f"LSTM, hidden {self.hidden_size}, {timing}"

    @property
    def state_size(self) -> int:
        return 2 * self.hidden_size

    def core(self, features: torch.Tensor, state: torch.Tensor, ts: Any) -> tuple[Any, Any]:
        x = torch.cat([features, _dt_column(features, ts)], 1) if self.dt_input else features
        h, c = torch.split(state, [self.hidden_size, self.hidden_size], dim=1)
        gates = F.linear(x, self.rnn.weight_ih, self.rnn.bias_ih)
        gates = gates + F.linear(h, self.rnn.weight_hh, self.rnn.bias_hh)
        i, f, g, o = gates.chunk(4, 1)  # torch's gate order
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return self.readout(h), torch.cat([h, c], 1)

    def core_flops(self) -> int:
        h, inputs = self.hidden_size, self.inputs
        matmuls = 2 * (inputs + h) * 4 * h + 2 * 4 * h + 4 * h  # two biases, one gate sum
        return matmuls + 5 * h + 4 * h  # 3 sigmoid + 2 tanh, c/h products and sum


class LSTMDtPolicy(LSTMPolicy):
    """The LSTM with dt (in nominal steps) as one more input at every step, like the GRU."""

    dt_input = True


class GRUPolicy(PolicyBase):
    """Conv head → GRU (input: features + dt) → linear readout; state = h."""

    def __init__(self, config: NavPolicyConfig) -> None:
        super().__init__(config)
        self.hidden_size = matched_hidden(config, _gru_parameters, config.feature_size + 1)
        self.rnn = nn.GRUCell(config.feature_size + 1, self.hidden_size)
        self.readout = nn.Linear(self.hidden_size, COMMAND_SIZE)
        self.core_summary = f"GRU, hidden {self.hidden_size}, dt as input"

    @property
    def state_size(self) -> int:
        return self.hidden_size

    def core(self, features: torch.Tensor, state: torch.Tensor, ts: Any) -> tuple[Any, Any]:
        x = torch.cat([features, _dt_column(features, ts)], 1)
        i_r, i_z, i_n = F.linear(x, self.rnn.weight_ih, self.rnn.bias_ih).chunk(3, 1)
        h_r, h_z, h_n = F.linear(state, self.rnn.weight_hh, self.rnn.bias_hh).chunk(3, 1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)  # reset gate applied after the hidden matmul, as torch
        h = (1.0 - z) * n + z * state
        return self.readout(h), h

    def core_flops(self) -> int:
        h, inputs = self.hidden_size, self.config.feature_size + 1
        matmuls = 2 * (inputs + h) * 3 * h + 2 * 3 * h
        return matmuls + 3 * h + 3 * h + 5 * h  # gate sums, sigmoid/tanh, blend


class CNNPolicy(PolicyBase):
    """Conv head → dense hidden layer → linear readout; no memory, dt unused.

    `state` is one value passed through untouched: the step graph keeps the contract's
    (image, state, dt) → (command, state_out) shape and the runtime flies it like any other.
    """

    def __init__(self, config: NavPolicyConfig) -> None:
        super().__init__(config)
        self.hidden_size = matched_hidden(config, _cnn_parameters, config.feature_size)
        self.hidden = nn.Linear(config.feature_size, self.hidden_size)
        self.readout = nn.Linear(self.hidden_size, COMMAND_SIZE)
        self.core_summary = f"feed-forward, hidden {self.hidden_size}, no state"

    @property
    def state_size(self) -> int:
        return 1  # pass-through: ModelMetadata requires state_size >= 1

    def core(self, features: torch.Tensor, state: torch.Tensor, ts: Any) -> tuple[Any, Any]:
        return self.readout(torch.relu(self.hidden(features))), state

    def core_flops(self) -> int:
        return (2 * self.config.feature_size + 2) * self.hidden_size  # matmul, bias, ReLU


POLICIES: dict[str, Callable[[NavPolicyConfig], PolicyBase]] = {
    "cfc": NavPolicy,
    "cfc_dense": DenseCfCPolicy,
    "lstm": LSTMPolicy,
    "lstm_dt": LSTMDtPolicy,
    "gru": GRUPolicy,
    "cnn": CNNPolicy,
}


def build_policy(config: NavPolicyConfig | None = None) -> PolicyBase:
    """A fresh policy of `config.arch` (default: the CfC NavPolicy)."""
    config = config or NavPolicyConfig()
    return POLICIES[config.arch](config)
