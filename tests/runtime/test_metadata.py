"""The metadata contract and the hash over weights and metadata, on protobuf bytes."""

import dataclasses

import pytest

from edgeliquid.contract import COMMAND_LIMITS, COMMAND_NAMES, COMMAND_UNITS, HASH_KEY
from edgeliquid.errors import EdgeLiquidError
from edgeliquid.runtime.metadata import (
    ModelMetadata,
    metadata_props,
    model_sha256,
    sign,
    strip_metadata,
    verified_metadata,
)

onnx = pytest.importorskip("onnx")
from onnx import helper, numpy_helper  # noqa: E402


def _model(weight: float):
    import numpy as np

    w = numpy_helper.from_array(np.full(3, weight, np.float32), "w")
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [3])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [3])
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g", [x], [y], [w])
    return helper.make_model(graph)


def _meta(**kw):
    base = dict(
        input_height=72, input_width=128, state_size=19, dt_mode="input", nominal_dt=0.1,
        command_names=COMMAND_NAMES, command_units=COMMAND_UNITS, command_limits=COMMAND_LIMITS,
    )  # fmt: skip
    return ModelMetadata(**{**base, **kw})


def _signed(weight: float = 1.0, meta=None) -> bytes:
    model = _model(weight)
    props = sign(model.SerializeToString(), (meta or _meta()).to_props())
    helper.set_model_props(model, props)
    return model.SerializeToString()


def test_props_round_trip():
    meta = _meta(arch="cfc", param_count=20000, sha256="ab" * 32)
    props = meta.to_props()
    assert HASH_KEY not in props  # signing adds it
    assert ModelMetadata.from_props(props | {HASH_KEY: "ab" * 32}) == meta


def test_hash_covers_weights_and_every_metadata_entry():
    data = _signed()
    props = metadata_props(data)
    assert strip_metadata(data) == _model(1.0).SerializeToString()
    assert props[HASH_KEY] == model_sha256(data, props)
    assert verified_metadata(data, "m.onnx") == dataclasses.replace(_meta(), sha256=props[HASH_KEY])
    assert model_sha256(_model(1.0 + 1e-6).SerializeToString(), props) != props[HASH_KEY]
    for key in props:  # any edited entry, or an extra one, changes the hash
        if key != HASH_KEY:
            assert model_sha256(data, props | {key: props[key] + " "}) != props[HASH_KEY]
    assert model_sha256(data, props | {"quantization": "int8"}) != props[HASH_KEY]


def test_bad_metadata_is_a_clear_error():
    with pytest.raises(ValueError, match="lacks"):
        ModelMetadata.from_props({"input_height": "72"})
    props = _meta().to_props() | {"state_size": "many"}
    with pytest.raises(ValueError, match="state_size must be an integer"):
        ModelMetadata.from_props(props)
    with pytest.raises(ValueError, match="dt_mode"):
        _meta(dt_mode="sometimes")


def test_garbage_bytes_are_rejected():
    with pytest.raises(EdgeLiquidError, match="not a valid ONNX"):
        strip_metadata(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff")
