"""Train CfC, LSTM, GRU and CNN policies on the same data and budget; compare them in closed loop.

Every architecture gets the same episodes, the same TrainConfig (epochs, windows, lr, batch)
and one run per training seed; each best checkpoint is then flown with `evaluate` over every
single shift on evaluation scenes disjoint from the training data. Writes docs/results.md
(arch × shift table of success, mean ± spread over training seeds) and docs/results.json.

Runs are resumable: a run folder that already holds metrics.json (trained) or eval.json
(evaluated) is reused, so a killed sweep continues where it stopped.

    .venv/bin/python scripts/compare_archs.py --data data/train_s1_n300 --out runs/compare \
        --seeds 2 --epochs 8 --episodes 50 --jobs 1
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

import numpy as np

ARCHS = ("cfc", "lstm", "gru", "cnn")


@dataclass(frozen=True)
class Sweep:
    """What to compare and how hard; see `--help`."""

    data: Path
    out: Path
    archs: tuple[str, ...] = ARCHS
    seeds: int = 2
    epochs: int = 14
    episodes: int = 50
    eval_seed: int = 12345
    jobs: int = 1
    workers: int = 2
    threads: int = 1
    device: str = "cpu"
    max_minutes: float | None = None
    docs: Path = Path("docs")

    def __post_init__(self) -> None:
        unknown = sorted(set(self.archs) - set(ARCHS))
        if unknown:
            raise ValueError(f"unknown archs {unknown}; choose from {', '.join(ARCHS)}")
        for name in ("seeds", "epochs", "episodes", "jobs", "workers", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}")

    def run_dir(self, arch: str, seed: int) -> Path:
        return self.out / f"{arch}_seed{seed}"


def _train_one(sweep: Sweep, arch: str, seed: int) -> dict[str, Any]:
    """Train one (arch, seed) unless its metrics.json exists; returns the metrics."""
    import torch

    from edgeliquid.training.config import TrainConfig
    from edgeliquid.training.trainer import train

    run_dir = sweep.run_dir(arch, seed)
    if (run_dir / "metrics.json").is_file():
        return json.loads((run_dir / "metrics.json").read_text())
    torch.set_num_threads(sweep.threads)
    config = TrainConfig(
        arch=arch,
        seed=seed,
        epochs=sweep.epochs,
        num_threads=sweep.threads,
        device=sweep.device,
        max_minutes=sweep.max_minutes,
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "train.log", "w") as log:
        result = train(sweep.data, run_dir, config, log=lambda s: print(s, file=log, flush=True))
    return result.metrics


def _train_job(job: tuple[Sweep, str, int]) -> tuple[str, int, float]:
    sweep, arch, seed = job
    started = time.monotonic()
    metrics = _train_one(sweep, arch, seed)
    print(
        f"trained {arch} seed {seed}: best val {metrics['best_val_loss']:.4f} "
        f"({time.monotonic() - started:.0f} s)",
        flush=True,
    )
    return arch, seed, float(metrics["wall_seconds"])


def train_all(sweep: Sweep) -> None:
    """Every (arch, seed) run, `jobs` at a time in spawned processes."""
    jobs = [(sweep, arch, seed) for seed in range(sweep.seeds) for arch in sweep.archs]
    if sweep.jobs == 1:
        for job in jobs:
            _train_job(job)
        return
    with multiprocessing.get_context("spawn").Pool(sweep.jobs) as pool:
        for _ in pool.imap_unordered(_train_job, jobs):
            pass


def evaluate_all(sweep: Sweep) -> dict[tuple[str, int], dict[str, Any]]:
    """The eval report of every run's best.pt over all single shifts (cached in eval.json)."""
    from edgeliquid.evaluate import evaluate
    from edgeliquid.sim.shifts import shift_names

    reports = {}
    for seed in range(sweep.seeds):
        for arch in sweep.archs:
            path = sweep.run_dir(arch, seed) / "eval.json"
            if not path.is_file():
                started = time.monotonic()
                report = evaluate(
                    str(sweep.run_dir(arch, seed) / "best.pt"),
                    episodes=sweep.episodes,
                    seed=sweep.eval_seed,
                    shifts=shift_names(),
                    workers=sweep.workers,
                )
                path.write_text(json.dumps(report, indent=1) + "\n")
                print(
                    f"evaluated {arch} seed {seed} ({time.monotonic() - started:.0f} s)", flush=True
                )
            reports[arch, seed] = json.loads(path.read_text())
    return reports


def _stat(values: list[float], n_episodes: int) -> dict[str, Any]:
    """Mean and spread: std over training seeds, or a binomial std error for one seed."""
    mean = float(np.mean(values))
    if len(values) > 1:
        spread, kind = float(np.std(values, ddof=1)), "std over training seeds"
    else:
        spread, kind = float(np.sqrt(mean * (1 - mean) / n_episodes)), "binomial std error"
    return {"mean": mean, "spread": spread, "spread_kind": kind, "per_seed": values}


def aggregate(sweep: Sweep, reports: dict) -> dict[str, Any]:
    """Per arch: sizes, training facts, and per-shift success / collision statistics."""
    out = {}
    for arch in sweep.archs:
        seeds = range(sweep.seeds)
        metrics = [json.loads((sweep.run_dir(arch, s) / "metrics.json").read_text()) for s in seeds]
        shifts = [row["shift"] for row in reports[arch, 0]["results"]]
        rows = {s: {r["shift"]: r for r in reports[arch, s]["results"]} for s in seeds}
        success = {
            sh: _stat([rows[s][sh]["success_rate"] for s in seeds], sweep.episodes) for sh in shifts
        }
        shifted = [sh for sh in shifts if sh != "none"]
        per_seed_mean = [
            float(np.mean([rows[s][sh]["success_rate"] for sh in shifted])) for s in seeds
        ]
        out[arch] = {
            "param_count": metrics[0]["param_count"],
            "flops_per_step": metrics[0]["flops_per_step"],
            "train_seconds": [m["wall_seconds"] for m in metrics],
            "best_val_loss": [m["best_val_loss"] for m in metrics],
            "success": success,
            "collision": {
                sh: float(np.mean([rows[s][sh]["collision_rate"] for s in seeds])) for sh in shifts
            },
            "mean_over_shifts": _stat(per_seed_mean, sweep.episodes * len(shifted)),
        }
    return out


def _cell(stat: dict[str, Any]) -> str:
    return f"{stat['mean']:.2f} ± {stat['spread']:.2f}"


def _success_table(table: dict[str, Any]) -> list[str]:
    first = next(iter(table.values()))
    shifts = list(first["success"])
    lines = [
        "| arch | params | " + " | ".join(shifts) + " | mean of shifts |",
        "|---|---:|" + "---:|" * (len(shifts) + 1),
    ]
    for arch, row in table.items():
        cells = [_cell(row["success"][sh]) for sh in shifts]
        lines.append(
            f"| {arch} | {row['param_count']:,} | "
            + " | ".join(cells)
            + f" | **{_cell(row['mean_over_shifts'])}** |"
        )
    return lines


def _training_table(table: dict[str, Any]) -> list[str]:
    lines = [
        "| arch | params | MFLOP/step | best val loss | train time per run |",
        "|---|---:|---:|---:|---:|",
    ]
    for arch, row in table.items():
        loss, secs = np.mean(row["best_val_loss"]), np.mean(row["train_seconds"])
        lines.append(
            f"| {arch} | {row['param_count']:,} | {row['flops_per_step'] / 1e6:.2f} "
            f"| {loss:.4f} | {secs / 60:.1f} min |"
        )
    return lines


def _seed_table(table: dict[str, Any]) -> list[str]:
    """One row per training run: a run that did not learn shows here, not only as spread."""
    lines = [
        "| arch | training seed | best val loss | none | mean of shifts |",
        "|---|---:|---:|---:|---:|",
    ]
    for arch, row in table.items():
        runs = zip(
            row["best_val_loss"],
            row["success"]["none"]["per_seed"],
            row["mean_over_shifts"]["per_seed"],
            strict=True,
        )
        for seed, (loss, none, mean) in enumerate(runs):
            lines.append(f"| {arch} | {seed} | {loss:.4f} | {none:.2f} | {mean:.2f} |")
    return lines


def _collect_command(sweep: Sweep, data: dict[str, Any]) -> str:
    """The `edgeliquid collect` line that makes `--data` (read from its manifest if here)."""
    from edgeliquid.episodes import read_manifest
    from edgeliquid.errors import EdgeLiquidError

    try:
        manifest = read_manifest(sweep.data)
    except EdgeLiquidError:
        manifest = {}
    value = {**data, **manifest}
    parts = [f"edgeliquid collect --out {sweep.data} --episodes {data['episodes']}"]
    for key, flag in (
        ("seed", "seed"),
        ("dt_jitter", "dt-jitter"),
        ("action_noise", "action-noise"),
        ("hover_s", "hover"),
    ):
        if key in value:
            parts.append(f"--{flag} {value[key]}")
    if value.get("randomize"):
        parts.append("--randomize")
    return " ".join(parts)


def _cfc_losses(table: dict[str, Any]) -> list[str]:
    """Plain sentences for every shift where some baseline beats CfC on mean success."""
    if "cfc" not in table:
        return ["CfC was not part of this sweep."]
    cfc = table["cfc"]
    lines = []
    for shift, stat in cfc["success"].items():
        better = [
            (a, r["success"][shift]["mean"])
            for a, r in table.items()
            if a != "cfc" and r["success"][shift]["mean"] > stat["mean"]
        ]
        if better:
            names = ", ".join(f"{a} {m:.2f}" for a, m in sorted(better, key=lambda x: -x[1]))
            lines.append(f"- `{shift}`: CfC {stat['mean']:.2f} < {names}")
    return lines or ["- no baseline has a higher mean success than CfC on any shift."]


def _setup(sweep: Sweep, command: str) -> dict[str, Any]:
    first = json.loads((sweep.run_dir(sweep.archs[0], 0) / "metrics.json").read_text())
    config = first["train_config"]
    keep = ("epochs", "seq_len", "seq_shift", "batch_size", "lr", "max_minutes", "device")
    return {
        "command": command,
        "collect": _collect_command(sweep, first["data"]),
        "data": first["data"],
        "train": {k: config[k] for k in keep if k in config},
        "training_seeds": list(range(sweep.seeds)),
        "eval": {"episodes_per_shift": sweep.episodes, "seed": sweep.eval_seed},
        "machine": first.get("machine", "not recorded"),
        "parallel_runs": sweep.jobs,
        "date": time.strftime("%Y-%m-%d"),
    }


def write_docs(sweep: Sweep, setup: dict[str, Any], table: dict[str, Any]) -> None:
    sweep.docs.mkdir(parents=True, exist_ok=True)
    (sweep.docs / "results.json").write_text(
        json.dumps({"setup": setup, "archs": table}, indent=1) + "\n"
    )
    data, train = setup["data"], setup["train"]
    spread = next(iter(next(iter(table.values()))["success"].values()))["spread_kind"]
    text = [
        "# Results: CfC against equal-size LSTM, GRU and CNN policies",
        "",
        f"Generated by `scripts/compare_archs.py` on {setup['date']}. Regenerate with:",
        "",
        "```bash",
        setup["command"],
        "```",
        "",
        f"- Data: {data['episodes']} expert episodes ({data['frames']} frames) from "
        f"`{setup['collect']}`: timing jitter and action noise, no OOD shifts.",
        f"- Training, identical for every arch: {json.dumps(train)}; training seeds "
        f"{setup['training_seeds']}; best checkpoint by validation loss.",
        f"- Evaluation: `evaluate` over every single shift, {setup['eval']['episodes_per_shift']} "
        f"episodes per shift, eval seed {setup['eval']['seed']} (scenes disjoint from the "
        "training data).",
        f"- Machine: {setup['machine']}; {setup['parallel_runs']} training runs at a time.",
        "",
        f"## Closed-loop success rate (mean ± {spread})",
        "",
        *_success_table(table),
        "",
        "`mean of shifts` averages every shift except `none`.",
        "",
        "## Where CfC does not win",
        "",
        *_cfc_losses(table),
        "",
        "## Per training run",
        "",
        *_seed_table(table),
        "",
        "## Training",
        "",
        *_training_table(table),
        "",
    ]
    (sweep.docs / "results.md").write_text("\n".join(text))


def parse(argv: list[str]) -> Sweep:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="episodes from edgeliquid collect")
    p.add_argument("--out", type=Path, default=Path("runs/compare"), help="run folders")
    p.add_argument("--archs", default=",".join(ARCHS), help="comma-separated subset")
    p.add_argument("--seeds", type=int, default=2, help="training seeds per arch (0..N-1)")
    p.add_argument("--epochs", type=int, default=14, help="epochs per run (the shared budget)")
    p.add_argument("--episodes", type=int, default=50, help="eval episodes per shift")
    p.add_argument("--eval-seed", type=int, default=12345, help="disjoint from data seeds")
    p.add_argument("--jobs", type=int, default=1, help="training runs in parallel")
    p.add_argument("--workers", type=int, default=2, help="eval processes")
    p.add_argument("--threads", type=int, default=1, help="torch threads per training run")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="training device")
    p.add_argument("--max-minutes", type=float, default=None, help="cap per training run")
    p.add_argument("--docs", type=Path, default=Path("docs"), help="where results.md goes")
    a = p.parse_args(argv)
    return Sweep(
        data=a.data,
        out=a.out,
        archs=tuple(a.archs.split(",")),
        seeds=a.seeds,
        epochs=a.epochs,
        episodes=a.episodes,
        eval_seed=a.eval_seed,
        jobs=a.jobs,
        workers=a.workers,
        threads=a.threads,
        device=a.device,
        max_minutes=a.max_minutes,
        docs=a.docs,
    )


def main(argv: list[str]) -> None:
    sweep = parse(argv)
    command = shlex.join([".venv/bin/python", "scripts/compare_archs.py", *argv])
    train_all(sweep)
    reports = evaluate_all(sweep)
    table = aggregate(sweep, reports)
    write_docs(sweep, _setup(sweep, command), table)
    print(f"wrote {sweep.docs / 'results.md'} and {sweep.docs / 'results.json'}")


if __name__ == "__main__":
    main(sys.argv[1:])
