"""The metadata contract and the weights hash, without torch or onnx."""

import pytest

from edgeliquid.errors import EdgeLiquidError
from edgeliquid.runtime.metadata import ModelMetadata, strip_metadata, weights_sha256

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
    base = dict(input_height=72, input_width=128, state_size=19, dt_mode="input", nominal_dt=0.1)
    return ModelMetadata(**{**base, **kw})


def test_props_round_trip():
    meta = _meta(arch="cfc", param_count=20000, weights_sha256="ab" * 32)
    assert ModelMetadata.from_props(meta.to_props()) == meta


def test_hash_ignores_metadata_but_sees_weights():
    model = _model(1.0)
    plain = model.SerializeToString()
    helper.set_model_props(model, _meta(weights_sha256=weights_sha256(plain)).to_props())
    with_meta = model.SerializeToString()
    assert strip_metadata(with_meta) == plain
    assert weights_sha256(with_meta) == weights_sha256(plain)
    assert weights_sha256(_model(1.0 + 1e-6).SerializeToString()) != weights_sha256(plain)


def test_bad_metadata_is_a_clear_error():
    with pytest.raises(EdgeLiquidError, match="lacks"):
        ModelMetadata.from_props({"input_height": "72"})
    props = _meta().to_props() | {"state_size": "many"}
    with pytest.raises(EdgeLiquidError, match="malformed"):
        ModelMetadata.from_props(props)
    with pytest.raises(ValueError, match="dt_mode"):
        _meta(dt_mode="sometimes")


def test_garbage_bytes_are_rejected():
    with pytest.raises(EdgeLiquidError, match="not a valid ONNX"):
        strip_metadata(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff")
