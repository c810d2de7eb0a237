"""A fixed grid of training runs on Ray Tune: the engine under `scripts/compare_archs.py`.

`run_grid(jobs, out)` runs every `GridJob` (train one `TrainConfig` on the data, then fly its
best checkpoint closed loop, keeping each episode's outcome) as one trial of a Ray Tune grid
search, on a local Ray or on the cluster at `address` (the same `connected` as `edgeliquid
tune`: with a cluster, the closed-loop flights run there too). A job's folder gets train.log,
best.pt, metrics.json and, when it flies, eval.json; a job whose metrics.json is there is not
trained again, so the caller resumes a killed grid by sending only what is missing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ray import tune

from edgeliquid.episodes import atomic_write
from edgeliquid.errors import EdgeLiquidError
from edgeliquid.pool import Stopped
from edgeliquid.training.config import TrainConfig
from edgeliquid.tune.engine import connected, sigterm_as_sigint, trial_folder

Echo = Callable[[str], None]


@dataclass(frozen=True)
class FlightPlan:
    """The closed-loop evaluation every job of a grid flies: the same scenes for all."""

    episodes: int
    seed: int
    shifts: tuple[str, ...]
    tasks: tuple[str, ...] = ("reach",)
    workers: int = 1


@dataclass(frozen=True)
class GridJob:
    """One training run of a grid, and the flights of its best checkpoint (None: none)."""

    name: str
    run_dir: Path
    data: tuple[Path, ...]
    config: TrainConfig
    flights: FlightPlan | None = None


def run_job(job: GridJob) -> dict[str, Any]:
    """Train (unless the folder holds metrics.json), then fly; what the trial reports."""
    from edgeliquid.evaluate import evaluate
    from edgeliquid.training.trainer import train

    started = time.monotonic()
    done = job.run_dir / "metrics.json"
    if not done.is_file():
        job.run_dir.mkdir(parents=True, exist_ok=True)
        with open(job.run_dir / "train.log", "w", encoding="utf-8") as log:
            try:
                train(list(job.data), job.run_dir, job.config, lambda s: print(s, file=log))
            except Exception as e:  # the log says why; the engine names the log
                print(f"failed: {type(e).__name__}: {e}", file=log)
                raise
    metrics = json.loads(done.read_text())
    result: dict[str, Any] = {"best_val_loss": float(metrics["best_val_loss"])}
    plan = job.flights
    if plan is not None:
        report = evaluate(
            str(job.run_dir / "best.pt"),
            episodes=plan.episodes,
            seed=plan.seed,
            shifts=plan.shifts,
            tasks=plan.tasks,
            workers=plan.workers,
            keep_episodes=True,
        )
        atomic_write(job.run_dir / "eval.json", (json.dumps(report) + "\n").encode())
        rates = [row["success_rate"] for row in report["results"]]
        result["success"] = sum(rates) / len(rates)
    return {**result, "seconds": time.monotonic() - started}


def _trainable(config: dict[str, Any], jobs: dict[str, GridJob]) -> None:
    tune.report(run_job(jobs[config["job"]]))


class _Progress(tune.Callback):
    """A line per finished job, as `edgeliquid tune` prints one per trial."""

    def __init__(self, echo: Echo, total: int) -> None:
        self.echo, self.total, self.done = echo, total, 0

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **_: Any):
        self.done += 1
        flown = f", mean success {result['success']:.2f}" if "success" in result else ""
        self.echo(
            f"[{self.done}/{self.total}] {trial.config['job']}: best val "
            f"{result['best_val_loss']:.4f}{flown} ({result['seconds'] / 60:.1f} min)"
        )


def _check_fits(cpus_per_job: float, gpus_per_job: float) -> None:
    """A run the local Ray cannot place would wait forever: say so instead."""
    import ray

    have = ray.cluster_resources()
    if cpus_per_job > have.get("CPU", 0) or gpus_per_job > have.get("GPU", 0):
        raise EdgeLiquidError(
            f"a run needs {cpus_per_job:g} CPUs and {gpus_per_job:g} GPUs, the local Ray has "
            f"{have.get('CPU', 0):g} and {have.get('GPU', 0):g}: lower --workers/--threads, "
            "or run on a cluster with --address"
        )


def _absolute(job: GridJob) -> GridJob:
    """The job with its paths resolved here: a Ray worker runs in its own trial folder."""
    data = tuple(d.resolve() for d in job.data)
    return replace(job, run_dir=job.run_dir.resolve(), data=data)


def run_grid(
    jobs: list[GridJob],
    out: Path,
    *,
    cpus_per_job: float = 1,
    gpus_per_job: float = 0,
    address: str | None = None,
    cpus: int | None = None,
    echo: Echo = print,
) -> None:
    """Every job once, as many at a time as the Ray's CPUs (and GPUs) allow. Raises
    EdgeLiquidError naming the jobs that failed, Stopped if a signal ended the grid early."""
    if not jobs:
        return
    by_name = {job.name: _absolute(job) for job in jobs}
    bound = tune.with_parameters(_trainable, jobs=by_name)
    trainable = tune.with_resources(bound, {"cpu": cpus_per_job, "gpu": gpus_per_job})
    with connected(address, cpus), sigterm_as_sigint():
        if address is None:
            _check_fits(cpus_per_job, gpus_per_job)
        tuner = tune.Tuner(
            trainable,
            param_space={"job": tune.grid_search(list(by_name))},
            tune_config=tune.TuneConfig(trial_dirname_creator=trial_folder),
            run_config=tune.RunConfig(
                name=time.strftime("grid-%Y%m%d-%H%M%S"),
                storage_path=str(out.resolve() / "ray"),
                failure_config=tune.FailureConfig(max_failures=0),
                callbacks=[_Progress(echo, len(jobs))],
                verbose=0,
            ),
        )
        grid = tuner.fit()
        results = [grid[i] for i in range(len(grid))]
    failed = [(r.config or {}).get("job", "?") for r in results if r.error is not None]
    if failed:
        logs = ", ".join(
            str(by_name[name].run_dir / "train.log") if name in by_name else name for name in failed
        )
        raise EdgeLiquidError(f"{len(failed)} of {len(jobs)} runs failed: {logs}")
    finished = sum("best_val_loss" in (r.metrics or {}) for r in results)
    if finished < len(jobs):
        raise Stopped(
            f"stopped: {finished} of {len(jobs)} runs finished; rerun the same command to go on"
        )
