"""The ONNX engine: checks before flight, step parity with the fixture's numpy twin, frames."""

import hashlib
import logging

import cv2
import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx_fixtures import HEIGHT, STATE, WIDTH, build_model, reference_step, resign, write_model

from edgeliquid.errors import EdgeLiquidError
from edgeliquid.runtime.engine import OnnxPolicy, provider_chain


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("m") / "fixture.onnx")


@pytest.fixture(scope="module")
def policy(model_path):
    return OnnxPolicy(model_path)


def _frames(n, shape=(HEIGHT, WIDTH, 3), seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(n)]


def test_steps_match_numpy_twin_with_state_fed_back(policy):
    policy.reset()
    state = np.zeros((1, STATE), np.float32)
    for frame, dt in zip(_frames(6), [0.1, 0.05, 0.2, 0.1, 0.33, 0.01], strict=True):
        expected, state = reference_step(frame, state, dt)
        np.testing.assert_allclose(policy.step(frame, dt), expected, atol=1e-5)
        np.testing.assert_allclose(policy.state, state[0], atol=1e-5)
    assert policy.state[0] == 6.0  # the fixture counts its steps in state[0]


def test_reset_restarts_and_set_state_replays(policy):
    frames = _frames(3, seed=1)
    policy.reset()
    first = [policy.step(f, 0.1) for f in frames]
    policy.reset()
    assert not policy.state.any()
    np.testing.assert_array_equal([policy.step(f, 0.1) for f in frames], first)
    policy.set_state(np.zeros(STATE))
    policy.step(frames[0], 0.1)
    saved = policy.state
    later = policy.step(frames[1], 0.1)
    policy.set_state(saved)
    np.testing.assert_array_equal(policy.step(frames[1], 0.1), later)


def test_missing_dt_means_nominal(policy):
    frame = _frames(1)[0]
    policy.reset()
    a = policy.step(frame)
    policy.reset()
    np.testing.assert_array_equal(policy.step(frame, policy.metadata.nominal_dt), a)


def test_fixed_dt_graph_ignores_dt(tmp_path):
    fixed = OnnxPolicy(write_model(tmp_path / "fixed.onnx", dt_mode="fixed"))
    frame = _frames(1)[0]
    a = fixed.step(frame, 0.5)
    fixed.reset()
    np.testing.assert_array_equal(fixed.step(frame, 0.01), a)
    expected, _ = reference_step(frame, np.zeros((1, STATE), np.float32), 0.1)
    np.testing.assert_allclose(a, expected, atol=1e-5)


def test_any_frame_size_is_resized_with_inter_area(policy):
    big = _frames(1, shape=(120, 160, 3), seed=3)[0]
    resized = cv2.resize(big, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(policy.prepare(big), resized)
    policy.reset()
    expected, _ = reference_step(resized, np.zeros((1, STATE), np.float32), 0.1)
    np.testing.assert_allclose(policy.step(big, 0.1), expected, atol=1e-5)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (np.zeros((HEIGHT, WIDTH, 3), np.float32), "dtype must be uint8"),
        (np.zeros((HEIGHT, WIDTH), np.uint8), "HxWx3"),
        (np.zeros((HEIGHT, WIDTH, 4), np.uint8), "HxWx3"),
        (np.zeros((1, HEIGHT, WIDTH, 3), np.uint8), "HxWx3"),
        (np.zeros((0, WIDTH, 3), np.uint8), "empty"),
        ([[0, 0, 0]], "numpy array"),
    ],
)
def test_bad_frames_are_clear_errors(policy, frame, message):
    with pytest.raises(EdgeLiquidError, match=message):
        policy.step(frame, 0.1)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    shape=st.lists(st.integers(0, 70), min_size=0, max_size=4),
    dtype=st.sampled_from([np.uint8, np.int8, np.uint16, np.float32, np.float64, np.bool_]),
)
def test_random_frames_work_or_raise_clear_error(policy, shape, dtype):
    frame = np.ones(shape, dtype)
    try:
        command = policy.step(frame, 0.1)
    except EdgeLiquidError:
        ok = dtype == np.uint8 and len(shape) == 3 and shape[2] == 3 and min(shape[:2]) > 0
        assert not ok, f"a valid frame {shape} was rejected"
        return
    assert command.shape == (4,) and command.dtype == np.float32
    assert np.isfinite(command).all()


def test_garbage_bytes_are_one_clear_error(tmp_path):
    path = tmp_path / "garbage.onnx"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(EdgeLiquidError, match=r"not a valid ONNX|cannot load"):
        OnnxPolicy(path)


def test_truncated_model_is_rejected(tmp_path):
    data = build_model()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(EdgeLiquidError):
        OnnxPolicy(path)


def test_weights_not_matching_hash_are_rejected(tmp_path):
    with pytest.raises(EdgeLiquidError, match="metadata or weights do not match their sha256"):
        OnnxPolicy(write_model(tmp_path / "bad.onnx", bad_hash=True))


def test_sidecar_sha256_is_checked(tmp_path):
    path = write_model(tmp_path / "m.onnx")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    sidecar = tmp_path / "m.onnx.sha256"
    sidecar.write_text(f"{digest}  m.onnx\n")
    OnnxPolicy(path)
    sidecar.write_text(f"{'0' * 64}  m.onnx\n")
    with pytest.raises(EdgeLiquidError, match=r"does not match m\.onnx\.sha256"):
        OnnxPolicy(path)


def test_metadata_must_describe_the_graph(tmp_path):
    path = tmp_path / "lying.onnx"
    path.write_bytes(resign(build_model(), {"input_height": "32"}))
    with pytest.raises(EdgeLiquidError, match="metadata says uint8"):
        OnnxPolicy(path)


def test_model_without_metadata_is_rejected(tmp_path):
    model = onnx.load_from_string(build_model())
    del model.metadata_props[:]
    path = tmp_path / "bare.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(EdgeLiquidError, match="no edgeliquid metadata"):
        OnnxPolicy(path)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(EdgeLiquidError, match="not found"):
        OnnxPolicy(tmp_path / "nope.onnx")


def test_session_is_tuned_for_a_tiny_model(policy):
    opts = policy.session.get_session_options()
    assert opts.intra_op_num_threads == 1 and opts.inter_op_num_threads == 1
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert opts.graph_optimization_level.name == "ORT_ENABLE_ALL"


def test_missing_provider_falls_back_to_cpu_with_a_log(model_path, caplog, monkeypatch):
    monkeypatch.setattr("onnxruntime.get_available_providers", lambda: ["CPUExecutionProvider"])
    with caplog.at_level(logging.WARNING, logger="edgeliquid.runtime.engine"):
        chain = provider_chain("tensorrt")
        policy = OnnxPolicy(model_path, provider="cuda")
    assert chain == ["CPUExecutionProvider"]
    assert policy.provider == "CPUExecutionProvider"
    assert "TensorrtExecutionProvider is not in this onnxruntime build" in caplog.text
    assert "CUDAExecutionProvider is not in this onnxruntime build" in caplog.text


def test_tensorrt_chain_asks_for_engine_cache_and_fp16(tmp_path, monkeypatch):
    names = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr("onnxruntime.get_available_providers", lambda: names)
    chain = provider_chain("tensorrt", trt_cache=tmp_path / "trt")
    (trt, options), cuda, cpu = chain
    assert (trt, cuda, cpu) == tuple(names)
    assert options["trt_engine_cache_enable"] and options["trt_fp16_enable"]
    assert options["trt_engine_cache_path"] == str(tmp_path / "trt")


def test_unknown_provider_is_rejected():
    with pytest.raises(EdgeLiquidError, match="choose one of cpu, cuda, tensorrt"):
        provider_chain("npu")


def test_runtime_imports_neither_torch_nor_onnx():
    import subprocess
    import sys

    modules = [
        "engine",
        "sources",
        "simsource",
        "sinks",
        "mavlink",
        "daemon",
        "notify",
        "recorder",
        "service",
    ]
    code = "; ".join(
        [f"import edgeliquid.runtime.{m}" for m in modules]
        + ["import edgeliquid.demo, sys", "bad = {'torch', 'onnx'} & set(sys.modules)"]
        + ["assert not bad, bad"]
    )
    subprocess.run([sys.executable, "-c", code], check=True)
