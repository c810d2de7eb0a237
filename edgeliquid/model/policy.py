"""NavPolicy: RGB frames → conv head → wired CfC (NCP) → 4 body-frame commands.

The shared pieces of every policy (config, conv head, command scaling, the sequence / step API)
live here too; `baselines.py` swaps only the recurrent core.

API (all architectures):
    forward(frames[B,T,H,W,3] uint8, state=None, dt=None) -> (commands[B,T,4], state[B,S])
    step(frame[B,H,W,3] uint8, state=None, dt=None) -> (command[B,4], state[B,S])
    initial_state(batch_size) -> zeros[B,S]

`dt` is seconds since the previous frame: None (nominal), a float, or a tensor ([B,T] / [B,T,1]
for `forward`, [B] / [B,1] for `step`). Cores see time in nominal steps, `dt / nominal_dt`, so
ts = 1 at the nominal rate, as in ncps's default and the drone paper's onboard model.
Commands are (forward, right, down, yaw_rate) in m/s and rad/s; the network predicts them
normalised and outputs `raw * command_std + command_mean` (buffers set by training).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import nn

from edgeliquid.contract import COMMAND_SIZE, NOMINAL_DT
from edgeliquid.model.cfc import MODES, WiredCfCCell, as_timespan

ARCHS = ("cfc", "cfc_dense", "lstm", "lstm_dt", "gru", "cnn")
CONV_NORMS = ("batch", "none")
INPUT_NORMS = ("fixed", "frame")
FRAME_NORM_EPS = 1e-3  # variance floor (std 0.03 of full scale): a flat frame is not blown up
# Bounds on what a config (or a checkpoint's config dict) may ask for: far above any edge
# policy (the shipped one: 24 units, 20k weights), far below what exhausts a machine's memory.
MAX_CONV_LAYERS = 8
MAX_UNITS = 512  # NCP neurons: the wiring and its masks grow with the square
MAX_WEIGHTS = 16_000_000  # conv + feature-layer weights (64 MB of float32)
Dt = float | torch.Tensor | None


def is_int(value: Any) -> bool:
    """An int and not a bool (a config's sizes; YAML and JSON give bools as true/false)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return is_int(value) or (isinstance(value, float) and math.isfinite(value))


@dataclass(frozen=True)
class NavPolicyConfig:
    """Everything needed to rebuild a policy; stored in checkpoints as a plain dict."""

    arch: str = "cfc"  # one of ARCHS (baselines.py): the baselines read the same config
    # Half the drone paper's 144x256 per side: a 2 m target still spans pixels at 20 m, and
    # the first conv layer (60% of the FLOPs) stays cheap enough to train on a CPU.
    input_height: int = 72
    input_width: int = 128
    # Four stride-2 convs take 72x128 to 5x8; the 1x1 layer squeezes channels so the
    # flattened map (where the target is) stays small for the feature layer.
    conv_channels: tuple[int, ...] = (8, 12, 16, 24, 8)
    conv_kernels: tuple[int, ...] = (5, 3, 3, 3, 1)  # 5x5 first: wider view at full res
    conv_strides: tuple[int, ...] = (2, 2, 2, 2, 1)
    # BatchNorm2d after every conv (before its ReLU). Without it the head's activations
    # barely vary with the image at init, and in some seeds Adam drives the head into dead
    # ReLUs and a saturated tanh before any signal arrives (docs/cfc_stall.md). "none": the
    # head of checkpoints trained before the fix.
    conv_norm: str = "batch"
    feature_size: int = 32  # inputs to the recurrent core (the drone paper used 128)
    feature_dropout: float = 0.1  # as the drone paper; only active in train()
    ncp_units: int = 28  # AutoNCP: inter 12, command 8, motor 8 (paper: 18/12/4)
    ncp_sparsity: float = 0.5  # ncps's default; fanouts 6/4, close to the paper's NCP
    ncp_seed: int = 22222  # ncps's default wiring seed; the masks are saved with the weights
    # Motor neurons (the NCP's output layer), read out to the 4 commands by a Linear. With 4,
    # one per command and no slack (checkpoints before the field), a training seed could
    # leave one command (`down`) on no motor neuron, stuck at its mean (docs/cfc_stall.md).
    # 0: a third of ncp_units, at least one and at most two per command (`motor_neurons`).
    ncp_motor: int = 0
    cfc_mode: str = "default"  # gated CfC; no_gate/pure are ablations
    nominal_dt: float = NOMINAL_DT  # seconds: the 10 Hz control rate the expert demonstrates
    # 0: size the dense CfC / LSTM / GRU / CNN hidden layers to match the wired CfC policy's
    # parameter count (fair).
    rnn_hidden: int = 0
    # How pixels are normalised in the graph. "fixed": (x/255 - image_mean) / image_std.
    # "frame": each frame's channels to zero mean and unit variance over the frame, so a
    # gain or an offset on the whole frame (exposure, a veil, white balance) does not reach
    # the convs.
    input_norm: str = "fixed"
    # cfc_dense only: ncps's backbone (Linear + LeCun tanh layers on [features ; h]) in front
    # of the CfC heads. 0 layers: backbone-free, the wired cell's like-for-like counterpart;
    # units is ncps's default width, used only when layers > 0.
    backbone_units: int = 128
    backbone_layers: int = 0
    # Per-channel RGB statistics of natural outdoor images (ImageNet); applied in the model.
    image_mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    image_std: tuple[float, ...] = (0.229, 0.224, 0.225)

    def __post_init__(self) -> None:
        for f in fields(self):  # lists from a checkpoint dict → tuples
            value = getattr(self, f.name)
            if isinstance(value, list):
                object.__setattr__(self, f.name, tuple(value))
        self._check_types()
        self._check_choices()
        self._check_conv()
        self._check_ranges()
        self._check_size()

    def _check_types(self) -> None:
        """Integers where sizes go, finite numbers elsewhere (a checkpoint's dict is untrusted)."""
        for f in fields(self):
            value, kind = getattr(self, f.name), f.type
            items = value if isinstance(value, tuple) else (value,)
            if kind == "str" and not isinstance(value, str):
                raise ValueError(f"{f.name} must be a string, got {value!r}")
            if kind in ("int", "tuple[int, ...]") and not all(is_int(v) for v in items):
                raise ValueError(f"{f.name} must be integers, got {value!r}")
            if kind in ("float", "tuple[float, ...]") and not all(is_number(v) for v in items):
                raise ValueError(f"{f.name} must be finite numbers, got {value!r}")

    def _check_choices(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, got {self.arch!r}")
        if self.conv_norm not in CONV_NORMS:
            raise ValueError(f"conv_norm must be one of {CONV_NORMS}, got {self.conv_norm!r}")
        if self.input_norm not in INPUT_NORMS:
            raise ValueError(f"input_norm must be one of {INPUT_NORMS}, got {self.input_norm!r}")
        if self.cfc_mode not in MODES:
            raise ValueError(f"cfc_mode must be one of {MODES}, got {self.cfc_mode!r}")
        for name in ("image_mean", "image_std"):
            if len(getattr(self, name)) != 3:
                raise ValueError(f"{name} needs 3 values (R, G, B), got {getattr(self, name)}")
        if min(self.image_std) <= 0:
            raise ValueError(f"image_std must be > 0, got {self.image_std}")

    def _check_conv(self) -> None:
        n = len(self.conv_channels)
        if n == 0 or len(self.conv_kernels) != n or len(self.conv_strides) != n:
            raise ValueError(
                "conv_channels, conv_kernels and conv_strides need the same non-zero length, "
                f"got {n}, {len(self.conv_kernels)}, {len(self.conv_strides)}"
            )
        if n > MAX_CONV_LAYERS:
            raise ValueError(f"at most {MAX_CONV_LAYERS} conv layers, got {n}")
        for name, high in (("conv_channels", 512), ("conv_kernels", 15), ("conv_strides", 8)):
            if not 1 <= min(getattr(self, name)) <= max(getattr(self, name)) <= high:
                raise ValueError(f"{name} must be in 1..{high}, got {getattr(self, name)}")
        if min(self.conv_output_size()) < 1:
            raise ValueError(
                f"input {self.input_height}x{self.input_width} is too small for the conv stack"
            )

    def _check_ranges(self) -> None:
        if not (16 <= self.input_height <= 1080 and 16 <= self.input_width <= 1920):
            raise ValueError(
                f"input must be in 16..1080 x 16..1920 px, got {self.input_height}x"
                f"{self.input_width}"
            )
        if not 1 <= self.feature_size <= 1024:
            raise ValueError(f"feature_size must be in 1..1024, got {self.feature_size}")
        if not 0.0 <= self.feature_dropout < 1.0:
            raise ValueError(f"feature_dropout must be in [0, 1), got {self.feature_dropout}")
        if not COMMAND_SIZE + 3 <= self.ncp_units <= MAX_UNITS:
            raise ValueError(
                f"ncp_units must be >= {COMMAND_SIZE + 3} and <= {MAX_UNITS}, got {self.ncp_units}"
            )
        if self.ncp_motor and not COMMAND_SIZE <= self.ncp_motor <= self.ncp_units - 3:
            raise ValueError(
                f"ncp_motor must be 0 (auto) or in {COMMAND_SIZE}..ncp_units - 3 (inter and "
                f"command neurons need >= 3), got {self.ncp_motor} with ncp_units {self.ncp_units}"
            )
        if not 0.1 <= self.ncp_sparsity <= 0.9:
            raise ValueError(f"ncp_sparsity must be in [0.1, 0.9], got {self.ncp_sparsity}")
        if not 0 < self.nominal_dt <= 10:
            raise ValueError(f"nominal_dt must be in (0, 10] s, got {self.nominal_dt}")
        if not 0 <= self.rnn_hidden <= 4096:
            raise ValueError(
                f"rnn_hidden must be in 0..4096 (0 = match the CfC), got {self.rnn_hidden}"
            )
        if not (1 <= self.backbone_units <= 1024 and 0 <= self.backbone_layers <= 4):
            raise ValueError(
                f"backbone_units must be in 1..1024 and backbone_layers in 0..4, got "
                f"{self.backbone_units}, {self.backbone_layers}"
            )
        if not 0 <= self.ncp_seed < 2**32:
            raise ValueError(f"ncp_seed must be in 0..2**32-1, got {self.ncp_seed}")

    def _check_size(self) -> None:
        """The conv and feature weights fit a small edge policy (and any machine's memory)."""
        ins, outs = (3, *self.conv_channels[:-1]), self.conv_channels
        conv = sum(a * b * k * k for a, b, k in zip(ins, outs, self.conv_kernels, strict=True))
        h, w = self.conv_output_size()
        dense = outs[-1] * h * w * self.feature_size
        if conv + dense > MAX_WEIGHTS:
            raise ValueError(
                f"conv ({conv:,}) + feature ({dense:,}) weights exceed {MAX_WEIGHTS:,}: the "
                f"{h}x{w}x{outs[-1]} last conv map is too large (more stride, fewer channels)"
            )

    @property
    def motor_neurons(self) -> int:
        """The NCP's motor neurons: `ncp_motor`, or for 0 a third of the units, 4..8."""
        return self.ncp_motor or min(2 * COMMAND_SIZE, max(COMMAND_SIZE, self.ncp_units // 3))

    def conv_output_size(self) -> tuple[int, int]:
        """(height, width) of the last conv map (padding k // 2 on every layer)."""
        h, w = self.input_height, self.input_width
        for k, s in zip(self.conv_kernels, self.conv_strides, strict=True):
            h, w = (h + 2 * (k // 2) - k) // s + 1, (w + 2 * (k // 2) - k) // s + 1
        return h, w


class ConvHead(nn.Module):
    """uint8 RGB [N,H,W,3] → features [N,F]: cast, normalise, NHWC→NCHW, convs, dense.

    With `conv_norm="batch"` each conv is followed by BatchNorm2d: in `train()` it normalises
    with the statistics of all frames in the batch (B·T of them), in `eval()` with running
    averages, so a deployed step depends on its own frame only.
    """

    pixel_scale: torch.Tensor  # buffers (declared for the type checker)
    pixel_shift: torch.Tensor

    def __init__(self, config: NavPolicyConfig) -> None:
        super().__init__()
        mean = torch.tensor(config.image_mean, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(config.image_std, dtype=torch.float32).view(1, 3, 1, 1)
        # (x/255 - mean)/std as one multiply-add (cheaper than Sub + Div on the device).
        # From the config, not the state_dict: non-persistent.
        self.register_buffer("pixel_scale", 1.0 / (255.0 * std), persistent=False)
        self.register_buffer("pixel_shift", -mean / std, persistent=False)
        self.frame_norm = config.input_norm == "frame"
        layers: list[nn.Module] = []
        in_channels = 3
        stack = zip(config.conv_channels, config.conv_kernels, config.conv_strides, strict=True)
        norm = config.conv_norm == "batch"
        for c, k, s in stack:
            # A conv bias in front of BatchNorm is cancelled by the batch mean: BN's shift
            # replaces it (export folds BN back into the conv's weight and bias).
            layers.append(nn.Conv2d(in_channels, c, k, stride=s, padding=k // 2, bias=not norm))
            layers += [nn.BatchNorm2d(c), nn.ReLU()] if norm else [nn.ReLU()]
            in_channels = c
        self.convs = nn.Sequential(*layers)
        h, w = config.conv_output_size()
        self.dense = nn.Linear(in_channels * h * w, config.feature_size)
        self.dropout = nn.Dropout(config.feature_dropout)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames.permute(0, 3, 1, 2).to(self.pixel_scale.dtype)
        if self.frame_norm:
            # float32 statistics: torch and ONNX Runtime sum the frame in different orders,
            # so the exported graph matches torch to ~1e-5, not ~1e-6 (export's FRAME_ATOL)
            x = x * (1.0 / 255.0)
            x = x - x.mean((2, 3), keepdim=True)
            x = x * torch.rsqrt(x.square().mean((2, 3), keepdim=True) + FRAME_NORM_EPS)
        else:
            x = x * self.pixel_scale + self.pixel_shift
        x = self.convs(x).flatten(1)
        return self.dropout(torch.tanh(self.dense(x)))


class PolicyBase(nn.Module):
    """Conv head + a recurrent core + command scaling; subclasses define `core`."""

    core_summary = ""
    command_mean: torch.Tensor  # buffers (declared for the type checker)
    command_std: torch.Tensor
    readout: nn.Module  # set by each architecture

    def __init__(self, config: NavPolicyConfig) -> None:
        super().__init__()
        self._config = config
        self.head = ConvHead(config)
        self.register_buffer("command_mean", torch.zeros(COMMAND_SIZE))
        self.register_buffer("command_std", torch.ones(COMMAND_SIZE))

    @property
    def config(self) -> NavPolicyConfig:
        return self._config

    @property
    def state_size(self) -> int:
        raise NotImplementedError

    def core(self, features: torch.Tensor, state: torch.Tensor, ts: Any) -> tuple[Any, Any]:
        """(features[B,F], state[B,S], ts) -> (normalised commands[B,4], state[B,S])."""
        raise NotImplementedError

    def core_flops(self) -> int:
        """FLOPs of `core` for one sample (readout excluded)."""
        raise NotImplementedError

    def initial_state(self, batch_size: int) -> torch.Tensor:
        """Zeros [B, S]: a fresh start (S may be 0)."""
        return self.command_mean.new_zeros(batch_size, self.state_size)

    def normalize_commands(self, commands: torch.Tensor) -> torch.Tensor:
        """Physical commands [..., 4] → the normalised targets the network predicts."""
        return (commands - self.command_mean) / self.command_std

    def _check_frames(self, frames: torch.Tensor, dims: int) -> None:
        # Shapes only (static under export): a wrong size would otherwise fail deep inside.
        expected = (self._config.input_height, self._config.input_width, 3)
        if frames.dim() != dims or tuple(frames.shape[-3:]) != expected:
            layout = "[B,T,H,W,3]" if dims == 5 else "[B,H,W,3]"
            raise ValueError(
                f"frames must be {layout} with H,W,3 = {expected}, got {tuple(frames.shape)}"
            )

    def _timespan(self, dt: Dt, trailing: int) -> Any:
        # dt seconds → nominal steps; tensors get a trailing unit axis ([B,1] or [B,T,1]).
        if dt is None:
            return 1.0
        dt = as_timespan(dt, trailing)
        if isinstance(dt, torch.Tensor):
            dt = dt.to(self.command_mean.dtype)
        return dt / self._config.nominal_dt

    def step(
        self, frame: torch.Tensor, state: torch.Tensor | None = None, dt: Dt = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One control step: frame [B,H,W,3] → (command [B,4] in physical units, state)."""
        self._check_frames(frame, 4)
        if state is None:
            state = self.initial_state(frame.shape[0])
        raw, state = self.core(self.head(frame), state, self._timespan(dt, trailing=1))
        return raw * self.command_std + self.command_mean, state

    def forward(
        self, frames: torch.Tensor, state: torch.Tensor | None = None, dt: Dt = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A sequence: frames [B,T,H,W,3] → (commands [B,T,4], final state [B,S])."""
        self._check_frames(frames, 5)
        batch, steps = frames.shape[0], frames.shape[1]
        features = self.head(frames.flatten(0, 1)).unflatten(0, (batch, steps))
        ts = self._timespan(dt, trailing=2)
        per_step = isinstance(ts, torch.Tensor) and ts.dim() == 3
        if state is None:
            state = self.initial_state(batch)
        outputs = []
        for t in range(steps):
            raw, state = self.core(features[:, t], state, ts[:, t] if per_step else ts)
            outputs.append(raw)
        return torch.stack(outputs, 1) * self.command_std + self.command_mean, state


def build_wiring(config: NavPolicyConfig) -> Any:
    """The AutoNCP wiring of `config` (ncps imported here only)."""
    from ncps.wirings import AutoNCP

    return AutoNCP(config.ncp_units, config.motor_neurons, config.ncp_sparsity, config.ncp_seed)


class NavPolicy(PolicyBase):
    """Conv head → wired CfC (AutoNCP, `motor_neurons`) → linear readout → 4 commands."""

    def __init__(self, config: NavPolicyConfig | None = None) -> None:
        config = config or NavPolicyConfig()
        super().__init__(config)
        self.cfc = WiredCfCCell(config.feature_size, build_wiring(config), mode=config.cfc_mode)
        self.readout = nn.Linear(config.motor_neurons, COMMAND_SIZE)  # the paper's Dense(4) head
        inter, command, motor = self.cfc.layer_sizes
        self.core_summary = (
            f"wired CfC ({config.cfc_mode}), NCP inter {inter} / command {command} / motor {motor}"
        )

    @property
    def state_size(self) -> int:
        return self.cfc.state_size

    def core(self, features: torch.Tensor, state: torch.Tensor, ts: Any) -> tuple[Any, Any]:
        motor, state = self.cfc(features, state, ts)
        return self.readout(motor), state

    def core_flops(self) -> int:
        return self.cfc.flops()
