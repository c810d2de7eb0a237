"""The ONNX policy engine: load an exported step graph, check it, and fly it one frame at a time.

`StepPolicy` is the acting interface every numpy-facing policy shares (`reset()`, `step(frame,
dt)`, `input_size`): `OnnxPolicy` here, `model.TorchPolicy` for checkpoints, what the daemon and
`sim.rollout` fly. `OnnxPolicy` mirrors the torch policy's acting interface: it owns the
recurrent state, feeds it back as the graph's `state` input, and returns the raw 4-value command
(forward, right, down m/s; yaw_rate rad/s). Clamping and every fail-safe live in the daemon.

Before anything flies the engine checks the file, and ONNX Runtime opens it only after the
checks that need no session: when a `<file>.sha256` sits beside it (`sha256sum` format) the whole
file must match it; the file's `sha256` entry must cover its weights and every other metadata
entry (no key twice); no tensor may keep its data in another file; every metadata field must be
in range (`edgeliquid/contract.py`). Then the graph must be the step graph the metadata
describes: input and state sizes, dt input, a 4-value command.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import onnxruntime as ort

from edgeliquid.errors import EdgeLiquidError
from edgeliquid.runtime.metadata import ModelMetadata, verified_metadata

log = logging.getLogger(__name__)

PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
DEFAULT_TRT_CACHE = Path.home() / ".cache" / "edgeliquid" / "trt"
_OUTPUTS = ["command", "state_out"]
_MAX_MODEL_BYTES = 2**31  # protobuf's limit: a bigger file needs external data, refused anyway


def session_options() -> ort.SessionOptions:
    """ORT settings for a ~20k-parameter graph: one thread, no spinning, full optimisation."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    opts.log_severity_level = 3  # errors only: ORT's warnings are noise on the device
    return opts


def provider_chain(provider: str, trt_cache: Path = DEFAULT_TRT_CACHE) -> list:
    """ORT providers for `provider`, skipping (with a log line) those this build lacks; CPU last."""
    if provider not in PROVIDERS:
        choices = ", ".join(PROVIDERS)
        raise EdgeLiquidError(f"unknown provider {provider!r}; choose one of {choices}")
    available = set(ort.get_available_providers())
    wanted = {"cpu": [], "cuda": ["cuda"], "tensorrt": ["tensorrt", "cuda"]}[provider]
    chain: list = []
    for name in wanted:
        ep = PROVIDERS[name]
        if ep not in available:
            log.warning("%s is not in this onnxruntime build; falling back", ep)
        elif name == "tensorrt":
            trt_cache.mkdir(parents=True, exist_ok=True)
            options = {
                "trt_engine_cache_enable": True,
                "trt_engine_cache_path": str(trt_cache),
                "trt_fp16_enable": True,
            }
            chain.append((ep, options))
        else:
            chain.append(ep)
    return [*chain, PROVIDERS["cpu"]]


def _read_verified(path: Path) -> bytes:
    """The model's bytes, after the optional `<file>.sha256` sidecar check."""
    if not path.is_file():
        raise EdgeLiquidError(f"model file not found: {path}")
    if path.stat().st_size > _MAX_MODEL_BYTES:
        raise EdgeLiquidError(f"{path.name} is over 2 GiB: not a self-contained ONNX model")
    data = path.read_bytes()
    sidecar = path.with_name(path.name + ".sha256")
    if sidecar.is_file() and hashlib.sha256(data).hexdigest() != _sidecar_digest(sidecar):
        raise EdgeLiquidError(f"{path.name} does not match {sidecar.name}: file changed?")
    return data


def _sidecar_digest(sidecar: Path) -> str:
    """The hex digest a `sha256sum`-format sidecar names (ASCII, first field)."""
    with sidecar.open("rb") as f:
        raw = f.read(4097)
    try:
        fields = raw.decode("ascii").split() if len(raw) <= 4096 else []
    except UnicodeDecodeError:
        fields = []
    if not fields:
        raise EdgeLiquidError(
            f"{sidecar.name} is not a sha256sum line (`<64 hex digits>  <file name>`)"
        )
    return fields[0].lower()


def _open_session(data: bytes, path: Path, providers: list) -> ort.InferenceSession:
    try:
        return ort.InferenceSession(data, sess_options=session_options(), providers=providers)
    except Exception as e:  # ORT's exceptions share no base class beyond Exception
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise EdgeLiquidError(f"cannot load {path.name} as an ONNX model: {first}") from None


def _check_signature(session: ort.InferenceSession, meta: ModelMetadata, name: str) -> None:
    """The graph's inputs and outputs must be the step-graph contract the metadata describes."""
    if meta.graph != "step":
        raise EdgeLiquidError(f"{name} is a {meta.graph!r} graph; `run` flies step graphs only")
    inputs = {i.name: i for i in session.get_inputs()}
    want = {"image", "state"} | ({"dt"} if meta.dt_mode == "input" else set())
    outputs = {o.name: o for o in session.get_outputs()}
    if set(inputs) != want or not {"command", "state_out"} <= set(outputs):
        raise EdgeLiquidError(
            f"{name} has inputs {sorted(inputs)} and outputs {sorted(outputs)}; expected "
            f"inputs {sorted(want)} and outputs ['command', 'state_out']"
        )
    image = [1, meta.input_height, meta.input_width, 3]
    _check_tensor(name, "image input", inputs["image"], "uint8", image, "input_height/width")
    state = [1, meta.state_size]
    _check_tensor(name, "state input", inputs["state"], "float", state, "state_size")
    _check_tensor(name, "state_out output", outputs["state_out"], "float", state, "state_size")
    _check_tensor(name, "command output", outputs["command"], "float", [1, 4], "4 commands")
    if "dt" in inputs:
        _check_tensor(name, "dt input", inputs["dt"], "float", [1, 1], "one dt")


def _check_tensor(name: str, what: str, arg, dtype: str, shape: list, source: str) -> None:
    if arg.type != f"tensor({dtype})" or list(arg.shape) != shape:
        raise EdgeLiquidError(
            f"{name}: {what} is {arg.type} {arg.shape}, metadata says {dtype} {shape} ({source})"
        )


class StepPolicy(Protocol):
    """A policy flown one frame at a time: `reset()` per episode, then `step()` per frame."""

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of the frames it takes."""
        ...

    def reset(self) -> None:
        """Fresh start: zero recurrent state."""
        ...

    def step(self, frame_rgb: np.ndarray, dt: float | None = None) -> np.ndarray:
        """One control step on a uint8 HxWx3 RGB frame `dt` s after the last: float32[4]."""
        ...


class OnnxPolicy:
    """An exported step graph plus its recurrent state: `reset()`, then `step()` per frame."""

    def __init__(
        self, path: str | Path, provider: str = "cpu", trt_cache: Path = DEFAULT_TRT_CACHE
    ) -> None:
        self.path = Path(path)
        data = _read_verified(self.path)
        self.metadata = verified_metadata(data, self.path.name)  # before ORT sees the bytes
        self.session = _open_session(data, self.path, provider_chain(provider, trt_cache))
        _check_signature(self.session, self.metadata, self.path.name)
        self.provider = self.session.get_providers()[0]
        if self.provider != PROVIDERS[provider]:
            log.warning("running %s on %s (asked for %s)", self.path.name, self.provider, provider)
        self.limits = np.asarray(self.metadata.command_limits, np.float32)
        self._dt = np.full((1, 1), self.metadata.nominal_dt, np.float32)
        self._state = np.zeros((1, self.metadata.state_size), np.float32)
        self._feed: dict[str, np.ndarray] = {}  # the session's inputs, refilled every step
        if self.metadata.dt_mode == "input":
            self._feed["dt"] = self._dt

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) the graph takes."""
        return self.metadata.input_height, self.metadata.input_width

    @property
    def state(self) -> np.ndarray:
        """A copy of the recurrent state (float32 [S])."""
        return self._state[0].copy()

    def set_state(self, state: np.ndarray) -> None:
        """Replace the recurrent state (used to replay recorded flights exactly)."""
        self._state = np.asarray(state, np.float32).reshape(1, self.metadata.state_size).copy()

    def reset(self) -> None:
        """Fresh start: zero recurrent state."""
        self._state = np.zeros_like(self._state)

    def prepare(self, frame: np.ndarray) -> np.ndarray:
        """Check a uint8 HxWx3 RGB frame and resize it (INTER_AREA) to the model's input."""
        if not isinstance(frame, np.ndarray):
            raise EdgeLiquidError(f"frame must be a numpy array, got {type(frame).__name__}")
        if frame.dtype != np.uint8:
            raise EdgeLiquidError(f"frame dtype must be uint8, got {frame.dtype}")
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise EdgeLiquidError(f"frame must be HxWx3 RGB, got shape {frame.shape}")
        if frame.shape[0] == 0 or frame.shape[1] == 0:
            raise EdgeLiquidError(f"frame is empty: shape {frame.shape}")
        height, width = self.input_size
        if frame.shape[:2] != (height, width):
            frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(frame)

    def step(self, frame_rgb: np.ndarray, dt: float | None = None) -> np.ndarray:
        """One control step on an RGB frame `dt` seconds after the last: float32[4] command."""
        feed = self._feed
        feed["image"] = self.prepare(frame_rgb)[None]
        feed["state"] = self._state
        if "dt" in feed:
            self._dt[0, 0] = self.metadata.nominal_dt if dt is None else dt
        # float32 [1, S] and [1, 4], checked at load; ORT returns new arrays every run
        command, self._state = self.session.run(_OUTPUTS, feed)
        return command.reshape(4)
