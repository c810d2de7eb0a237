"""One trial of `edgeliquid tune`: for each training seed, train → export → fly; then time it.

`run_trial(space, params, data, trial_dir)` runs in the trial's own process (a Ray worker, or
any Python process) with the product's own pieces: `training.train` on the space's short
budget, `export.run_export` (verified against torch on simulator steps), closed-loop
`evaluate` of the exported file on the space's fixed eval seed and shifts, and the exported
step timed as `edgeliquid bench` times it (ONNX Runtime, one thread, bare `session.run` with
the state fed back). TRIAL_DIR gets:

    config.json     the point of the space and each seed's TrainConfig
    seed-S/         each seed's run folder (best.pt, metrics.json, curves.png) and model.onnx
    trial.log       every line the trainer and the exporter printed
    metrics.json    the result, written last (status ok or failed): what the study counts

The objectives are the mean success over seeds and shifts (maximise) and the p50 step
latency (minimise); the worst seed's success, parameters and file size are reported with them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from edgeliquid.episodes import atomic_write
from edgeliquid.tune.space import LatencyPlan, SearchSpace

VERIFY_STEPS = 100  # torch vs ONNX Runtime on this many simulator steps before a seed flies
LATENCY_FRAMES = 64  # simulator frames the timed steps cycle through
REPORTED = ("success", "success_worst_seed", "latency_us", "params", "size_bytes")


def write_json(path: Path, value: Any) -> None:
    atomic_write(path, (json.dumps(value, indent=2) + "\n").encode())


def step_latency_us(onnx_path: Path, plan: LatencyPlan) -> float:
    """p50 µs of one exported step: `edgeliquid bench`'s onnx_step row, here in this process."""
    import onnxruntime as ort

    from edgeliquid.bench.rows import onnx_stepper, replay_frames, time_steps
    from edgeliquid.runtime.engine import OnnxPolicy, session_options

    meta = OnnxPolicy(onnx_path).metadata  # checked as `run` checks it
    frames, dts, _ = replay_frames(meta.input_height, meta.input_width, LATENCY_FRAMES)
    session = ort.InferenceSession(
        str(onnx_path), session_options(), providers=["CPUExecutionProvider"]
    )
    step, _ = onnx_stepper(session, frames, dts)
    return float(np.median(time_steps(step, plan.warmup, plan.steps)))


def _one_seed(
    space: SearchSpace,
    params: dict[str, Any],
    data: Sequence[Path],
    seed_dir: Path,
    seed: int,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Train one seed, export its best checkpoint, fly the exported file."""
    from edgeliquid.evaluate import evaluate
    from edgeliquid.export import run_export
    from edgeliquid.export.graph import ExportOptions
    from edgeliquid.training.trainer import train

    config = space.train_config(params, seed)
    trained = train(list(data), seed_dir, config, log=log)
    onnx_path = seed_dir / "model.onnx"
    exported = run_export(trained.best_path, onnx_path, ExportOptions(), log, VERIFY_STEPS)
    plan = space.eval
    report = evaluate(str(onnx_path), episodes=plan.episodes, seed=plan.seed, shifts=plan.shifts)
    per_shift = {row["shift"]: row["success_rate"] for row in report["results"]}
    log(f"seed {seed}: success {per_shift}")
    return {
        "seed": seed,
        "success": float(np.mean(list(per_shift.values()))),
        "per_shift": per_shift,
        "best_val_loss": trained.metrics["best_val_loss"],
        "params": trained.metrics["param_count"],
        "flops_per_step": trained.metrics["flops_per_step"],
        "size_bytes": exported.size,
        "model": str(onnx_path.relative_to(seed_dir.parent)),
    }


def _summary(seeds: list[dict[str, Any]], latency_us: float) -> dict[str, Any]:
    best = max(seeds, key=lambda s: s["success"])
    shifts = list(seeds[0]["per_shift"])
    return {
        "success": float(np.mean([s["success"] for s in seeds])),
        "success_worst_seed": min(s["success"] for s in seeds),
        "success_per_shift": {
            k: float(np.mean([s["per_shift"][k] for s in seeds])) for k in shifts
        },
        "latency_us": latency_us,
        "params": best["params"],
        "flops_per_step": best["flops_per_step"],
        "size_bytes": best["size_bytes"],
        "model": best["model"],  # the best seed's file: what `best.onnx` becomes
        "seeds": seeds,
    }


def run_trial(
    space: SearchSpace, params: dict[str, Any], data: Sequence[Path], trial_dir: Path
) -> dict[str, Any]:
    """Every seed of one point of the space; metrics.json last (also when it fails)."""
    trial_dir.mkdir(parents=True, exist_ok=True)
    configs = {str(seed): asdict(space.train_config(params, seed)) for seed in space.train.seeds}
    write_json(trial_dir / "config.json", {"point": params, "train_configs": configs})
    start = time.monotonic()
    with open(trial_dir / "trial.log", "a", encoding="utf-8") as log_file:

        def log(line: str) -> None:
            log_file.write(line + "\n")
            log_file.flush()

        try:
            seeds = [
                _one_seed(space, params, data, trial_dir / f"seed-{seed}", seed, log)
                for seed in space.train.seeds
            ]
            best_model = trial_dir / max(seeds, key=lambda s: s["success"])["model"]
            metrics = _summary(seeds, step_latency_us(best_model, space.latency))
        except Exception as e:  # recorded as a failed trial, then re-raised for the engine
            log(f"failed: {type(e).__name__}: {e}")
            failed = {"status": "failed", "error": f"{type(e).__name__}: {e}", "point": params}
            write_json(trial_dir / "metrics.json", failed | {"seconds": time.monotonic() - start})
            raise
    from edgeliquid.host import cpu_name

    metrics = {"status": "ok", "point": params, **metrics}
    metrics |= {
        "seconds": time.monotonic() - start,
        "host": f"{cpu_name()}, {os.cpu_count()} cores",
    }
    write_json(trial_dir / "metrics.json", metrics)
    return metrics
