"""Statistics of `compare_archs.py`: Wilson cells, bootstrap means, paired differences.

- A column is a shift of `reach` (its name), or a task under a shift (`follow` under none,
  `follow:winter` otherwise: `column`); `mean of shifts` averages the reach shifts only.
- A cell (arch × column) is the success rate pooled over every training seed's episodes
  (seeds × episodes flights) with the 95% Wilson score interval on that pooled count
  (`edgeliquid.evaluate.wilson_interval`). The pooled interval treats the flights as
  independent, so it leaves out the spread between training seeds; the per-run table shows it.
- `mean of shifts` and every difference use a percentile bootstrap: each resample draws the
  scenes (episode indices, the same for both archs of a pair: paired) and, per arch, the
  training seeds, both with replacement, so the interval carries scene and seed variation.
- A paired difference cfc − baseline is the mean over scenes of (cfc's success on that scene,
  averaged over its seeds) − (the baseline's, averaged over its seeds).
The pages (docs/results.md, README, results.json) are `compare_pages.py`.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from edgeliquid.evaluate import wilson_interval

RESAMPLES = 4000  # bootstrap resamples: percentile ends stable to about 0.005
BOOT_SEED = 0  # the bootstrap is seeded, so a page regenerates to the same numbers
REFERENCE = "cfc"  # the arch every other one is paired against


# -- statistics ------------------------------------------------------------------------


def _resampled_means(x: np.ndarray, scenes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """x [seeds, scenes]: its mean under each resample's scenes and freshly drawn seeds."""
    seeds = rng.integers(0, x.shape[0], (len(scenes), x.shape[0]))
    picked = x[seeds]  # [R, seeds, scenes]
    return np.take_along_axis(picked, scenes[:, None, :], axis=2).mean(axis=(1, 2))


def _scene_draws(n: int, rng: np.random.Generator, resamples: int) -> np.ndarray:
    return rng.integers(0, n, (resamples, n))


def bootstrap_mean(x: Any, resamples: int = RESAMPLES, seed: int = BOOT_SEED) -> dict[str, Any]:
    """Mean of x [seeds, scenes] (success 1/0, or a per-scene mean) with its 95% interval."""
    x = np.asarray(x, dtype=float)
    rng = np.random.default_rng(seed)
    boot = _resampled_means(x, _scene_draws(x.shape[1], rng, resamples), rng)
    low, high = np.percentile(boot, [2.5, 97.5])
    return {"rate": float(x.mean()), "ci95": [float(low), float(high)]}


def paired_difference(
    a: Any, b: Any, resamples: int = RESAMPLES, seed: int = BOOT_SEED
) -> dict[str, Any]:
    """mean(a) − mean(b) for a, b [seeds, scenes] flown on the same scenes (column i = the
    same scene in both), with a 95% bootstrap interval that keeps the pairing by scene."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(
            f"need [seeds, scenes] arrays on the same scenes, got {a.shape}, {b.shape}"
        )
    rng = np.random.default_rng(seed)
    scenes = _scene_draws(a.shape[1], rng, resamples)
    boot = _resampled_means(a, scenes, rng) - _resampled_means(b, scenes, rng)
    low, high = np.percentile(boot, [2.5, 97.5])
    diff = float((a.mean(0) - b.mean(0)).mean())
    return {"diff": diff, "ci95": [float(low), float(high)]}


def wilson_cell(successes: np.ndarray) -> dict[str, Any]:
    """successes [seeds, episodes] of one arch on one shift → pooled rate, Wilson 95%."""
    k, n = int(successes.sum()), int(successes.size)
    low, high = wilson_interval(k, n)
    return {
        "rate": k / n,
        "successes": k,
        "flights": n,
        "ci95": [low, high],
        "per_seed": [float(v) for v in successes.mean(1)],
    }


def lowest(losses: dict[str, float]) -> str:
    """The key with the lowest loss (NaN counts as worst); ties go to the first."""
    return min(losses, key=lambda k: (np.nan_to_num(losses[k], nan=np.inf), list(losses).index(k)))


# -- the table -------------------------------------------------------------------------


def column(row: dict[str, Any]) -> str:
    """The table column of an eval row or episode: the shift on reach (and in reports from
    before tasks), `TASK` or `TASK:SHIFT` on another task."""
    task, shift = row.get("task", "reach"), row["shift"]
    if task == "reach":
        return shift
    return task if shift == "none" else f"{task}:{shift}"


def shifted_columns(columns: list[str]) -> list[int]:
    """Indices of the columns `mean of shifts` averages: reach under a shift other than none."""
    from edgeliquid.sim.tasks import TASKS

    return [i for i, c in enumerate(columns) if c != "none" and c.split(":")[0] not in TASKS]


def outcome_array(reports: list[dict[str, Any]], key: str = "success") -> np.ndarray:
    """[seeds, columns, episodes] of 1.0 where a run's episode ended with outcome `key`."""
    columns = [column(row) for row in reports[0]["results"]]
    episodes = reports[0]["episodes"]
    out = np.zeros((len(reports), len(columns), episodes))
    for s, report in enumerate(reports):
        for row in report["episode_results"]:
            out[s, columns.index(column(row)), row["index"]] = row["outcome"] == key
    return out


def _core_summary(model_config: dict[str, Any]) -> str:
    from edgeliquid.model import NavPolicyConfig, build_policy

    return build_policy(NavPolicyConfig(**model_config)).core_summary


def _arch_row(seeds: list[dict[str, Any]], success: np.ndarray, shifts: list[str]) -> dict:
    first = seeds[0]
    shifted = shifted_columns(shifts)
    return {
        "param_count": first["param_count"],
        "flops_per_step": first["flops_per_step"],
        "core": _core_summary(first["model_config"]),
        "lr": first["train_config"]["lr"],
        "train_seconds": [m["wall_seconds"] for m in seeds],
        "best_val_loss": [m["best_val_loss"] for m in seeds],
        "success": {sh: wilson_cell(success[:, i]) for i, sh in enumerate(shifts)},
        "mean_over_shifts": {
            **bootstrap_mean(success[:, shifted].mean(1)),
            "per_seed": [float(v) for v in success[:, shifted].mean((1, 2))],
        }
        if shifted
        else None,
    }


def aggregate(
    archs: tuple[str, ...],
    seeds: int,
    metrics: dict[tuple[str, int], dict[str, Any]],
    reports: dict[tuple[str, int], dict[str, Any]],
) -> dict[str, Any]:
    """{"shifts", "archs": per-arch rows, "paired": cfc − each other arch, per shift}."""
    shifts = [column(row) for row in reports[archs[0], 0]["results"]]
    outcomes = {a: outcome_array([reports[a, s] for s in range(seeds)]) for a in archs}
    rows = {
        a: {
            **_arch_row([metrics[a, s] for s in range(seeds)], outcomes[a], shifts),
            "collision": {
                sh: float(c.mean())
                for sh, c in zip(
                    shifts,
                    outcome_array([reports[a, s] for s in range(seeds)], "collision").swapaxes(
                        0, 1
                    ),
                    strict=True,
                )
            },
        }
        for a in archs
    }
    return {"shifts": shifts, "archs": rows, "paired": _paired(outcomes, shifts)}


def _paired(outcomes: dict[str, np.ndarray], shifts: list[str]) -> dict[str, Any]:
    if REFERENCE not in outcomes:
        return {}
    ref, shifted = outcomes[REFERENCE], shifted_columns(shifts)
    paired = {}
    for arch, other in outcomes.items():
        if arch == REFERENCE:
            continue
        row = {sh: paired_difference(ref[:, i], other[:, i]) for i, sh in enumerate(shifts)}
        if shifted:
            row["mean of shifts"] = paired_difference(
                ref[:, shifted].mean(1), other[:, shifted].mean(1)
            )
        paired[arch] = row
    return paired


# -- setup facts -----------------------------------------------------------------------


def _collect_command(data_dir: Path, data: dict[str, Any]) -> str:
    """The `edgeliquid collect` line that makes the data (read from its manifest if here)."""
    from edgeliquid.episodes import read_manifest
    from edgeliquid.errors import EdgeLiquidError

    try:
        manifest = read_manifest(data_dir)
    except EdgeLiquidError:
        manifest = {}
    value = {**data, **manifest}
    parts = [f"edgeliquid collect --out {data_dir} --episodes {data['episodes']}"]
    flags = (("seed", "seed"), ("dt_jitter", "dt-jitter"), ("action_noise", "action-noise"))
    for key, flag in (*flags, ("hover_s", "hover")):
        if key in value:
            parts.append(f"--{flag} {value[key]}")
    if value.get("task", "reach") != "reach":
        parts.append(f"--task {value['task']}")
    if value.get("randomize"):
        parts.append("--randomize")
    if value.get("decoys"):
        parts.append("--decoys")
    return " ".join(parts)


def _machines(metrics: dict) -> str:
    """Every machine the runs trained on, with its count (a sweep resumed elsewhere has two)."""
    counts = Counter(m.get("machine", "not recorded") for m in metrics.values())
    if len(counts) == 1:
        return next(iter(counts))
    return "; ".join(f"{name} ({n} runs)" for name, n in counts.most_common())


def _engine(sweep: Any) -> str:
    where = f"the Ray cluster at {sweep.address}" if sweep.address else "a local Ray"
    cpus = max(sweep.workers, sweep.threads)
    return f"each run one trial of a Ray Tune grid search on {where}, {cpus} CPUs per run"


def setup(sweep: Any, command: str, metrics: dict, lrs: dict, grid: dict) -> dict[str, Any]:
    first = metrics[sweep.archs[0], 0]
    config = first["train_config"]
    keep = ("epochs", "seq_len", "seq_shift", "batch_size", "max_minutes", "device")
    return {
        "command": command,
        "collect": _collect_command(sweep.data, first["data"]),
        "data": first["data"],
        "train": {k: config[k] for k in keep if k in config},
        "training_seeds": list(range(sweep.seeds)),
        "lr": lrs,
        "lr_grid": {"candidates": list(sweep.lr_grid), "seed": sweep.lr_seed, "best_val_loss": grid}
        if grid
        else None,
        "eval": {
            "episodes_per_shift": sweep.episodes,
            "seed": sweep.eval_seed,
            "tasks": list(sweep.tasks),
        },
        "bootstrap": {"resamples": RESAMPLES, "seed": BOOT_SEED},
        "machine": _machines(metrics),
        "engine": _engine(sweep),
        "date": time.strftime("%Y-%m-%d"),
    }
