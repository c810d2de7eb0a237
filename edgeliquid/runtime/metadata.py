"""What an exported .onnx file says about itself, and the hash that proves its weights.

The exporter writes these keys into `metadata_props`; the runtime needs nothing else to fly the
file. Kept free of torch and of the `onnx` package: the hash works on the protobuf bytes.

`weights_sha256` is the sha256 of the serialized ModelProto with every `metadata_props` entry
removed — the graph and all its initializers, so any change to a weight (or an op) changes it,
while the metadata that carries the hash does not feed into it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from edgeliquid.errors import EdgeLiquidError

COMMAND_NAMES = ("forward", "right", "down", "yaw_rate")
COMMAND_UNITS = ("m/s", "m/s", "m/s", "rad/s")
_METADATA_FIELD = 14  # ModelProto.metadata_props


@dataclass(frozen=True)
class ModelMetadata:
    """The `metadata_props` contract between `edgeliquid export` and the runtime."""

    input_height: int
    input_width: int
    state_size: int
    dt_mode: str  # "input": dt is a graph input; "fixed": nominal dt folded into the weights
    nominal_dt: float  # seconds
    graph: str = "step"  # "step" or "unrolled"
    steps: int = 1  # time steps in one call (unrolled graphs)
    color_order: str = "RGB"
    normalization: str = "x/255, then (x-mean)/std per channel, inside the graph"
    command_names: tuple[str, ...] = COMMAND_NAMES
    command_units: tuple[str, ...] = COMMAND_UNITS
    command_limits: tuple[float, ...] = (3.0, 2.0, 1.0, 1.0)  # |value| clamps per command
    arch: str = "cfc"
    param_count: int = 0
    training_data: str = ""
    edgeliquid_version: str = ""
    weights_sha256: str = ""

    def __post_init__(self) -> None:
        if self.dt_mode not in ("input", "fixed"):
            raise ValueError(f"dt_mode must be 'input' or 'fixed', got {self.dt_mode!r}")
        if self.graph not in ("step", "unrolled"):
            raise ValueError(f"graph must be 'step' or 'unrolled', got {self.graph!r}")
        if self.input_height <= 0 or self.input_width <= 0 or self.state_size < 0:
            raise ValueError("input size must be positive and state_size non-negative")
        if not self.nominal_dt > 0:
            raise ValueError(f"nominal_dt must be > 0 s, got {self.nominal_dt}")
        if len(self.command_limits) != len(self.command_names):
            raise ValueError("command_limits needs one value per command")

    def to_props(self) -> dict[str, str]:
        """Flat string key/values for `onnx.helper.set_model_props`."""
        out = {}
        for key, value in self.__dict__.items():
            out[key] = json.dumps(list(value)) if isinstance(value, tuple) else str(value)
        return out

    @classmethod
    def from_props(cls, props: dict[str, str]) -> ModelMetadata:
        """Parse `metadata_props`; raise EdgeLiquidError naming what is missing or wrong."""
        fields = cls.__dataclass_fields__
        missing = [
            k
            for k in ("input_height", "input_width", "state_size", "dt_mode", "nominal_dt")
            if k not in props
        ]
        if missing:
            raise EdgeLiquidError(
                f"model metadata lacks {', '.join(missing)}: not an edgeliquid export?"
            )
        parse = {"int": int, "float": float, "str": str}
        kwargs = {}
        try:
            for key, f in fields.items():
                if key in props:
                    raw = props[key]
                    is_tuple = str(f.type).startswith("tuple")
                    kwargs[key] = tuple(json.loads(raw)) if is_tuple else parse[f.type](raw)
            return cls(**kwargs)
        except (ValueError, TypeError) as e:
            raise EdgeLiquidError(f"model metadata is malformed: {e}") from None


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(data):
            raise EdgeLiquidError("not a valid ONNX protobuf (truncated varint)")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise EdgeLiquidError("not a valid ONNX protobuf (varint too long)")


def strip_metadata(model_bytes: bytes) -> bytes:
    """The serialized ModelProto without its top-level `metadata_props` fields."""
    out, pos = bytearray(), 0
    while pos < len(model_bytes):
        start = pos
        key, pos = _read_varint(model_bytes, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _read_varint(model_bytes, pos)
        elif wire == 1:
            pos += 8
        elif wire == 2:
            length, pos = _read_varint(model_bytes, pos)
            pos += length
        elif wire == 5:
            pos += 4
        else:
            raise EdgeLiquidError(f"not a valid ONNX protobuf (wire type {wire})")
        if pos > len(model_bytes):
            raise EdgeLiquidError("not a valid ONNX protobuf (truncated field)")
        if field != _METADATA_FIELD:
            out += model_bytes[start:pos]
    return bytes(out)


def weights_sha256(model_bytes: bytes) -> str:
    """sha256 of the model (graph + weights) with the metadata removed."""
    return hashlib.sha256(strip_metadata(model_bytes)).hexdigest()
