"""The study's report: the Pareto front of success ↑ against step latency ↓.

`write_report(run_dir, study)` reads every finished trial's metrics.json (trial.py) and writes,
beside them: `front.md` (the front, then every trial: success, worst seed, p50 latency,
parameters, file size, the point of the space), `front.png` (success against latency, the
front highlighted) and `best.onnx` (+ its `.sha256`), the front's most successful trial's
exported file, ready for `edgeliquid run`. A trial is on the front when no other trial is at
least as successful and at least as fast, and better in one of the two. Reference models
(`reference.py`, measured on the same plan) are listed and drawn beside the trials, each with
the trials that dominate it; they never change the front or best.onnx.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgeliquid.episodes import atomic_write

TRIALS = "trials"
REPORT_FILES = ("front.md", "front.png", "best.onnx")


def load_trials(run_dir: Path) -> list[dict[str, Any]]:
    """Every trial with a metrics.json (finished, ok or failed), oldest first, with its id."""
    trials = []
    for path in sorted((run_dir / TRIALS).glob("*/metrics.json")):
        metrics = json.loads(path.read_text())
        trials.append({"id": path.parent.name, "mtime": path.stat().st_mtime, **metrics})
    return sorted(trials, key=lambda t: t["mtime"])


def dominates(a: dict[str, Any], b: dict[str, Any]) -> bool:
    at_least = a["success"] >= b["success"] and a["latency_us"] <= b["latency_us"]
    return at_least and (a["success"] > b["success"] or a["latency_us"] < b["latency_us"])


def pareto_front(trials: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The non-dominated ok trials, fastest first."""
    ok = [t for t in trials if t["status"] == "ok"]
    front = [t for t in ok if not any(dominates(o, t) for o in ok)]
    return sorted(front, key=lambda t: (t["latency_us"], -t["success"]))


def best_trial(front: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The front's most successful trial (the faster one of a tie)."""
    return max(front, key=lambda t: (t["success"], -t["latency_us"]), default=None)


def describe_point(point: dict[str, Any]) -> str:
    """`cfc, ncp_units 24, lr 0.0031, ...`: the arch, then the other keys in `SEARCHABLE` order."""
    from edgeliquid.tune.space import SEARCHABLE

    order = list(SEARCHABLE)
    keys = sorted(
        (k for k in point if k != "arch"), key=lambda k: order.index(k) if k in order else 99
    )
    values = [
        f"{k} {point[k]:.3g}" if isinstance(point[k], float) else f"{k} {point[k]}" for k in keys
    ]
    return ", ".join([str(point.get("arch", "cfc")), *values])


def trial_line(trial: dict[str, Any], done: int, target: int) -> str:
    """The progress line printed as each trial finishes."""
    head = f"trial {done}/{target} {trial['id']}"
    minutes = trial.get("seconds", 0.0) / 60
    if trial["status"] != "ok":
        return f"{head}: failed after {minutes:.1f} min: {trial.get('error', 'no metrics')}"
    return (
        f"{head}: success {trial['success']:.2f} (worst seed {trial['success_worst_seed']:.2f})"
        f" | p50 {trial['latency_us']:.0f} µs | {trial['params']:,} params"
        f" | {trial['size_bytes'] / 1024:.1f} KB | {describe_point(trial['point'])}"
        f" | {minutes:.1f} min"
    )


def _row(trial: dict[str, Any], best: dict[str, Any] | None) -> str:
    mark = " (best.onnx)" if best is not None and trial["id"] == best["id"] else ""
    if trial["status"] != "ok":
        return f"| {trial['id']} | failed: {trial.get('error', '')} | | | | | |"
    return (
        f"| {trial['id']}{mark} | {trial['success']:.2f} | {trial['success_worst_seed']:.2f} "
        f"| {trial['latency_us']:.0f} | {trial['params']:,} | {trial['size_bytes'] / 1024:.1f} "
        f"| {describe_point(trial['point'])} |"
    )


HEADER = (
    "| trial | success | worst seed | p50 µs | params | KB | point |\n"
    "|---|---:|---:|---:|---:|---:|---|"
)


def _reference_row(ref: dict[str, Any], trials: Sequence[dict[str, Any]]) -> str:
    better = [t["id"] for t in trials if t["status"] == "ok" and dominates(t, ref)]
    standing = f"dominated by {', '.join(better)}" if better else "on the front"
    shifts = ", ".join(f"{k} {v:.2f}" for k, v in ref["success_per_shift"].items())
    return (
        f"| {ref['id']} ({ref['arch']}) | {ref['success']:.2f} | {ref['latency_us']:.0f} "
        f"| {ref['params']:,} | {ref['size_bytes'] / 1024:.1f} | {shifts} | {standing} |"
    )


def _references(refs: Sequence[dict[str, Any]], trials: Sequence[dict[str, Any]]) -> list[str]:
    if not refs:
        return []
    return [
        "## Reference models",
        "",
        "Measured on the same eval plan and timed the same way, but trained on their own "
        "recipe, not on the space's budget.",
        "",
        "| model | success | p50 µs | params | KB | per shift | against the trials |",
        "|---|---:|---:|---:|---:|---|---|",
        *[_reference_row(r, trials) for r in refs],
        "",
    ]


def markdown(
    trials: Sequence[dict[str, Any]],
    study: dict[str, Any],
    references: Sequence[dict[str, Any]] = (),
) -> str:
    front = pareto_front(trials)
    best = best_trial(front)
    plan, seeds = study["space"]["eval"], study["space"]["train"]["seeds"]
    failed = sum(t["status"] != "ok" for t in trials)
    hosts = sorted({t["host"] for t in trials if "host" in t})
    lines = [
        "# Tune study: success against step latency",
        "",
        f"{len(trials)} finished trials ({failed} failed) of `{study['space_file']}` on "
        f"{', '.join(f'`{d}`' for d in study['data'])}. Success: closed loop, mean over "
        f"training seeds {', '.join(map(str, seeds))} and shifts {', '.join(plan['shifts'])} "
        f"({plan['episodes']} episodes each, eval seed {plan['seed']}); worst seed: the "
        "lowest seed's mean. "
        "p50: the exported step (ONNX Runtime, one thread) timed in the trial's own process"
        f"{' on ' + '; '.join(hosts) if hosts else ''}.",
        "",
        "## Pareto front",
        "",
        HEADER,
        *[_row(t, best) for t in front],
        "",
    ]
    if best is not None:
        lines += [f"`best.onnx` is trial {best['id']}'s `{best['model']}`.", ""]
    lines += _references(references, trials)
    lines += ["## All trials", "", HEADER, *[_row(t, best) for t in trials], ""]
    return "\n".join(lines)


def plot(
    trials: Sequence[dict[str, Any]], path: Path, references: Sequence[dict[str, Any]] = ()
) -> None:
    """Success against p50 latency: every trial, the front as a step line, best.onnx starred,
    reference models as labelled diamonds."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    ok = [t for t in trials if t["status"] == "ok"]
    front = pareto_front(trials)
    best = best_trial(front)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    ax.scatter([t["latency_us"] for t in ok], [t["success"] for t in ok], c="0.6", label="trial")
    xs, ys = [t["latency_us"] for t in front], [t["success"] for t in front]
    ax.step(xs, ys, where="post", c="tab:red", marker="o", label="Pareto front")
    for t in front:
        ax.annotate(
            t["id"][:8],
            (t["latency_us"], t["success"]),
            fontsize=7,
            xytext=(4, -10),
            textcoords="offset points",
        )
    if best is not None:
        ax.scatter(
            [best["latency_us"]],
            [best["success"]],
            marker="*",
            s=250,
            c="gold",
            edgecolors="k",
            zorder=5,
            label="best.onnx",
        )
    for i, ref in enumerate(references):
        point = (ref["latency_us"], ref["success"])
        label = "reference model" if i == 0 else None
        ax.scatter(*point, marker="D", s=60, c="tab:blue", zorder=6, label=label)
        ax.annotate(ref["id"], point, fontsize=8, xytext=(5, 4), textcoords="offset points")
    ax.set_xlabel("p50 step latency, µs (ONNX Runtime, one thread)")
    ax.set_ylabel("closed-loop success (mean over seeds and shifts)")
    ax.set_ylim(-0.03, 1.03)
    ax.margins(x=0.1)  # room for the labels of the points at either end
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png"))
    plt.close(fig)


def write_report(run_dir: Path, study: dict[str, Any]) -> dict[str, Any] | None:
    """front.md, front.png and best.onnx from the finished trials; the best trial (or None)."""
    from edgeliquid.export.graph import save_bytes
    from edgeliquid.tune.reference import load_references

    trials, references = load_trials(run_dir), load_references(run_dir)
    atomic_write(run_dir / "front.md", markdown(trials, study, references).encode())
    plot(trials, run_dir / "front.png", references)
    best = best_trial(pareto_front(trials))
    if best is not None:
        model = run_dir / TRIALS / best["id"] / best["model"]
        save_bytes(model.read_bytes(), run_dir / "best.onnx")
    return best
