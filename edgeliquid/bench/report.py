"""`edgeliquid bench`: where every microsecond of a control step goes, on this machine.

Each row runs in a fresh subprocess on one thread (`edgeliquid.bench.rows`): torch, ncps and
LTC eager steps; ONNX Runtime on the fp32 step graph (dt input, dt fixed), the int8 graph and
the unrolled graph (per step); the engine's `OnnxPolicy.step`; the daemon loop on replayed
simulator frames. The compute floor is the policy's FLOPs per step over single-thread sgemm
throughput measured in the same run. `run_bench` returns one JSON-ready dict, which `targets`
judges against issue 7's goals and `render.markdown` / `render.plot_cdf` draw.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
import platform
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from edgeliquid.bench.render import TABLE_HEAD, markdown, plot_cdf
from edgeliquid.bench.rows import export_graphs, onnx_facts, replay_frames, run_in_child
from edgeliquid.errors import EdgeLiquidError
from edgeliquid.host import cpu_name

Echo = Callable[[str], None]
SCHEMA = "edgeliquid-bench/1"
DEFAULT_MODEL = Path("models/nav_cfc.pt")
ROWS = {  # key → label, in the order rows run and print
    "torch_eager": "torch eager `NavPolicy.step`",
    "ncps_eager": "ncps eager (`WiredCfCCell`)",
    "ltc_eager": "ncps LTC eager (6 ODE unfolds)",
    "onnx_step": "ORT fp32 step, dt input",
    "onnx_fixed": "ORT fp32 step, dt fixed",
    "onnx_int8": "ORT int8 step (QDQ conv head)",
    "onnx_unrolled": "ORT fp32 unrolled, per step",
    "engine": "engine `OnnxPolicy.step`",
    "daemon": "daemon loop (replay, null sink)",
    "daemon_udp": "daemon loop + JSON over UDP loopback",
}
TORCH_ROWS = ("torch_eager", "ncps_eager", "ltc_eager")
GRAPH_OF = {
    "engine": "onnx_step",
    "daemon": "onnx_step",
    "daemon_udp": "onnx_step",
}  # rows that fly another row's file


@dataclass(frozen=True)
class BenchConfig:
    """How long and on what each row runs."""

    iterations: int = 3000  # timed steps per row: ~30 samples above the p99
    warmup: int = 200  # untimed steps first (allocator, caches, ORT's first runs)
    unrolled_steps: int = 16  # T of the unrolled graph
    replay_frames: int = 200  # simulator frames every row cycles through
    calibration_steps: int = 200  # simulator frames for the int8 ranges
    sgemm_n: int = 512  # n of the n×n×n float32 product that measures the floor
    quick: bool = False  # the smoke-test preset (see QUICK)

    def __post_init__(self) -> None:
        lows = {"iterations": 16, "replay_frames": 16, "calibration_steps": 16, "warmup": 0}
        for name, low in lows.items():
            if getattr(self, name) < low:
                raise ValueError(f"{name} must be >= {low}, got {getattr(self, name)}")
        if not 1 <= self.unrolled_steps <= self.replay_frames:
            high = f"replay_frames={self.replay_frames}"
            raise ValueError(f"unrolled_steps must be in [1, {high}], got {self.unrolled_steps}")
        if not 64 <= self.sgemm_n <= 4096:
            raise ValueError(f"sgemm_n must be in [64, 4096], got {self.sgemm_n}")


# The smoke-test preset: well under a minute; its timings are not for reading.
QUICK = BenchConfig(200, 20, unrolled_steps=4, replay_frames=32, calibration_steps=16, quick=True)


def machine_info() -> dict:
    """CPU, cores, OS and the load average now (other work skews every number)."""
    cpu, load = cpu_name(), [round(x, 2) for x in os.getloadavg()]
    return dict(cpu=cpu, cores=os.cpu_count(), platform=platform.platform(), load_avg_start=load)


def versions() -> dict:
    """Package versions from installed metadata (absent where not installed)."""
    out = {"python": platform.python_version()}
    for name in ("edgeliquid", "numpy", "onnxruntime", "onnx", "torch", "ncps"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def _random_checkpoint(workdir: Path) -> Path:
    import torch

    from edgeliquid.model import NavPolicy, save_checkpoint

    torch.manual_seed(0)
    return save_checkpoint(workdir / "random_cfc.pt", NavPolicy().eval())


def resolve_model(model: Path | None, workdir: Path) -> tuple[Path, str]:
    """(checkpoint or .onnx path, how it was chosen): MODEL, else models/nav_cfc.pt, else random."""
    if model is not None:
        if not model.is_file():
            raise EdgeLiquidError(f"model {model} does not exist")
        if model.suffix not in (".pt", ".onnx"):
            raise EdgeLiquidError(f"model {model} must be a checkpoint .pt or an .onnx file")
        return model, f"{model}"
    if DEFAULT_MODEL.is_file():
        return DEFAULT_MODEL, f"{DEFAULT_MODEL} (shipped)"
    return _random_checkpoint(workdir), f"random weights, seed 0 (no {DEFAULT_MODEL})"


def prepare(model: Path, workdir: Path, config: BenchConfig, echo: Echo):
    """(model facts, {row: (file, why not)}, replay frames file, how the frames were made)."""
    if model.suffix == ".onnx":
        info: dict[str, Any] = onnx_facts(model)
        needs = "needs a checkpoint (MODEL is an .onnx file)"
        graphs: dict[str, tuple[Path | None, str]] = {
            key: (None, needs) for key in ROWS if key not in GRAPH_OF
        }
        graphs["onnx_step"] = (model, "")
    else:
        steps = (config.unrolled_steps, config.calibration_steps)
        info, graphs = export_graphs(model, workdir, *steps, echo)
        graphs |= {key: (model, "") for key in TORCH_ROWS}
    graphs |= {key: graphs[source] for key, source in GRAPH_OF.items()}
    height, width = info["input"]
    frames, dts, note = replay_frames(height, width, config.replay_frames)
    np.savez(workdir / "replay.npz", frames=frames, dts=dts)
    return info, graphs, workdir / "replay.npz", note


def summarize(key: str, result: dict, path: Path | None) -> dict:
    """Percentiles, throughput, size and RSS of one measured row (cdf: 101 quantiles, µs)."""
    samples = np.asarray(result["samples_us"], np.float64)
    p50, p90, p99 = (float(x) for x in np.percentile(samples, [50, 90, 99]))
    is_graph = key.startswith("onnx_") and path is not None
    row = not_measured(key, "ok", "") | dict(p50_us=p50, p90_us=p90, p99_us=p99)
    row |= dict(mean_us=float(samples.mean()), steps_per_s=1e6 / float(samples.mean()))
    row |= dict(samples=int(samples.size), peak_rss_mib=result["peak_rss_kib"] / 1024)
    row["file_bytes"] = path.stat().st_size if is_graph and path is not None else None
    row["cdf_us"] = [round(float(x), 2) for x in np.percentile(samples, np.arange(101))]
    return row | {"extra": result["extra"]}


def not_measured(key: str, status: str, reason: str) -> dict:
    """A row that did not run: status skipped (by design) or failed (with the error)."""
    return {"key": key, "name": ROWS[key], "status": status, "reason": reason}


def relate(rows: list[dict], floor_us: float | None) -> None:
    """Add each measured row's speedup vs torch eager (p50) and p50 / compute floor."""
    base = next((r for r in rows if r["key"] == "torch_eager" and r["status"] == "ok"), None)
    for row in rows:
        if row["status"] == "ok":
            row["speedup_vs_torch"] = base["p50_us"] / row["p50_us"] if base else None
            row["floor_ratio"] = row["p50_us"] / floor_us if floor_us else None


def targets(result: dict) -> dict:
    """Issue 7's targets: ONNX step ≥8x torch eager and ≤2x the floor; daemon ≤1.3x bare
    (against the bare steps its own row timed alongside, when it has them)."""
    rows = {r["key"]: r for r in result["rows"] if r["status"] == "ok"}
    step, daemon = rows.get("onnx_step", {}), rows.get("daemon", {})
    between_rows = daemon["p50_us"] / step["p50_us"] if daemon and step else None
    # The check: the daemon row's ticks against bare steps timed in the same process, in
    # alternating bursts, so that the machine's drift between rows cancels (between two rows
    # run one after the other it was larger than the engine's whole overhead).
    paired = daemon.get("extra", {}).get("paired_ratio", between_rows) if daemon else None
    checks = {
        "onnx_step_speedup_vs_torch": (step.get("speedup_vs_torch"), ">= 8", lambda v: v >= 8),
        "onnx_step_vs_floor": (step.get("floor_ratio"), "<= 2", lambda v: v <= 2),
        "daemon_vs_bare_onnx_step": (paired, "<= 1.3", lambda v: v <= 1.3),
    }
    verdicts = {
        name: {"value": value, "target": goal, "met": None if value is None else bool(ok(value))}
        for name, (value, goal, ok) in checks.items()
    }
    verdicts["daemon_vs_bare_onnx_step"]["between_rows"] = between_rows
    return verdicts


def _measure(key: str, graphs: dict, frames: Path, config: BenchConfig, workdir: Path) -> dict:
    path, problem = graphs[key]
    if path is None:
        return not_measured(key, "skipped" if "needs" in problem else "failed", problem)
    spec: dict[str, Any] = dict(row=key, frames=str(frames), checkpoint=str(path), onnx=str(path))
    spec |= dict(warmup=config.warmup, iterations=config.iterations)
    try:
        return summarize(key, run_in_child(spec, workdir), path)
    except EdgeLiquidError as e:
        return not_measured(key, "failed", str(e))


def measure_floor(flops: int | None, config: BenchConfig, workdir: Path) -> dict:
    """Single-thread sgemm GFLOP/s (best of the reps) and the step's FLOPs at that rate."""
    spec = {"row": "sgemm", "sgemm_n": config.sgemm_n, "sgemm_reps": 30}
    gflops = run_in_child(spec, workdir)["extra"]["gflops"]
    floor = flops / (gflops * 1e3) if flops else None  # FLOP / (GFLOP/s) in µs
    return dict(sgemm_n=config.sgemm_n, sgemm_gflops=gflops, flops_per_step=flops, floor_us=floor)


def run_bench(
    model: Path | None = None,
    config: BenchConfig | None = None,
    workdir: Path | None = None,
    echo: Echo = lambda line: print(line, file=sys.stderr),
) -> dict:
    """Measure every row; the JSON-ready result (see the module docstring)."""
    config = config or BenchConfig()
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="elbench-")))
        workdir.mkdir(parents=True, exist_ok=True)
        created = datetime.datetime.now().isoformat(timespec="seconds")
        result: dict[str, Any] = dict(
            schema=SCHEMA, created=created, machine=machine_info(), versions=versions()
        )
        result["settings"] = dataclasses.asdict(config)
        load = result["machine"]["load_avg_start"][0]
        if load >= 0.5:  # a quiet machine sits near 0
            echo(f"bench: warning: load average {load}; other work skews every row")
        path, source = resolve_model(model, workdir)
        echo(f"bench: model {source}")
        info, graphs, frames, note = prepare(path, workdir, config, echo)
        result["model"] = {"source": source, **info}
        result["settings"]["replay"] = note
        result["floor"] = measure_floor(info["flops_per_step"], config, workdir)
        echo(f"bench: sgemm {result['floor']['sgemm_gflops']:.1f} GFLOP/s on one thread")
        rows = []
        for i, key in enumerate(ROWS, 1):
            rows.append(_measure(key, graphs, frames, config, workdir))
            done = rows[-1]
            how = f"p50 {done['p50_us']:.1f} µs" if "p50_us" in done else done["reason"]
            echo(f"bench: [{i}/{len(ROWS)}] {ROWS[key]}: {done['status']}, {how}")
        relate(rows, result["floor"]["floor_us"])
    result["rows"] = rows
    result["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    result["targets"] = targets(result)
    return result


# -- output files ------------------------------------------------------------------------------


def load_result(path: Path) -> dict:
    """A JSON file written by an earlier run (to re-render its table or plot)."""
    try:
        result = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise EdgeLiquidError(f"cannot read benchmark JSON {path}: {e}") from None
    if not isinstance(result, dict) or result.get("schema") != SCHEMA:
        raise EdgeLiquidError(f"{path} is not an {SCHEMA} result")
    try:
        markdown(result)  # reads every field the table and the plot need
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        raise EdgeLiquidError(
            f"{path} is an incomplete {SCHEMA} result ({type(e).__name__}: {e})"
        ) from None
    return result


def _is_table(path: Path) -> bool:
    """An earlier `--markdown` file: its header line, a blank line, then the table head."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return False
    return len(lines) > 2 and lines[2] == TABLE_HEAD.splitlines()[0]


def check_outputs(json_path, plot_path, markdown_path, workdir) -> None:
    """Refuse, before measuring, outputs that cannot be written or would replace a file that
    is not an earlier result of the same kind."""
    from edgeliquid.paths import check_out_dir, check_out_file, is_png, json_with

    wanted = [
        (json_path, "--json", (".json",), json_with(schema=SCHEMA)),
        (plot_path, "--plot", (".png",), is_png),
        (markdown_path, "--markdown", (".md",), _is_table),
    ]
    for path, what, suffixes, replaces in wanted:
        if path is not None:
            check_out_file(path, what, suffixes, replaces)
    named = [Path(p).resolve() for p, *_ in wanted if p is not None]
    if len(set(named)) < len(named):
        raise EdgeLiquidError("--json, --plot and --markdown must be different files")
    if workdir is not None:
        check_out_dir(workdir, "--workdir")


def write_outputs(result, table, json_path, plot_path, markdown_path, echo: Echo = print) -> None:
    """Write whichever of the JSON, the CDF plot and the markdown table were asked for
    (each atomically: an interrupted write leaves the earlier file)."""
    from edgeliquid.episodes import atomic_write

    if json_path is not None:
        text = json.dumps(result, indent=1, ensure_ascii=False) + "\n"
        atomic_write(json_path, text.encode())
        echo(f"wrote {json_path}")
    if plot_path is not None:
        done = plot_cdf(result, Path(plot_path))
        echo(f"wrote {plot_path}" if done else "no plot: matplotlib is not installed")
    if markdown_path is not None:
        atomic_write(markdown_path, (table + "\n").encode())
        echo(f"wrote {markdown_path}")
