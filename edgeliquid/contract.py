"""The command contract and the ONNX metadata schema: the one home of both (stdlib only).

A command is 4 float32 values in the body FRD frame: `forward`, `right`, `down` m/s and
`yaw_rate` rad/s (positive = clockwise seen from above). `COMMAND_LIMITS` are the simulator's
true clamps, the envelope every policy was trained in; the hold command is all zeros.

`ModelMetadata` is what an exported .onnx file says about itself in `metadata_props`. Every field
is checked on construction (type, finite, range), so a file whose metadata parses is one the
runtime can fly safely. Its `command_limits` may be stricter than `COMMAND_LIMITS` (a file may
clamp harder, e.g. for a first flight), never looser: each must be in (0, COMMAND_LIMITS[i]].
The hash that covers the metadata (`sha256`) is computed and checked in `runtime/metadata.py`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import MISSING, dataclass, fields

COMMAND_NAMES = ("forward", "right", "down", "yaw_rate")
COMMAND_UNITS = ("m/s", "m/s", "m/s", "rad/s")
COMMAND_SIZE = len(COMMAND_NAMES)  # 4 values per control step
COMMAND_LIMITS = (3.0, 2.0, 1.0, 1.0)  # |value| clamps: the simulator's, the policy's envelope
HOLD = (0.0, 0.0, 0.0, 0.0)  # hover in place
NOMINAL_DT = 0.1  # s: the 10 Hz control rate the expert demonstrates

HASH_KEY = "sha256"  # the metadata entry that holds the hash over weights and metadata
DT_MODES = ("input", "fixed")
GRAPHS = ("step", "unrolled")
# Plausible bounds: a ~20k-parameter policy on a camera frame. The height/width caps are a
# 1080p frame; 4096 state values cover the CfC (24) and any LSTM/GRU baseline (2 x hidden).
BOUNDS = {
    "input_height": (8, 1080),
    "input_width": (8, 1920),
    "state_size": (1, 4096),
    "steps": (1, 1024),
    "param_count": (0, 10**9),
}
TEXT_LIMITS = {  # max characters per text field (printable, one line)
    "dt_mode": 16,
    "graph": 16,
    "color_order": 16,
    "normalization": 1000,
    "arch": 64,
    "training_data": 4000,
    "edgeliquid_version": 64,
    HASH_KEY: 64,
}
_INT = re.compile(r"-?[0-9]{1,12}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_MAX_JSON = 1000  # characters of a JSON-valued entry (lists, nominal_dt)


@dataclass(frozen=True)
class ModelMetadata:
    """The `metadata_props` contract between `edgeliquid export` and the runtime."""

    input_height: int
    input_width: int
    state_size: int
    dt_mode: str  # "input": dt is a graph input; "fixed": nominal dt folded into the weights
    nominal_dt: float  # seconds, in (0, 1]
    command_names: tuple[str, ...]  # must be COMMAND_NAMES
    command_units: tuple[str, ...]  # must be COMMAND_UNITS
    command_limits: tuple[float, ...]  # |value| clamps, each in (0, COMMAND_LIMITS[i]]
    graph: str = "step"  # "step" or "unrolled"
    steps: int = 1  # time steps in one call (unrolled graphs; 1 for step graphs)
    color_order: str = "RGB"
    normalization: str = "x/255, then (x-mean)/std per channel, inside the graph"
    arch: str = "cfc"
    param_count: int = 0
    training_data: str = ""
    edgeliquid_version: str = ""
    sha256: str = ""  # over weights and every other entry; set when signed (runtime/metadata)

    def __post_init__(self) -> None:
        for name in BOUNDS:
            _check_int(name, getattr(self, name))
        for name, limit in TEXT_LIMITS.items():
            _check_text(name, getattr(self, name), limit)
        self._check_choices()
        self._check_commands()
        dt = _number("nominal_dt", self.nominal_dt)
        if not 0 < dt <= 1:
            raise ValueError(f"nominal_dt must be a finite number in (0, 1] s, got {dt}")
        object.__setattr__(self, "nominal_dt", dt)

    def _check_choices(self) -> None:
        if self.dt_mode not in DT_MODES:
            raise ValueError(f"dt_mode must be one of {DT_MODES}, got {self.dt_mode!r}")
        if self.graph not in GRAPHS:
            raise ValueError(f"graph must be one of {GRAPHS}, got {self.graph!r}")
        if self.graph == "step" and self.steps != 1:
            raise ValueError(f"steps must be 1 for a step graph, got {self.steps}")
        if self.color_order != "RGB":
            raise ValueError(
                f"color_order must be 'RGB' (frames are RGB), got {self.color_order!r}"
            )
        if self.sha256 and not _HEX64.fullmatch(self.sha256):
            raise ValueError(f"{HASH_KEY} must be 64 lowercase hex digits, got {self.sha256!r}")

    def _check_commands(self) -> None:
        for name, want in (("command_names", COMMAND_NAMES), ("command_units", COMMAND_UNITS)):
            value = _as_tuple(name, getattr(self, name))
            if value != want:
                raise ValueError(f"{name} must be exactly {list(want)}, got {list(value)}")
            object.__setattr__(self, name, value)
        limits = _as_tuple("command_limits", self.command_limits)
        if len(limits) != len(COMMAND_LIMITS):
            raise ValueError(
                f"command_limits needs {len(COMMAND_LIMITS)} values, one per command, "
                f"got {len(limits)}"
            )
        checked = []
        for i, (value, true) in enumerate(zip(limits, COMMAND_LIMITS, strict=True)):
            number = _number(f"command_limits[{i}]", value)
            if not 0 < number <= true:
                raise ValueError(
                    f"command_limits[{i}] ({COMMAND_NAMES[i]}) must be in (0, {true}] (a file "
                    f"may clamp harder than the simulator, never looser), got {number}"
                )
            checked.append(number)
        object.__setattr__(self, "command_limits", tuple(checked))

    def to_props(self) -> dict[str, str]:
        """Flat string key/values for `metadata_props`, without the hash (signing adds it)."""
        out = {}
        for key, value in self.__dict__.items():
            if key != HASH_KEY:
                out[key] = json.dumps(list(value)) if isinstance(value, tuple) else str(value)
        return out

    @classmethod
    def from_props(cls, props: dict[str, str]) -> ModelMetadata:
        """Parse `metadata_props` (unknown keys ignored); ValueError names a bad field."""
        required = [f.name for f in fields(cls) if f.default is MISSING]
        missing = [k for k in required if k not in props]
        if missing:
            raise ValueError(f"lacks {', '.join(missing)}: not an edgeliquid export?")
        kwargs = {}
        for f in fields(cls):
            if f.name in props:
                kwargs[f.name] = _parse(f.name, str(f.type), props[f.name])
        return cls(**kwargs)


def _parse(name: str, kind: str, raw: str):
    """One entry's string as the field's type; ValueError naming the field when it is not."""
    if kind == "int":
        if not _INT.fullmatch(raw):
            raise ValueError(f"{name} must be an integer, got {raw[:40]!r}")
        return int(raw)
    if kind == "str":
        return raw
    if len(raw) > _MAX_JSON:
        raise ValueError(f"{name} is {len(raw)} characters; at most {_MAX_JSON}")
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise ValueError(f"{name} is not valid JSON: {raw[:40]!r}") from None
    return value if kind == "float" else _as_tuple(name, value)


def _as_tuple(name: str, value) -> tuple:
    if not isinstance(value, list | tuple):
        raise ValueError(f"{name} must be a list, got {type(value).__name__}")
    return tuple(value)


def _number(name: str, value) -> float:
    """A finite int/float (not a bool, a string or a list) as float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {type(value).__name__} {value!r:.40}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return float(value)


def _check_int(name: str, value) -> None:
    low, high = BOUNDS[name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r:.40}")


def _check_text(name: str, value, limit: int) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text, got {type(value).__name__}")
    if len(value) > limit or not value.isprintable():
        raise ValueError(f"{name} must be one printable line of at most {limit} characters")
