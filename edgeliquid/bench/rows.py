"""Benchmark rows: their inputs (made once by the parent) and their measurement (one process each).

The parent (`edgeliquid.bench`) exports the graphs and records replay frames here, then runs
each row with `run_in_child`: a fresh `python -m edgeliquid.bench.rows SPEC OUT`, so the peak
RSS is that row's alone and no row warms another's caches or allocator. SPEC is a JSON file
naming the row and its inputs; OUT receives `{"samples_us": [...], "peak_rss_kib": n,
"extra": {...}}`, one sample per control step after warm-up. The child's environment sets
OPENBLAS/OMP/MKL_NUM_THREADS=1, so numpy's BLAS is single-threaded from its first import.

Rows: torch / ncps / LTC eager `step` (torch.set_num_threads(1), no_grad); ONNX Runtime
`session.run` on a step or unrolled graph with the state fed back; the engine's
`OnnxPolicy.step`; the daemon loop on a replay source (UDP loopback sink, virtual clock); and
the sgemm throughput that sets the compute floor. Module level imports nothing heavier than numpy.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgeliquid.errors import EdgeLiquidError

Step = Callable[[int], object]
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def time_steps(step: Step, warmup: int, iterations: int) -> list[float]:
    """Call `step(i)` warmup + iterations times; the timed calls' wall times in µs."""
    for i in range(warmup):
        step(i)
    samples = []
    clock = time.perf_counter_ns
    for i in range(warmup, warmup + iterations):
        start = clock()
        step(i)
        samples.append((clock() - start) / 1e3)
    return samples


def load_replay(spec: dict) -> tuple[np.ndarray, np.ndarray]:
    """Simulator frames [N,H,W,3] uint8 and their dt [N] seconds, written by the parent."""
    data = np.load(spec["frames"])
    return data["frames"], data["dts"].astype(np.float32)


# -- inputs, made once in the parent process ---------------------------------------------------

Graphs = dict[str, tuple[Path | None, str]]  # row → (file it runs on, or None and why not)


def replay_frames(height: int, width: int, count: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Frames and dts of the expert flying the simulator, or noise where it is not installed."""
    try:
        from edgeliquid.sim.env import NavEnv, NavEnvConfig
        from edgeliquid.sim.expert import ExpertPolicy
        from edgeliquid.sim.rollout import flown_frames
    except ImportError as e:
        rng = np.random.default_rng(0)
        noise = rng.integers(0, 256, (count, height, width, 3), np.uint8)
        return noise, np.full(count, 0.1, np.float32), f"random frames (no simulator: {e})"
    env, expert = NavEnv(NavEnvConfig(height=height, width=width)), ExpertPolicy()
    flown = list(flown_frames(env, expert, count))
    frames, dts = np.stack([f.obs for f in flown]), [f.info["dt"] for f in flown]
    return frames, np.array(dts, np.float32), "simulator frames, expert flying"


def export_graphs(checkpoint: Path, workdir: Path, unrolled: int, calibration: int, echo):
    """Model facts and the four graphs of a checkpoint: fp32 dt-input / dt-fixed, unrolled, int8."""
    from edgeliquid.export.graph import ExportOptions, export_checkpoint, save
    from edgeliquid.model import count_parameters, estimate_flops, load_checkpoint

    policy, ckpt = load_checkpoint(checkpoint)
    cfg = policy.config
    info = dict(arch=cfg.arch, parameters=count_parameters(policy), state_size=policy.state_size)
    info |= dict(input=[cfg.input_height, cfg.input_width], flops_per_step=estimate_flops(policy))
    variants = {
        "onnx_step": ExportOptions(),
        "onnx_fixed": ExportOptions(dt_mode="fixed"),
        "onnx_unrolled": ExportOptions(graph="unrolled", steps=unrolled),
    }
    graphs: Graphs = {}
    for key, options in variants.items():
        echo(f"bench: exporting {key} ({options.graph} graph, dt {options.dt_mode})")
        path = workdir / f"{key}.onnx"
        save(export_checkpoint(policy, ckpt, options)[0], path)
        graphs[key] = (path, "")
    echo(f"bench: quantizing int8 ({calibration} calibration frames)")
    graphs["onnx_int8"] = _quantize(policy, workdir / "onnx_step.onnx", workdir, calibration)
    return info, graphs


def _quantize(policy, fp32: Path, workdir: Path, calibration: int) -> tuple[Path | None, str]:
    from edgeliquid.export.graph import ExportOptions
    from edgeliquid.export.quantize import quantize_int8

    root, level = logging.getLogger(), logging.getLogger().level
    root.setLevel(logging.ERROR)  # ORT's "consider pre-processing" advice on every call
    try:
        out = workdir / "onnx_int8.onnx"
        quantize_int8(fp32, out, policy, ExportOptions(), calibration)
        return out, ""
    except Exception as e:  # ORT's quantizer raises many types; the other rows still run
        return None, f"int8 quantization failed: {type(e).__name__}: {e}"
    finally:
        root.setLevel(level)


def onnx_facts(path: Path) -> dict:
    """Model facts from an exported file's metadata (no FLOPs: those need the checkpoint).

    The file is opened as `run` opens it (`OnnxPolicy`: hash, metadata and graph checked), so
    a foreign or damaged ONNX file is one clear error, not a traceback.
    """
    from edgeliquid.runtime.engine import OnnxPolicy

    meta = OnnxPolicy(path).metadata
    info = dict(arch=meta.arch, parameters=meta.param_count)
    info |= dict(input=[meta.input_height, meta.input_width], state_size=meta.state_size)
    return info | dict(flops_per_step=None)


# -- torch rows ---------------------------------------------------------------------------------


def ncps_policy(policy):
    """`policy` with its core swapped for ncps's own WiredCfCCell, loaded with the same weights."""
    from ncps.torch import WiredCfCCell

    from edgeliquid.model.policy import build_wiring

    config = policy.config
    cell = WiredCfCCell(config.feature_size, build_wiring(config), mode=config.cfc_mode)
    cell.load_state_dict(policy.cfc.state_dict(), strict=True)
    policy.cfc = cell
    return policy.eval()


def ltc_policy(policy):
    """`policy` with an ncps LTCCell (same wiring, 6 ODE unfolds, random weights) as its core."""
    import torch
    from ncps.torch import LTCCell

    from edgeliquid.model.policy import build_wiring

    torch.manual_seed(0)
    policy.cfc = LTCCell(build_wiring(policy.config), policy.config.feature_size, ode_unfolds=6)
    return policy.eval()


def torch_row(spec: dict) -> tuple[list[float], dict]:
    """`NavPolicy.step` (or its ncps / LTC twin) in eager mode, one thread, state fed back."""
    import torch

    from edgeliquid.model.checkpoint import load_checkpoint

    torch.set_num_threads(1)
    policy = load_checkpoint(spec["checkpoint"])[0]
    if spec["row"] == "ncps_eager":
        policy = ncps_policy(policy)
    elif spec["row"] == "ltc_eager":
        policy = ltc_policy(policy)
    frames, dts = load_replay(spec)
    images = [torch.from_numpy(frame)[None] for frame in frames]
    steps = [float(dt) for dt in dts]
    state = [policy.initial_state(1)]

    def step(i: int) -> None:
        _, state[0] = policy.step(images[i % len(images)], state[0], steps[i % len(steps)])

    with torch.no_grad():
        samples = time_steps(step, spec["warmup"], spec["iterations"])
    return samples, {"torch_threads": torch.get_num_threads()}


# -- ONNX Runtime rows --------------------------------------------------------------------------


def onnx_stepper(session, frames: np.ndarray, dts: np.ndarray) -> tuple[Step, int]:
    """(`step(i)`, steps per call): bare `session.run` with the state fed back, no checks."""
    names = {i.name: i for i in session.get_inputs()}
    chunk = int(names["images"].shape[0]) if "images" in names else 1
    image_key = "images" if "images" in names else "image"
    state = np.zeros(names["state"].shape, np.float32)
    feeds = []
    for start in range(0, len(frames) - chunk + 1, chunk):
        feed = {image_key: frames[start : start + chunk]}
        if "dt" in names:
            feed["dt"] = dts[start : start + chunk].reshape(chunk, 1)
        feeds.append(feed)

    def step(i: int) -> None:
        feed = feeds[i % len(feeds)]
        feed["state"] = state
        state[...] = session.run(None, feed)[1]

    return step, chunk


def onnx_row(spec: dict) -> tuple[list[float], dict]:
    """Bare `session.run` on a step graph, or an unrolled one (per step = call time / T)."""
    import onnxruntime as ort

    from edgeliquid.runtime.engine import session_options

    session = ort.InferenceSession(
        spec["onnx"], session_options(), providers=["CPUExecutionProvider"]
    )
    step, chunk = onnx_stepper(session, *load_replay(spec))
    calls = max(spec["iterations"] // chunk, 20)
    samples = time_steps(step, max(spec["warmup"] // chunk, 5), calls)
    return [s / chunk for s in samples], {"steps_per_call": chunk, "calls": calls}


def engine_row(spec: dict) -> tuple[list[float], dict]:
    """The runtime engine's `OnnxPolicy.step(frame, dt)`: checks, state copy, session.run."""
    from edgeliquid.runtime.engine import OnnxPolicy

    policy = OnnxPolicy(spec["onnx"])
    frames, dts = load_replay(spec)

    def step(i: int) -> None:
        policy.step(frames[i % len(frames)], float(dts[i % len(dts)]))

    return time_steps(step, spec["warmup"], spec["iterations"]), {}


def daemon_row(spec: dict) -> tuple[list[float], dict]:
    """Whole daemon ticks on a virtual clock, one sample per message (send to send), measured
    in bursts that alternate with bursts of bare `session.run` on the same session.

    A tick: stop checks, the newest replay frame (already rendered: no simulator time),
    checks and dt, the policy step (engine + session.run), judge and clamp, the message,
    stats, and pacing (no real wait). Row `daemon` hands the message to a null sink (the
    daemon's own cost, the row issue 15's target is set on); row `daemon_udp` also writes it
    as JSON and sends it as a UDP datagram to a loopback socket (what flying over UDP costs).
    The interleaved bare steps (`extra["paired_bare_p50_us"]`) see the same machine at the
    same moments, so their ratio is free of the drift between rows run one after another.
    """
    from edgeliquid.runtime.engine import OnnxPolicy

    frames, dts = load_replay(spec)
    policy = OnnxPolicy(spec["onnx"])
    bare, _ = onnx_stepper(policy.session, frames, dts)
    rounds = max(1, min(ROUNDS, spec["iterations"] // 20))
    per_round = max(spec["iterations"] // rounds, 1)
    ticks: list[float] = []
    steps: list[float] = []
    counts = {"ticks": 0, "policy_steps": 0, "holds": 0, "sink_errors": 0}
    udp = spec["row"] == "daemon_udp"
    _daemon_burst(policy, frames, spec["warmup"], counts, udp)  # warm-up, not counted below
    counts = dict.fromkeys(counts, 0)
    time_steps(bare, spec["warmup"], 1)
    for _ in range(rounds):
        ticks += _daemon_burst(policy, frames, per_round, counts, udp)
        steps += time_steps(bare, BURST_WARMUP, per_round)
    bare_p50 = float(np.median(steps))
    extra = counts | {"rounds": rounds, "paired_bare_p50_us": bare_p50}
    extra["paired_ratio"] = float(np.median(ticks)) / bare_p50
    return ticks, extra


ROUNDS = 10  # daemon / bare bursts per row
BURST_WARMUP = 3  # ticks (or steps) at the start of each burst, not timed


def _daemon_burst(policy, frames: np.ndarray, count: int, counts: dict, udp: bool) -> list[float]:
    """One daemon run of BURST_WARMUP + `count` timed ticks (to a null sink, or to a UDP
    loopback socket); adds its counts to `counts`."""
    from edgeliquid.runtime.daemon import Daemon, DaemonConfig
    from edgeliquid.runtime.sinks import NullSink, UdpSink
    from edgeliquid.runtime.sources import FastClock, FrameSource

    class ReplaySource(FrameSource):
        """The recorded frames in a loop; the next one appears once a command has been sent."""

        name = "replay"

        def __init__(self, frames: np.ndarray, clock: FastClock) -> None:
            super().__init__(clock)
            self.frames, self.due = frames, True

        def command(self, command: np.ndarray) -> None:
            self.due = True

        def latest(self):
            if self.due:
                self.due = False
                self._publish(self.frames[self._count % len(self.frames)])
            return super().latest()

    stamps: list[int] = []

    class StampUdp(UdpSink):
        def send(self, message) -> None:
            stamps.append(time.perf_counter_ns())
            super().send(message)

    class StampNull(NullSink):
        def send(self, message) -> None:
            stamps.append(time.perf_counter_ns())
            super().send(message)

    clock = FastClock()
    ticks = BURST_WARMUP + count + 1
    with contextlib.ExitStack() as stack:
        if udp:
            peer = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            peer.bind(("127.0.0.1", 0))  # bound, never read
            sink: NullSink | UdpSink = StampUdp("127.0.0.1", peer.getsockname()[1])
        else:
            sink = StampNull()
        with sink, ReplaySource(frames, clock) as source:
            daemon = Daemon(policy, source, sink, DaemonConfig(max_steps=ticks), clock=clock)
            stats = daemon.run()
    samples = np.asarray(stamps[:ticks], np.float64)  # not the final shutdown hold
    counts["ticks"] += stats.ticks - 1  # ticks and holds without the final shutdown hold
    counts["policy_steps"] += stats.steps
    counts["holds"] += stats.holds - 1
    counts["sink_errors"] += stats.sink_errors
    return (np.diff(samples)[BURST_WARMUP:] / 1e3).tolist()


# -- the compute floor --------------------------------------------------------------------------


def sgemm_row(spec: dict) -> tuple[list[float], dict]:
    """Single-thread float32 matmul: one sample per n×n×n product; extra has the GFLOP/s."""
    n = int(spec.get("sgemm_n", 512))
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
    out = np.empty((n, n), np.float32)
    samples = time_steps(lambda _: np.matmul(a, b, out=out), 3, int(spec.get("sgemm_reps", 30)))
    best = min(samples)
    return samples, {"n": n, "gflops": 2 * n**3 / (best * 1e3), "best_us": best}


ROWS: dict[str, Callable[[dict], tuple[list[float], dict]]] = {
    "torch_eager": torch_row,
    "ncps_eager": torch_row,
    "ltc_eager": torch_row,
    "onnx_step": onnx_row,
    "onnx_fixed": onnx_row,
    "onnx_int8": onnx_row,
    "onnx_unrolled": onnx_row,
    "engine": engine_row,
    "daemon": daemon_row,
    "daemon_udp": daemon_row,
    "sgemm": sgemm_row,
}


def run_in_child(spec: dict, workdir: Path, timeout_s: float = 900.0) -> dict:
    """Run one row in a fresh interpreter; its JSON result, or EdgeLiquidError with its stderr."""
    spec_path, out_path = workdir / f"{spec['row']}.spec.json", workdir / f"{spec['row']}.json"
    spec_path.write_text(json.dumps(spec))
    root = str(Path(__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, **ONE_THREAD, "PYTHONPATH": path}
    command = [sys.executable, "-m", "edgeliquid.bench.rows", str(spec_path), str(out_path)]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise EdgeLiquidError(f"row {spec['row']} failed (exit {proc.returncode}): {tail}")
    return json.loads(out_path.read_text())


def peak_rss_kib() -> int:
    """This process's peak RSS: VmHWM on Linux (ru_maxrss there keeps the peak of the parent
    that forked us, across exec: a torch-sized parent would show in every row), else ru_maxrss."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS


def main(argv: list[str]) -> int:
    """Measure the row SPEC names and write its samples and peak RSS to OUT."""
    spec_path, out_path = (Path(arg) for arg in argv)
    spec = json.loads(spec_path.read_text())
    samples, extra = ROWS[spec["row"]](spec)
    result = {"samples_us": samples, "peak_rss_kib": peak_rss_kib(), "extra": extra}
    out_path.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
