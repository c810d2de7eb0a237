"""Train every policy arch on the same data and recipe, fly each closed loop, compare them.

The settled comparison (issue 12): the wired CfC against a dense CfC, LSTM, LSTM + dt, GRU and
CNN at the same parameter budget, 5 training seeds each, 100 episodes per shift. Regenerate
docs/results.md (its marked block), docs/results.json and the README's marked Results block:

    .venv/bin/python scripts/compare_archs.py --data data/shipped --out runs/compare \
        --lr-grid 1e-3,2e-3,4e-3 --jobs 6 --workers 16 --device cuda

1. `--lr-grid`: per arch, one run per learning rate (training seed `--lr-seed`, apart from the
   seeds compared) and the lr with the lowest best validation loss; the test shifts never
   choose. Without it every arch trains at `--lr`.
2. `--seeds` training runs per arch at its lr, same data, same TrainConfig otherwise.
3. Each best.pt flies `--episodes` episodes per shift (`evaluate`, eval seed `--eval-seed`)
   on every task of `--tasks` (default reach; e.g. `--tasks reach,follow,chain` or `all`):
   episode i is the same scene for every shift and every run, so archs pair up scene by scene.
4. Statistics: `compare_report.py` (Wilson per cell, paired bootstrap differences); pages:
   `compare_pages.py` (only the marked blocks of docs/results.md and the README).

Resumable: a run folder with metrics.json (trained) or eval.json (evaluated, same episodes,
seed and shifts) is reused, so a killed sweep continues where it stopped; a folder trained
with another recipe is refused, never mixed in.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the two modules beside this file

import compare_pages
import compare_report

from edgeliquid.model.policy import ARCHS
from edgeliquid.training.config import TrainConfig

DEFAULT_LR = TrainConfig().lr


@dataclass(frozen=True)
class Sweep:
    """What to compare and how hard; see `--help`."""

    data: Path
    out: Path
    archs: tuple[str, ...] = ARCHS
    seeds: int = 5  # training seeds per arch: 0..seeds-1
    epochs: int = 14  # the shipped recipe's budget, the same for every arch
    episodes: int = 100  # per shift: a Wilson interval of about +-0.05 near 0.8 per run
    eval_seed: int = 12345  # disjoint from the data's collect seeds
    shifts: tuple[str, ...] = ()  # () = every single shift
    tasks: tuple[str, ...] = ("reach",)  # sim.tasks flown by every run, each under every shift
    lr: float = DEFAULT_LR  # every arch's lr when there is no grid
    lr_grid: tuple[float, ...] = ()  # per-arch lr candidates, chosen on validation loss
    lr_seed: int = 100  # the grid's training seed: not one of the compared seeds
    jobs: int = 1
    workers: int = 2
    threads: int = 1
    device: str = "cpu"
    max_minutes: float | None = None
    docs: Path = Path("docs")
    readme: Path = Path("README.md")

    def __post_init__(self) -> None:
        unknown = sorted(set(self.archs) - set(ARCHS))
        if unknown or not self.archs:
            raise ValueError(f"unknown archs {unknown}; choose from {', '.join(ARCHS)}")
        for name in ("seeds", "epochs", "episodes", "jobs", "workers", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if not all(lr > 0 for lr in (self.lr, *self.lr_grid)):
            raise ValueError(f"learning rates must be > 0, got {self.lr} / {self.lr_grid}")
        if self.lr_grid and self.lr_seed < self.seeds:
            raise ValueError(
                f"--lr-seed {self.lr_seed} is one of the compared seeds 0..{self.seeds - 1}: "
                "the lr would be chosen on a run that is then compared"
            )

    def shift_list(self) -> list[str]:
        from edgeliquid.sim.shifts import parse_shift, shift_names
        from edgeliquid.sim.tasks import check_task

        for shift in self.shifts:
            parse_shift(shift)  # ValueError naming the valid shifts
        for task in self.tasks:
            check_task(task)  # ValueError naming the valid tasks
        return list(self.shifts) or shift_names()

    def run_dir(self, arch: str, seed: int, lr: float) -> Path:
        return self.out / f"{arch}_lr{lr:g}_seed{seed}"

    def grid_dir(self, arch: str, lr: float) -> Path:
        return self.out / "lr_grid" / f"{arch}_lr{lr:g}_seed{self.lr_seed}"


@dataclass(frozen=True)
class Job:
    """One training run of the sweep."""

    arch: str
    seed: int
    lr: float
    run_dir: Path


def _train_config(sweep: Sweep, job: Job) -> TrainConfig:
    return TrainConfig(
        arch=job.arch,
        seed=job.seed,
        epochs=sweep.epochs,
        lr=job.lr,
        num_threads=sweep.threads,
        device=sweep.device,
        max_minutes=sweep.max_minutes,
    )


def _check_reused(sweep: Sweep, job: Job, metrics: dict[str, Any]) -> None:
    """A finished run folder is reused only if it was trained as this job asks."""
    want = {"arch": job.arch, "seed": job.seed, "lr": job.lr, "epochs": sweep.epochs}
    got = {k: metrics["train_config"].get(k) for k in want}
    if got != want or metrics["data"]["dir"] != str(sweep.data):
        raise SystemExit(
            f"compare_archs: {job.run_dir} was trained with {got} on {metrics['data']['dir']}, "
            f"this sweep needs {want} on {sweep.data}: use another --out"
        )


def train_one(sweep: Sweep, job: Job) -> dict[str, Any]:
    """Train `job` unless its metrics.json exists; returns the metrics."""
    from edgeliquid.training.trainer import train

    done = job.run_dir / "metrics.json"
    if done.is_file():
        metrics = json.loads(done.read_text())
        _check_reused(sweep, job, metrics)
        return metrics
    job.run_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with open(job.run_dir / "train.log", "w") as log:
        result = train(
            sweep.data,
            job.run_dir,
            _train_config(sweep, job),
            log=lambda s: print(s, file=log, flush=True),
        )
    print(
        f"trained {job.arch} seed {job.seed} lr {job.lr:g}: best val "
        f"{result.metrics['best_val_loss']:.4f} ({time.monotonic() - started:.0f} s)",
        flush=True,
    )
    return result.metrics


def _train_job(args: tuple[Sweep, Job]) -> dict[str, Any]:
    return train_one(*args)


def train_all(sweep: Sweep, jobs: list[Job]) -> list[dict[str, Any]]:
    """Every job's metrics, in order; `sweep.jobs` at a time in spawned processes."""
    if sweep.jobs == 1 or len(jobs) == 1:
        return [train_one(sweep, job) for job in jobs]
    with multiprocessing.get_context("spawn").Pool(min(sweep.jobs, len(jobs))) as pool:
        return pool.map(_train_job, [(sweep, job) for job in jobs], chunksize=1)


def choose_lrs(sweep: Sweep) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Per arch: the lr with the lowest best validation loss on the grid (or `sweep.lr`), and
    every grid run's loss (empty without a grid)."""
    if not sweep.lr_grid:
        return {arch: sweep.lr for arch in sweep.archs}, {}
    jobs = [
        Job(arch, sweep.lr_seed, lr, sweep.grid_dir(arch, lr))
        for arch in sweep.archs
        for lr in sweep.lr_grid
    ]
    losses: dict[str, dict[str, float]] = {arch: {} for arch in sweep.archs}
    for job, metrics in zip(jobs, train_all(sweep, jobs), strict=True):
        losses[job.arch][f"{job.lr:g}"] = float(metrics["best_val_loss"])
    chosen = {arch: float(compare_report.lowest(losses[arch])) for arch in sweep.archs}
    return chosen, losses


def final_jobs(sweep: Sweep, lrs: dict[str, float]) -> list[Job]:
    return [
        Job(arch, seed, lrs[arch], sweep.run_dir(arch, seed, lrs[arch]))
        for seed in range(sweep.seeds)
        for arch in sweep.archs
    ]


def _cached_eval(path: Path, sweep: Sweep, shifts: list[str]) -> dict[str, Any] | None:
    """eval.json if it holds per-episode outcomes of this sweep's episodes, seed, tasks and
    shifts (a report from before tasks flew reach)."""
    if not path.is_file():
        return None
    report = json.loads(path.read_text())
    cells = [(row.get("task", "reach"), row["shift"]) for row in report.get("results", [])]
    same = (
        report.get("episodes") == sweep.episodes
        and report.get("seed") == sweep.eval_seed
        and cells == [(task, shift) for task in sweep.tasks for shift in shifts]
        and "episode_results" in report
    )
    return report if same else None


def evaluate_all(sweep: Sweep, jobs: list[Job]) -> dict[tuple[str, int], dict[str, Any]]:
    """The eval report (with per-episode outcomes) of every run's best.pt, cached in eval.json."""
    from edgeliquid.episodes import atomic_write
    from edgeliquid.evaluate import evaluate

    shifts, reports = sweep.shift_list(), {}
    for job in jobs:
        path = job.run_dir / "eval.json"
        report = _cached_eval(path, sweep, shifts)
        if report is None:
            started = time.monotonic()
            report = evaluate(
                str(job.run_dir / "best.pt"),
                episodes=sweep.episodes,
                seed=sweep.eval_seed,
                shifts=shifts,
                tasks=sweep.tasks,
                workers=sweep.workers,
                keep_episodes=True,
            )
            atomic_write(path, (json.dumps(report, indent=1) + "\n").encode())
            print(f"evaluated {job.arch} seed {job.seed} ({time.monotonic() - started:.0f} s)")
        reports[job.arch, job.seed] = report
    return reports


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(",") if v.strip())


def parse(argv: list[str]) -> Sweep:
    from edgeliquid.sim.tasks import task_names

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="episodes from edgeliquid collect")
    p.add_argument("--out", type=Path, default=Path("runs/compare"), help="run folders")
    p.add_argument("--archs", default=",".join(ARCHS), help="comma-separated subset")
    p.add_argument("--seeds", type=int, default=5, help="training seeds per arch (0..N-1)")
    p.add_argument("--epochs", type=int, default=14, help="epochs per run (the shared budget)")
    p.add_argument("--episodes", type=int, default=100, help="eval episodes per shift")
    p.add_argument("--eval-seed", type=int, default=12345, help="disjoint from data seeds")
    p.add_argument("--shifts", default="all", help="comma-separated shifts, or all")
    p.add_argument("--tasks", default="reach", help="comma-separated tasks, or all")
    p.add_argument("--lr", type=float, default=DEFAULT_LR, help="every arch's lr (no grid)")
    p.add_argument("--lr-grid", default="", help="comma-separated lrs: per arch, lowest val loss")
    p.add_argument("--lr-seed", type=int, default=100, help="training seed of the lr grid runs")
    p.add_argument("--jobs", type=int, default=1, help="training runs in parallel")
    p.add_argument("--workers", type=int, default=2, help="eval processes")
    p.add_argument("--threads", type=int, default=1, help="torch threads per training run")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="training device")
    p.add_argument("--max-minutes", type=float, default=None, help="cap per training run")
    p.add_argument("--docs", type=Path, default=Path("docs"), help="results.md/.json folder")
    p.add_argument("--readme", type=Path, default=Path("README.md"), help="its Results block")
    a = p.parse_args(argv)
    return Sweep(
        data=a.data,
        out=a.out,
        archs=tuple(a.archs.split(",")),
        seeds=a.seeds,
        epochs=a.epochs,
        episodes=a.episodes,
        eval_seed=a.eval_seed,
        shifts=() if a.shifts == "all" else tuple(a.shifts.split(",")),
        tasks=tuple(task_names(a.tasks)),
        lr=a.lr,
        lr_grid=_floats(a.lr_grid),
        lr_seed=a.lr_seed,
        jobs=a.jobs,
        workers=a.workers,
        threads=a.threads,
        device=a.device,
        max_minutes=a.max_minutes,
        docs=a.docs,
        readme=a.readme,
    )


def main(argv: list[str]) -> None:
    try:
        sweep = parse(argv)
        sweep.shift_list()
    except ValueError as e:
        raise SystemExit(f"compare_archs: {e}") from None
    compare_pages.check_pages(sweep.docs / "results.md", sweep.readme)  # before hours of work
    command = shlex.join([".venv/bin/python", "scripts/compare_archs.py", *argv])
    lrs, grid = choose_lrs(sweep)
    jobs = final_jobs(sweep, lrs)
    metrics = dict(zip(((j.arch, j.seed) for j in jobs), train_all(sweep, jobs), strict=True))
    reports = evaluate_all(sweep, jobs)
    table = compare_report.aggregate(sweep.archs, sweep.seeds, metrics, reports)
    setup = compare_report.setup(sweep, command, metrics, lrs, grid)
    compare_pages.write_pages(sweep.docs, sweep.readme, setup, table)
    print(f"wrote {sweep.docs / 'results.md'}, {sweep.docs / 'results.json'} and {sweep.readme}")


if __name__ == "__main__":
    main(sys.argv[1:])
