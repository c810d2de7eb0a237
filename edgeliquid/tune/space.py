"""The search space of `edgeliquid tune`: frozen dataclasses, read from a YAML file (`spacefile`).

```yaml
search:        # what the sampler chooses. Each entry: a value (fixed), a list (one of them),
               # or {low: A, high: B, log: true|false} (integers when A and B both are)
  arch: [cfc, cfc_dense]
  ncp_units: {low: 16, high: 32}
  conv_head: [shipped, patch4]
  lr: {low: 1.0e-3, high: 8.0e-3, log: true}
conv_heads:    # the conv heads `search.conv_head` names (`shipped` is always there)
  patch4: {channels: [16, 16, 24, 8], kernels: [4, 3, 3, 1], strides: [4, 2, 2, 1]}
train: {epochs: 3, seeds: [0, 1], batch_size: 32, max_minutes: 10}
eval: {shifts: [none, dusk, glare], episodes: 20, seed: 777}
latency: {warmup: 50, steps: 300}
study: {seed: 0, cpus_per_trial: 1}
```

`SEARCHABLE` lists the `search` keys and the archs each applies to (`ncp_*` only shape the
wired CfC, `backbone_*` only the dense one). A key left out keeps the trainer's or the model's
default. `SearchSpace.suggest` draws a point (define-by-run: arch first), `train_config`
turns it into the trainer's config, `check_frames` checks the space against the data.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Protocol

from edgeliquid.model.policy import ARCHS, NavPolicyConfig
from edgeliquid.training.augment import AugmentConfig
from edgeliquid.training.config import TrainConfig

ALL = ARCHS
CFC = ("cfc",)
DENSE = ("cfc_dense",)
CFC_CORES = ("cfc", "cfc_dense")
NOT_WIRED = tuple(a for a in ARCHS if a != "cfc")  # rnn_hidden sizes these (0: matched)
# search key → (archs it applies to, where it goes, its kind: "name" / "int" / "float")
SEARCHABLE: dict[str, tuple[tuple[str, ...], str, str]] = {
    "arch": (ALL, "train", "name"),
    "cfc_mode": (CFC_CORES, "model", "name"),
    "ncp_units": (CFC, "model", "int"),
    "ncp_sparsity": (CFC, "model", "float"),
    "ncp_seed": (CFC, "model", "int"),
    "ncp_motor": (CFC, "model", "int"),
    "backbone_units": (DENSE, "model", "int"),
    "backbone_layers": (DENSE, "model", "int"),
    "rnn_hidden": (NOT_WIRED, "model", "int"),
    "feature_size": (ALL, "model", "int"),
    "conv_head": (ALL, "head", "name"),
    "lr": (ALL, "train", "float"),
    "seq_len": (ALL, "train", "int"),
    "augment": (ALL, "augment", "float"),  # strength: AugmentConfig.scaled (0 off, 1 default)
}


class Trial(Protocol):
    """What `SearchSpace.suggest` asks of a sampler's trial (Optuna's `Trial` has it)."""

    def suggest_categorical(self, name: str, choices: list) -> Any: ...
    def suggest_int(self, name: str, low: int, high: int, *, log: bool = False) -> int: ...
    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float: ...


@dataclass(frozen=True)
class Dimension:
    """One `search` entry: a list of choices (one choice: fixed), or a numeric range."""

    name: str
    choices: tuple[Any, ...] = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    integer: bool = False

    @property
    def is_range(self) -> bool:
        return not self.choices

    @property
    def searched(self) -> bool:
        return self.is_range or len(self.choices) > 1

    def values_to_check(self) -> tuple[Any, ...]:
        """The choices, or a range's two ends (every rule checked is a bound)."""
        return self.choices or (self.low, self.high)

    def suggest(self, trial: Trial) -> Any:
        if not self.searched:
            return self.choices[0]
        if self.choices:
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)


@dataclass(frozen=True)
class ConvHead:
    channels: tuple[int, ...]
    kernels: tuple[int, ...]
    strides: tuple[int, ...]

    def model_fields(self) -> dict[str, tuple[int, ...]]:
        return {
            "conv_channels": self.channels,
            "conv_kernels": self.kernels,
            "conv_strides": self.strides,
        }


_DEFAULT = NavPolicyConfig()
SHIPPED_HEAD = "shipped"  # today's conv head, always available to `conv_head`
SHIPPED = ConvHead(_DEFAULT.conv_channels, _DEFAULT.conv_kernels, _DEFAULT.conv_strides)


@dataclass(frozen=True)
class TrainBudget:
    """The short training every trial gets, for each of its seeds."""

    epochs: int = 3  # a short budget: ranks configs, does not finish them
    seeds: tuple[int, ...] = (0,)  # several: a config that flies for one seed only loses
    batch_size: int = 32
    max_minutes: float | None = None  # per seed, data loading included
    conv_norm: str = "batch"
    input_norm: str = "fixed"  # fixed | frame (the shipped recipe: frame)
    val_fraction: float = 0.1
    device: str = "cpu"


@dataclass(frozen=True)
class EvalPlan:
    """Closed-loop flights of every seed's exported model: the same scenes for every trial."""

    shifts: tuple[str, ...] = ("none",)
    episodes: int = 20  # per shift
    # disjoint from collect seeds; not 12345 or 4242, the seeds the shipped policy is reported
    # on: a search picks its configuration on these scenes, so they are no longer fresh
    seed: int = 777


@dataclass(frozen=True)
class LatencyPlan:
    """The exported step timed with ONNX Runtime on one thread, in the trial's process."""

    warmup: int = 50
    steps: int = 300  # p50 over these


@dataclass(frozen=True)
class StudyPlan:
    seed: int = 0  # the sampler's (each rerun adds the trials already run)
    cpus_per_trial: int = 1  # Ray resources: one torch thread trains, one prepares batches
    gpus_per_trial: float = 0.0


@dataclass(frozen=True)
class SearchSpace:
    dimensions: tuple[Dimension, ...]
    conv_heads: dict[str, ConvHead] = field(default_factory=dict)
    train: TrainBudget = TrainBudget()
    eval: EvalPlan = EvalPlan()
    latency: LatencyPlan = LatencyPlan()
    study: StudyPlan = StudyPlan()

    def dimension(self, name: str) -> Dimension | None:
        return next((d for d in self.dimensions if d.name == name), None)

    def suggest(self, trial: Trial) -> dict[str, Any]:
        """One point, define-by-run: arch first, then only the keys that shape that arch."""
        arch_dim = self.dimension("arch")
        arch = arch_dim.suggest(trial) if arch_dim else "cfc"
        params: dict[str, Any] = {"arch": arch}
        for dim in self.dimensions:
            if dim.name != "arch" and arch in SEARCHABLE[dim.name][0]:
                params[dim.name] = dim.suggest(trial)
        return params

    def train_config(self, params: dict[str, Any], seed: int) -> TrainConfig:
        """The trainer's config for one point of the space and one training seed."""
        model: dict[str, Any] = {}
        train: dict[str, Any] = {}
        augment: AugmentConfig | None = AugmentConfig()
        for name, value in params.items():
            where = SEARCHABLE[name][1]
            if where == "model":
                model[name] = value
            elif where == "train":
                train[name] = value
            elif where == "head":
                model |= self.conv_heads[value].model_fields()
            else:
                augment = AugmentConfig.scaled(value) if value > 0 else None
        seq_len = train.get("seq_len", TrainConfig.seq_len)
        budget = self.train
        return TrainConfig(
            **train,
            model=model,
            seq_shift=max(1, seq_len // 2),  # half-overlapping windows, as the default recipe
            conv_norm=budget.conv_norm,
            input_norm=budget.input_norm,
            epochs=budget.epochs,
            seed=seed,
            batch_size=budget.batch_size,
            max_minutes=budget.max_minutes,
            val_fraction=budget.val_fraction,
            device=budget.device,
            augment=augment,
        )

    def check_frames(self, height: int, width: int, longest_episode: int) -> None:
        """Every conv head fits the data's frames and every window fits its longest episode."""
        for name, head in self.conv_heads.items():
            checked(
                f"conv_heads.{name}",
                lambda h=head: NavPolicyConfig(
                    input_height=height, input_width=width, **h.model_fields()
                ),
            )
        seq = self.dimension("seq_len")
        longest_window = max(seq.values_to_check()) if seq else TrainConfig.seq_len
        if longest_window > longest_episode:
            raise ValueError(
                f"search.seq_len: {longest_window} steps is longer than the data's longest "
                f"episode ({longest_episode} steps)"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values: a study records its space and refuses another one."""
        return dataclasses.asdict(self)


def checked(where: str, build: Any) -> Any:
    """`build()`, its ValueError (or TypeError: a wrong keyword) as one line naming `where`."""
    try:
        return build()
    except (ValueError, TypeError) as e:
        raise ValueError(f"{where}: {e}") from None
