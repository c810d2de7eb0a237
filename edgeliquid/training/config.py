"""`TrainConfig`: one training run, validated; the defaults are the shipped model's recipe."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from edgeliquid.contract import NOMINAL_DT
from edgeliquid.model.policy import ARCHS, CONV_NORMS, INPUT_NORMS, NavPolicyConfig
from edgeliquid.training.augment import AugmentConfig

MAX_SEQ_LEN = 256  # steps per window: 25.6 s at 10 Hz; memory grows with it (100000 > 24 GB)
RUN_FILES = ("best.pt", "last.pt", "metrics.json", "curves.png")
# NavPolicyConfig fields `model` may set: not the ones TrainConfig or the data already fix.
MODEL_FIELDS = tuple(
    f.name
    for f in fields(NavPolicyConfig)
    if f.name not in ("arch", "conv_norm", "input_norm", "input_height", "input_width")
)


@dataclass(frozen=True)
class TrainConfig:
    """One training run; defaults are the shipped model's recipe."""

    arch: str | None = None  # one of model.ARCHS (None: cfc, or the --init checkpoint's)
    # batch | none: BatchNorm in the conv head ("none": the pre-fix recipe; None: batch, or
    # the --init checkpoint's)
    conv_norm: str | None = None
    # fixed | frame: pixel normalisation in the graph (model.NavPolicyConfig.input_norm; None:
    # fixed, or the --init checkpoint's)
    input_norm: str | None = None
    # Other NavPolicyConfig fields for a fresh model (conv head, NCP size, ...: what
    # `edgeliquid tune` searches); {} = the defaults. Not with `init` (its config wins).
    model: dict[str, Any] = field(default_factory=dict)
    epochs: int = 14  # the shipped recipe (its wall time: README, Training)
    seed: int = 0  # weights, window order and augmentation
    seq_len: int = 32  # 3.2 s at 10 Hz: long enough to see a turn settle, cheap to backprop
    seq_shift: int = 16  # half-overlapping windows: every step seen twice, in two contexts
    batch_size: int = 32  # windows per step: the recurrent loop's cost is per step, not per window
    lr: float = 4e-3  # Adam; a ~20k-parameter net tolerates a larger step than the paper's 4.8e-4
    lr_final: float = 0.05  # cosine decay to lr * lr_final by the last planned step
    warmup_steps: int = 0  # linear lr warm-up over the first optimizer steps (0: none)
    weight_decay: float = 0.0  # no decay: the net is tiny and augmentation regularises
    grad_clip: float = 1.0  # global norm; recurrent nets spike on long windows
    val_fraction: float = 0.1  # share of episodes held out for validation
    # which episodes are held out: None follows `seed`; one value for several seeds puts
    # them on the same validation episodes, so their losses compare (scripts/cfc_stall.py)
    val_seed: int | None = None
    max_minutes: float | None = None  # stop after this much training wall time (None: no cap)
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)  # None: off
    # torch intra-op threads. 1: the recurrent core's ops are too small to split, and a
    # second core is better spent preparing the next batch (README, Training).
    num_threads: int = 1
    device: str = "cpu"  # cpu, or cuda for quick sweeps where a GPU exists
    init: str | None = None  # checkpoint to fine-tune from (its model config wins)
    eval_episodes: int = 0  # closed-loop episodes on shift none after training (0: skip)
    eval_seed: int = 12345  # disjoint from data seeds: results are on unseen scenes

    def __post_init__(self) -> None:
        if self.arch is not None and self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {', '.join(ARCHS)}, got {self.arch!r}")
        if self.conv_norm is not None and self.conv_norm not in CONV_NORMS:
            raise ValueError(
                f"conv_norm must be one of {', '.join(CONV_NORMS)}, got {self.conv_norm!r}"
            )
        if self.input_norm is not None and self.input_norm not in INPUT_NORMS:
            raise ValueError(
                f"input_norm must be one of {', '.join(INPUT_NORMS)}, got {self.input_norm!r}"
            )
        unknown = sorted(set(self.model) - set(MODEL_FIELDS))
        if unknown:
            raise ValueError(
                f"model has unknown fields {unknown}; known: {', '.join(MODEL_FIELDS)}"
            )
        if self.model and self.init is not None:
            raise ValueError("model fields are for a fresh model; an init checkpoint has its own")
        if self.seq_len > MAX_SEQ_LEN:
            raise ValueError(
                f"seq_len must be <= {MAX_SEQ_LEN} steps ({MAX_SEQ_LEN * NOMINAL_DT:.1f} s at "
                f"{1 / NOMINAL_DT:.0f} Hz): "
                f"backprop through longer windows needs memory in proportion, got {self.seq_len}"
            )
        positive = ("epochs", "seq_len", "seq_shift", "batch_size", "num_threads")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0 or not 0 < self.lr_final <= 1:
            raise ValueError(
                f"lr must be > 0 and lr_final in (0, 1], got {self.lr}, {self.lr_final}"
            )
        if self.weight_decay < 0 or self.grad_clip <= 0:
            raise ValueError("weight_decay must be >= 0 and grad_clip > 0")
        if self.val_seed is not None and self.val_seed < 0:
            raise ValueError(f"val_seed must be >= 0, got {self.val_seed}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ValueError(f"max_minutes must be > 0 or None, got {self.max_minutes}")
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda', got {self.device!r}")
        if self.eval_episodes < 0:
            raise ValueError(f"eval_episodes must be >= 0, got {self.eval_episodes}")
