"""Train every policy arch on the same data and recipe, fly each closed loop, compare them.

The settled comparison (issue 12): the wired CfC against a dense CfC, LSTM, LSTM + dt, GRU and
CNN at the same parameter budget, 5 training seeds each, 100 episodes per shift. Regenerate
docs/results.md (its marked block), docs/results.json and the README's marked Results block:

    .venv/bin/python scripts/compare_archs.py --data data/shipped --out runs/compare \
        --lr-grid 1e-3,2e-3,4e-3 --workers 2 --input-norm frame

1. `--lr-grid`: per arch, one run per learning rate (training seed `--lr-seed`, apart from the
   seeds compared) and the lr with the lowest best validation loss; the test shifts never
   choose. Without it every arch trains at `--lr`.
2. `--seeds` training runs per arch at its lr, same data, same TrainConfig otherwise.
3. Each best.pt flies `--episodes` episodes per shift (`evaluate`, eval seed `--eval-seed`)
   on every task of `--tasks` (default reach; e.g. `--tasks reach,follow,chain` or `all`):
   episode i is the same scene for every shift and every run, so archs pair up scene by scene.
4. Statistics: `compare_report.py` (Wilson per cell, paired bootstrap differences); pages:
   `compare_pages.py` (only the marked blocks of docs/results.md and the README).

The engine is `edgeliquid.tune.grid`: every run (train, then fly) is one trial of a Ray Tune
grid search, on a local Ray (`--cpus`, default all of this machine's) or on the cluster at
`--address ray://HOST:PORT`, where the flights run too. Each run's records (metrics.json and
its per-episode eval, gzipped) are kept in DOCS/compare/RUN/: the stored runs the pages are
made from. `--report-only` rewrites the pages from them alone (no Ray, no training), so a
fresh clone regenerates docs/results.md. Resumable: a run whose records match this sweep is
not run again, a run folder under --out with metrics.json is not trained again, and a folder
trained with another recipe is refused, never mixed in.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the two modules beside this file

import compare_pages
import compare_report

from edgeliquid.model.policy import ARCHS, INPUT_NORMS
from edgeliquid.training.config import TrainConfig

DEFAULT_LR = TrainConfig().lr
EVAL_FILE = "eval.json.gz"


@dataclass(frozen=True)
class Sweep:
    """What to compare and how hard; see `--help`."""

    data: Path
    out: Path
    archs: tuple[str, ...] = ARCHS
    seeds: int = 5  # training seeds per arch: 0..seeds-1
    epochs: int = 14  # the shared budget, the same for every arch
    episodes: int = 100  # per shift: a Wilson interval of about +-0.05 near 0.8 per run
    eval_seed: int = 12345  # disjoint from the data's collect seeds
    shifts: tuple[str, ...] = ()  # () = every single shift
    tasks: tuple[str, ...] = ("reach",)  # sim.tasks flown by every run, each under every shift
    lr: float = DEFAULT_LR  # every arch's lr when there is no grid
    lr_grid: tuple[float, ...] = ()  # per-arch lr candidates, chosen on validation loss
    lr_seed: int = 100  # the grid's training seed: not one of the compared seeds
    input_norm: str = "fixed"  # train --input-norm, the same for every arch
    workers: int = 2  # eval processes per run (a run reserves max(workers, threads) CPUs)
    threads: int = 1
    device: str = "cpu"
    gpus_per_run: float = 0.0  # Ray's GPU share per run (with --device cuda)
    cpus: int | None = None  # the local Ray's CPUs (None: all)
    address: str | None = None  # ray://HOST:PORT: run on that cluster
    max_minutes: float | None = None
    report_only: bool = False  # pages from the stored runs; nothing is trained or flown
    docs: Path = Path("docs")
    readme: Path = Path("README.md")

    def __post_init__(self) -> None:
        unknown = sorted(set(self.archs) - set(ARCHS))
        if unknown or not self.archs:
            raise ValueError(f"unknown archs {unknown}; choose from {', '.join(ARCHS)}")
        for name in ("seeds", "epochs", "episodes", "workers", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if not all(lr > 0 for lr in (self.lr, *self.lr_grid)):
            raise ValueError(f"learning rates must be > 0, got {self.lr} / {self.lr_grid}")
        if self.lr_grid and self.lr_seed < self.seeds:
            raise ValueError(
                f"--lr-seed {self.lr_seed} is one of the compared seeds 0..{self.seeds - 1}: "
                "the lr would be chosen on a run that is then compared"
            )
        if self.input_norm not in INPUT_NORMS:
            raise ValueError(f"--input-norm must be one of {', '.join(INPUT_NORMS)}")
        if self.device == "cuda" and not self.gpus_per_run > 0:
            raise ValueError("--device cuda needs --gpus-per-run (0.16: six runs share a GPU)")
        if self.address is not None and not self.address.startswith("ray://"):
            raise ValueError(f"--address must be ray://HOST:PORT, got {self.address!r}")

    def shift_list(self) -> list[str]:
        from edgeliquid.sim.shifts import parse_shift, shift_names
        from edgeliquid.sim.tasks import check_task

        for shift in self.shifts:
            parse_shift(shift)  # ValueError naming the valid shifts
        for task in self.tasks:
            check_task(task)  # ValueError naming the valid tasks
        return list(self.shifts) or shift_names()

    @property
    def store(self) -> Path:
        return self.docs / "compare"


@dataclass(frozen=True)
class Job:
    """One training run of the sweep; `name` is its folder under --out and in the store."""

    arch: str
    seed: int
    lr: float
    name: str


def _train_config(sweep: Sweep, job: Job) -> TrainConfig:
    return TrainConfig(
        arch=job.arch,
        seed=job.seed,
        epochs=sweep.epochs,
        lr=job.lr,
        input_norm=sweep.input_norm,
        num_threads=sweep.threads,
        device=sweep.device,
        max_minutes=sweep.max_minutes,
    )


def _same_data(recorded: dict[str, Any], data: Path) -> bool:
    """The run was trained on this data: this very folder, or (a clone elsewhere, whose
    paths differ) a folder of the same name collected the same way. Without the folder
    (--report-only from the store alone) the name has to do."""
    from edgeliquid.episodes import read_manifest
    from edgeliquid.training.data import DATA_KEYS
    from edgeliquid.training.flight import LEGACY

    where = Path(recorded["dir"])
    if where.resolve() == data.resolve():
        return True
    if where.name != data.name:
        return False
    if not data.is_dir():
        return True
    manifest = read_manifest(data)
    # a setting missing on either side (written before it existed) stands for its old default
    same = all(
        manifest.get(k, LEGACY.get(k)) == recorded.get(k, LEGACY.get(k))
        for k in DATA_KEYS
        if k in recorded or k in LEGACY
    )
    return same and len(manifest["episodes"]) == recorded["episodes"]


def _check_reused(sweep: Sweep, job: Job, metrics: dict[str, Any], where: Path) -> None:
    """A finished run is reused only if it was trained as this job asks."""
    want = {"arch": job.arch, "seed": job.seed, "lr": job.lr, "epochs": sweep.epochs}
    want["input_norm"] = sweep.input_norm
    got = {k: metrics["train_config"].get(k) for k in want}
    got["input_norm"] = got["input_norm"] or "fixed"
    if got != want or not _same_data(metrics["data"], sweep.data):
        raise SystemExit(
            f"compare_archs: {where} was trained with {got} on {metrics['data']['dir']}, "
            f"this sweep needs {want} on {sweep.data}: use another --out (or --docs)"
        )


def _same_flights(report: dict[str, Any], sweep: Sweep, shifts: list[str]) -> bool:
    """The report holds per-episode outcomes of this sweep's episodes, seed, tasks, shifts."""
    cells = [(row.get("task", "reach"), row["shift"]) for row in report.get("results", [])]
    return (
        report.get("episodes") == sweep.episodes
        and report.get("seed") == sweep.eval_seed
        and cells == [(task, shift) for task in sweep.tasks for shift in shifts]
        and "episode_results" in report
    )


def stored(sweep: Sweep, job: Job, flies: bool) -> dict[str, Any] | None:
    """The stored records of a finished job ({"metrics", "eval"}), or None if not stored."""
    folder = sweep.store / job.name
    if not (folder / "metrics.json").is_file():
        return None
    metrics = json.loads((folder / "metrics.json").read_text())
    _check_reused(sweep, job, metrics, folder)
    if not flies:
        return {"metrics": metrics}
    if not (folder / EVAL_FILE).is_file():
        return None
    report = json.loads(gzip.decompress((folder / EVAL_FILE).read_bytes()))
    return (
        {"metrics": metrics, "eval": report}
        if _same_flights(report, sweep, sweep.shift_list())
        else None
    )


def _keep(sweep: Sweep, job: Job, flies: bool) -> None:
    """Copy a finished run's records from its folder into the store."""
    from edgeliquid.episodes import atomic_write

    run, folder = sweep.out / job.name, sweep.store / job.name
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run / "metrics.json", folder / "metrics.json")
    if flies:
        packed = gzip.compress((run / "eval.json").read_bytes(), mtime=0)
        atomic_write(folder / EVAL_FILE, packed)


def run_jobs(sweep: Sweep, jobs: list[Job], flies: bool) -> dict[str, dict[str, Any]]:
    """Every job's stored records; the missing ones run first on the grid engine."""
    records = {job.name: stored(sweep, job, flies) for job in jobs}
    missing = [job for job in jobs if records[job.name] is None]
    if missing and sweep.report_only:
        names = ", ".join(job.name for job in missing)
        raise SystemExit(f"compare_archs: --report-only, but {sweep.store} lacks runs {names}")
    if missing:
        _run_missing(sweep, missing, flies)
        records |= {job.name: stored(sweep, job, flies) for job in missing}
    return {name: record for name, record in records.items() if record is not None}


def _run_missing(sweep: Sweep, missing: list[Job], flies: bool) -> None:
    from edgeliquid.tune.grid import FlightPlan, GridJob, run_grid

    for job in missing:
        trained = sweep.out / job.name / "metrics.json"
        if trained.is_file():
            _check_reused(sweep, job, json.loads(trained.read_text()), trained.parent)
    plan = FlightPlan(
        sweep.episodes, sweep.eval_seed, tuple(sweep.shift_list()), sweep.tasks, sweep.workers
    )
    grid = [
        GridJob(
            job.name,
            sweep.out / job.name,
            (sweep.data,),
            _train_config(sweep, job),
            plan if flies else None,
        )
        for job in missing
    ]
    try:
        run_grid(
            grid,
            sweep.out,
            cpus_per_job=max(sweep.workers if flies else 1, sweep.threads),
            gpus_per_job=sweep.gpus_per_run,
            address=sweep.address,
            cpus=sweep.cpus,
        )
    finally:  # a failed or interrupted grid keeps what did finish: a rerun does only the rest
        for job in missing:
            run = sweep.out / job.name
            if (run / "metrics.json").is_file() and (not flies or (run / "eval.json").is_file()):
                _keep(sweep, job, flies)


def choose_lrs(sweep: Sweep) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Per arch: the lr with the lowest best validation loss on the grid (or `sweep.lr`), and
    every grid run's loss (empty without a grid)."""
    if not sweep.lr_grid:
        return {arch: sweep.lr for arch in sweep.archs}, {}
    jobs = [
        Job(
            arch, sweep.lr_seed, lr, f"lr_grid/{arch}_lr{lr:g}_ep{sweep.epochs}_seed{sweep.lr_seed}"
        )
        for arch in sweep.archs
        for lr in sweep.lr_grid
    ]
    records = run_jobs(sweep, jobs, flies=False)
    losses: dict[str, dict[str, float]] = {arch: {} for arch in sweep.archs}
    for job in jobs:
        losses[job.arch][f"{job.lr:g}"] = float(records[job.name]["metrics"]["best_val_loss"])
    chosen = {arch: float(compare_report.lowest(losses[arch])) for arch in sweep.archs}
    return chosen, losses


def final_jobs(sweep: Sweep, lrs: dict[str, float]) -> list[Job]:
    return [
        Job(arch, seed, lrs[arch], f"{arch}_lr{lrs[arch]:g}_ep{sweep.epochs}_seed{seed}")
        for seed in range(sweep.seeds)
        for arch in sweep.archs
    ]


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
    p.add_argument("--input-norm", default="fixed", help="fixed | frame, for every arch")
    p.add_argument("--workers", type=int, default=2, help="eval processes per run")
    p.add_argument("--threads", type=int, default=1, help="torch threads per training run")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="training device")
    p.add_argument("--gpus-per-run", type=float, default=0.0, help="Ray GPU share per run")
    p.add_argument("--cpus", type=int, default=None, help="the local Ray's CPUs (default all)")
    p.add_argument("--address", default=None, help="ray://HOST:PORT: run on that cluster")
    p.add_argument("--max-minutes", type=float, default=None, help="cap per training run")
    p.add_argument("--report-only", action="store_true", help="pages from the stored runs only")
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
        input_norm=a.input_norm,
        workers=a.workers,
        threads=a.threads,
        device=a.device,
        gpus_per_run=a.gpus_per_run,
        cpus=a.cpus,
        address=a.address,
        max_minutes=a.max_minutes,
        report_only=a.report_only,
        docs=a.docs,
        readme=a.readme,
    )


def _command(argv: list[str]) -> str:
    """The sweep's command line as the pages quote it (without --report-only)."""
    kept = [arg for arg in argv if arg != "--report-only"]
    return shlex.join([".venv/bin/python", "scripts/compare_archs.py", *kept])


def main(argv: list[str]) -> None:
    from edgeliquid.errors import EdgeLiquidError

    try:
        sweep = parse(argv)
        sweep.shift_list()
    except ValueError as e:
        raise SystemExit(f"compare_archs: {e}") from None
    compare_pages.check_pages(sweep.docs / "results.md", sweep.readme)  # before hours of work
    try:
        lrs, grid = choose_lrs(sweep)
        jobs = final_jobs(sweep, lrs)
        records = run_jobs(sweep, jobs, flies=True)
    except EdgeLiquidError as e:  # a failed run, a stop, an unreachable cluster
        raise SystemExit(f"compare_archs: {e}") from None
    metrics = {(j.arch, j.seed): records[j.name]["metrics"] for j in jobs}
    reports = {(j.arch, j.seed): records[j.name]["eval"] for j in jobs}
    table = compare_report.aggregate(sweep.archs, sweep.seeds, metrics, reports)
    setup = compare_report.setup(sweep, _command(argv), metrics, lrs, grid)
    compare_pages.write_pages(sweep.docs, sweep.readme, setup, table)
    print(f"wrote {sweep.docs / 'results.md'}, {sweep.docs / 'results.json'} and {sweep.readme}")


if __name__ == "__main__":
    main(sys.argv[1:])
