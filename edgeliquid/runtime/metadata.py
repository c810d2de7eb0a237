"""Reading and proving an exported .onnx file's metadata, on the protobuf bytes alone.

Kept free of torch and of the `onnx` package: a small protobuf walker reads what the runtime
must check before ONNX Runtime ever opens the file. The schema itself (`ModelMetadata`, the
command contract) lives in `edgeliquid/contract.py`; its names are re-exported here.

The `sha256` metadata entry covers the weights *and* the metadata: it is the sha256 of

    b"edgeliquid-model-sha256-v1\\n"
    + u64(len(M)) + M          M = the serialized ModelProto without its metadata_props
    + u64(n)                   n = number of other metadata entries
    + for each entry, sorted by key: u64(len(key)) + key + u64(len(value)) + value

(u64: 8-byte big-endian length; keys and values as their exact UTF-8 bytes). So an edited
weight, op or metadata value (limits, sizes, anything but the hash entry itself) is refused.
The entries are parsed here from field 14 of ModelProto (StringStringEntryProto key=1,
value=2) rather than taken from ORT's `custom_metadata_map`, which would silently collapse a
duplicated key: a duplicated key is refused. Files from before this hash (they carry only
`weights_sha256`) are refused with "re-export it".

External data (a tensor whose values live in another file, resolved next to the model or in
the current directory) is not covered by any hash, so `external_data` finds any such tensor:
graph initializers, sparse initializers, node attribute tensors (Constant), subgraphs,
functions and training graphs.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator

from edgeliquid.contract import COMMAND_NAMES, COMMAND_UNITS, HASH_KEY, ModelMetadata
from edgeliquid.errors import EdgeLiquidError

__all__ = [
    "COMMAND_NAMES",
    "COMMAND_UNITS",
    "HASH_KEY",
    "ModelMetadata",
    "external_data",
    "metadata_props",
    "model_sha256",
    "sign",
    "strip_metadata",
    "verified_metadata",
]

_METADATA_FIELD = 14  # ModelProto.metadata_props
_HASH_TAG = b"edgeliquid-model-sha256-v1\n"
_MAX_DEPTH = 64  # nested messages (subgraphs in attributes in nodes ...)
# Where tensors live: message kind -> {field number: kind of the sub-message}.
_SCHEMA = {
    "model": {7: "graph", 20: "training", 25: "function"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},
    "training": {1: "graph", 2: "graph"},
    "function": {7: "node", 11: "attribute"},
}
_TENSOR_NAME, _EXTERNAL_DATA, _DATA_LOCATION = 8, 13, 14  # TensorProto fields


def _read_varint(data: memoryview, pos: int) -> tuple[int, int]:
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


def _fields(data: bytes | memoryview) -> Iterator[tuple[int, int, int, int, int | memoryview]]:
    """(field, wire type, start, end, value) per field; value: int or the payload's bytes."""
    view, pos = memoryview(data), 0
    while pos < len(view):
        start = pos
        key, pos = _read_varint(view, pos)
        field, wire = key >> 3, key & 7
        value: int | memoryview = 0
        if wire == 0:
            value, pos = _read_varint(view, pos)
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        elif wire == 2:
            length, pos = _read_varint(view, pos)
            value, pos = view[pos : pos + length], pos + length
        else:
            raise EdgeLiquidError(f"not a valid ONNX protobuf (wire type {wire})")
        if pos > len(view) or field == 0:
            raise EdgeLiquidError("not a valid ONNX protobuf (truncated field)")
        yield field, wire, start, pos, value


def strip_metadata(model_bytes: bytes) -> bytes:
    """The serialized ModelProto without its top-level `metadata_props` fields."""
    view, out = memoryview(model_bytes), bytearray()
    for field, _, start, end, _ in _fields(view):
        if field != _METADATA_FIELD:
            out += view[start:end]
    return bytes(out)


def _entry(payload: memoryview) -> tuple[str, str]:
    """One StringStringEntryProto: exactly one key (1) and at most one value (2), UTF-8."""
    seen: dict[int, bytes] = {}
    for field, wire, _, _, value in _fields(payload):
        if field not in (1, 2) or wire != 2 or field in seen:
            raise EdgeLiquidError(
                "model metadata has a malformed entry (field repeated or unknown)"
            )
        seen[field] = bytes(value)
    try:
        return seen[1].decode(), seen.get(2, b"").decode()
    except KeyError:
        raise EdgeLiquidError("model metadata has an entry without a key") from None
    except UnicodeDecodeError:
        raise EdgeLiquidError("model metadata has an entry that is not UTF-8 text") from None


def metadata_props(model_bytes: bytes) -> dict[str, str]:
    """Every top-level metadata entry; a key that appears twice is refused."""
    props: dict[str, str] = {}
    for field, wire, _, _, value in _fields(model_bytes):
        if field == _METADATA_FIELD:
            if wire != 2:
                raise EdgeLiquidError("not a valid ONNX protobuf (metadata_props wire type)")
            key, text = _entry(value)  # type: ignore[arg-type]
            if key in props:
                raise EdgeLiquidError(f"model metadata key {key[:40]!r} appears twice")
            props[key] = text
    return props


def model_sha256(model_bytes: bytes, props: dict[str, str]) -> str:
    """The hash over the model without metadata plus every entry of `props` but the hash."""

    def u64(n: int) -> bytes:
        return struct.pack(">Q", n)

    stripped = strip_metadata(model_bytes)
    digest = hashlib.sha256(_HASH_TAG + u64(len(stripped)) + stripped)
    entries = sorted((k, v) for k, v in props.items() if k != HASH_KEY)
    digest.update(u64(len(entries)))
    for key, value in entries:
        for part in (key.encode(), value.encode()):
            digest.update(u64(len(part)) + part)
    return digest.hexdigest()


def sign(model_bytes: bytes, props: dict[str, str]) -> dict[str, str]:
    """`props` plus the `sha256` entry that proves them and the model's weights."""
    return {**props, HASH_KEY: model_sha256(model_bytes, props)}


def external_data(model_bytes: bytes) -> str | None:
    """The name of the first tensor whose data lives outside the file, else None."""
    return _scan(memoryview(model_bytes), "model", 0)


def _scan(data: memoryview, kind: str, depth: int) -> str | None:
    if depth > _MAX_DEPTH:
        raise EdgeLiquidError(f"model nests more than {_MAX_DEPTH} messages deep")
    if kind == "tensor":
        return _external_tensor(data)
    children = _SCHEMA[kind]
    for field, wire, _, _, value in _fields(data):
        if field in children and wire == 2:
            found = _scan(value, children[field], depth + 1)  # type: ignore[arg-type]
            if found is not None:
                return found
    return None


def _external_tensor(data: memoryview) -> str | None:
    name, external = "", False
    for field, wire, _, _, value in _fields(data):
        if field == _TENSOR_NAME and wire == 2:
            name = bytes(value).decode(errors="replace")
        elif field == _EXTERNAL_DATA or (field == _DATA_LOCATION and (wire, value) != (0, 0)):
            external = True
    return (name or "<unnamed>") if external else None


def verified_metadata(model_bytes: bytes, name: str) -> ModelMetadata:
    """The file's metadata after every check that needs no ONNX Runtime (one-line errors)."""
    props = metadata_props(model_bytes)
    if not props:
        raise EdgeLiquidError(f"{name} carries no edgeliquid metadata: not an edgeliquid export?")
    if not props.get(HASH_KEY):
        raise EdgeLiquidError(
            f"{name} carries no {HASH_KEY} over its weights and metadata (an older export?); "
            "re-export it"
        )
    if props[HASH_KEY] != model_sha256(model_bytes, props):
        raise EdgeLiquidError(f"{name}: metadata or weights do not match their sha256")
    tensor = external_data(model_bytes)
    if tensor is not None:
        raise EdgeLiquidError(
            f"{name}: tensor {tensor[:60]!r} keeps its data in another file (external data), "
            "which no hash covers; export a self-contained file"
        )
    try:
        return ModelMetadata.from_props(props)
    except ValueError as e:
        raise EdgeLiquidError(f"{name}: metadata {e}") from None
