"""Tiny hand-built step graphs with the export contract, for runtime tests (needs `onnx`).

The graph follows what `edgeliquid export --graph step` writes: inputs `image` uint8 [1,H,W,3]
RGB, `state` float32 [1,S], `dt` float32 [1,1] (absent for dt_mode "fixed"); outputs `command`
float32 [1,4] and `state_out` float32 [1,S]. The maths is simple enough to mirror in numpy
(`reference_step`), so tests can check the runtime's commands value for value:

    feat      = mean over pixels of image/255                     [1,3]
    command   = gain * tanh(feat @ Wi + state @ Ws + b)  (+ NaN once step count > nan_after)
    state_out = state * exp(-dt) + (feat @ Wu) * dt,  state_out[0] = state[0] + 1  (a step count)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgeliquid.contract import COMMAND_LIMITS, COMMAND_NAMES, COMMAND_UNITS, HASH_KEY, NOMINAL_DT
from edgeliquid.runtime.metadata import ModelMetadata, sign

HEIGHT, WIDTH, STATE = 16, 20, 6


def weights(state: int = STATE, seed: int = 0) -> dict[str, np.ndarray]:
    """The fixture's weights, reproducible from the seed."""
    rng = np.random.default_rng(seed)
    w = {
        "Wi": rng.normal(0, 1.0, (3, 4)),
        "Ws": rng.normal(0, 0.3, (state, 4)),
        "b": rng.normal(0, 0.1, (1, 4)),
        "Wu": rng.normal(0, 1.0, (3, state)),
    }
    w["Ws"][0] = 0.0  # the step counter in state[0] must not drive the command
    w["Wu"][:, 0] = 0.0
    return {k: v.astype(np.float32) for k, v in w.items()}


def reference_step(
    image: np.ndarray, state: np.ndarray, dt: float, gain: float = 1.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """numpy twin of the graph for an image already at the model's input size."""
    w = weights(state.shape[-1], seed)
    feat = image.reshape(-1, 3).astype(np.float32).mean(0, keepdims=True) / 255.0
    command = gain * np.tanh(feat @ w["Wi"] + state @ w["Ws"] + w["b"])
    new = state * np.exp(-np.float32(dt)) + (feat @ w["Wu"]) * np.float32(dt)
    new[0, 0] = state[0, 0] + 1.0
    return command[0].astype(np.float32), new.astype(np.float32)


def _nodes(fixed_dt: float | None, gain: float, nan_after: int | None) -> list:
    make = helper.make_node
    dt_name = "dt_const" if fixed_dt is not None else "dt"
    nodes = [
        make("Cast", ["image"], ["img_f"], to=TensorProto.FLOAT),
        make("ReduceMean", ["img_f"], ["mean4"], axes=[1, 2], keepdims=0),
        make("Div", ["mean4", "c255"], ["feat"]),
        make("MatMul", ["feat", "Wi"], ["from_img"]),
        make("MatMul", ["state", "Ws"], ["from_state"]),
        make("Add", ["from_img", "from_state"], ["pre0"]),
        make("Add", ["pre0", "b"], ["pre"]),
        make("Tanh", ["pre"], ["squashed"]),
        make("Mul", ["squashed", "gain"], ["cmd0" if nan_after is not None else "command"]),
        make("Neg", [dt_name], ["neg_dt"]),
        make("Exp", ["neg_dt"], ["decay"]),
        make("Mul", ["state", "decay"], ["kept"]),
        make("MatMul", ["feat", "Wu"], ["drive"]),
        make("Mul", ["drive", dt_name], ["drive_dt"]),
        make("Add", ["kept", "drive_dt"], ["mixed"]),
        make("Add", ["state", "one_hot0"], ["counted"]),
        make("Mul", ["counted", "one_hot0"], ["counter"]),
        make("Mul", ["mixed", "not_hot0"], ["rest"]),
        make("Add", ["rest", "counter"], ["state_out"]),
    ]
    if nan_after is not None:  # sqrt(nan_after - count) * 0 is 0, then NaN past the limit
        nodes += [
            make("Sub", ["limit", "state"], ["room"]),
            make("Sqrt", ["room"], ["root"]),
            make("Mul", ["root", "zero"], ["poison_all"]),
            make("ReduceSum", ["poison_all", "axis1"], ["poison"], keepdims=1),
            make("Add", ["cmd0", "poison"], ["command"]),
        ]
    return nodes


def _initializers(state: int, seed: int, fixed_dt, gain, nan_after) -> list:
    hot = np.zeros((1, state), np.float32)
    hot[0, 0] = 1.0
    consts = weights(state, seed) | {
        "c255": np.float32(255.0),
        "gain": np.float32(gain),
        "one_hot0": hot,
        "not_hot0": 1.0 - hot,
    }
    if fixed_dt is not None:
        consts["dt_const"] = np.full((1, 1), fixed_dt, np.float32)
    if nan_after is not None:  # only state[0] (the counter) may go negative under the root
        consts["limit"] = np.where(hot > 0, np.float32(nan_after), np.float32(1e6))
        consts["zero"] = np.float32(0.0)
    tensors = [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in consts.items()]
    return [*tensors, numpy_helper.from_array(np.array([1], np.int64), "axis1")]


def build_model(
    *,
    height: int = HEIGHT,
    width: int = WIDTH,
    state: int = STATE,
    dt_mode: str = "input",
    gain: float = 1.0,
    nan_after: int | None = None,
    seed: int = 0,
    limits: tuple[float, ...] = COMMAND_LIMITS,
    bad_hash: bool = False,
) -> bytes:
    """Serialized step graph with edgeliquid metadata (and a correct hash unless bad_hash)."""
    fixed_dt = NOMINAL_DT if dt_mode == "fixed" else None
    inputs = [
        helper.make_tensor_value_info("image", TensorProto.UINT8, [1, height, width, 3]),
        helper.make_tensor_value_info("state", TensorProto.FLOAT, [1, state]),
    ]
    if fixed_dt is None:
        inputs.append(helper.make_tensor_value_info("dt", TensorProto.FLOAT, [1, 1]))
    outputs = [
        helper.make_tensor_value_info("command", TensorProto.FLOAT, [1, 4]),
        helper.make_tensor_value_info("state_out", TensorProto.FLOAT, [1, state]),
    ]
    graph = helper.make_graph(
        _nodes(fixed_dt, gain, nan_after),
        "fixture_step",
        inputs,
        outputs,
        _initializers(state, seed, fixed_dt, gain, nan_after),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    meta = ModelMetadata(
        input_height=height,
        input_width=width,
        state_size=state,
        dt_mode=dt_mode,
        nominal_dt=NOMINAL_DT,
        command_names=COMMAND_NAMES,
        command_units=COMMAND_UNITS,
        command_limits=limits,
        arch="fixture",
    )
    props = sign(model.SerializeToString(), meta.to_props())
    if bad_hash:
        props[HASH_KEY] = "0" * 64
    helper.set_model_props(model, props)
    return model.SerializeToString()


def resign(data: bytes, edits: dict[str, str] | None = None, extra: tuple = ()) -> bytes:
    """The model's bytes with metadata entries replaced by `edits`, signed again, so a check
    that refuses them is the validation and not the hash. `extra`: (key, value) entries
    appended after signing (e.g. a duplicated key)."""
    model = onnx.load_from_string(data)
    props = {p.key: p.value for p in model.metadata_props} | (edits or {})
    del model.metadata_props[:]
    helper.set_model_props(model, sign(model.SerializeToString(), props))
    for key, value in extra:
        model.metadata_props.add(key=key, value=value)
    return model.SerializeToString()


def edit_props(data: bytes, edits: dict[str, str]) -> bytes:
    """The model's bytes with metadata entries replaced by `edits`, the old hash kept."""
    model = onnx.load_from_string(data)
    props = {p.key: p.value for p in model.metadata_props} | edits
    del model.metadata_props[:]
    helper.set_model_props(model, props)
    return model.SerializeToString()


def write_model(path: Path, **kwargs) -> Path:
    """Write `build_model(**kwargs)` to path and return it."""
    path.write_bytes(build_model(**kwargs))
    return path
