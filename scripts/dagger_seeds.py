"""Five training seeds of the DAgger recipe (scripts/train_shipped.py): do they all train?

    .venv/bin/python scripts/dagger_seeds.py data/glare3 RUN... --json docs/dagger_seeds.json \
        --results docs/results.md

Each RUN is a `scripts/train_shipped.py --stop-after train` run folder (RUN/base, RUN/dagger,
RUN/best.pt). A fine-tune's own validation set holds its seed's DAgger flights, which differ
from seed to seed, so its best validation loss compares with no other seed's. Here every
checkpoint, base and fine-tuned, is scored on one common set instead: DATA's validation
windows (`--val-seed 0`: the same 30 episodes every stage of every seed held out). With the
closed-loop `none` success on eval seed 12345 (100 episodes; RUN/eval_none.json, flown here
if missing) that is issue 12's done-when 1 for the recipe: loss within 1.5x of the best seed,
`none` >= 0.95. Also in the table: each stage's wall time and the base's success on its
DAgger flights; and, where RUN/eval_777.json exists, the selection seed's worst shift.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import cfc_stall
import marked
import torch
from cfc_stall import RATIO_LIMIT, SUCCESS_LIMIT, probe

from edgeliquid.episodes import atomic_write, load_dataset

BEGIN, END = "<!-- dagger_seeds.py table -->", "<!-- /dagger_seeds.py table -->"
EDGELIQUID = str(Path(sys.executable).with_name("edgeliquid"))


def common_loss(checkpoint: Path, episodes: list) -> float:
    """The masked MSE (mean over the 4 normalised commands) on DATA's validation windows."""
    per_command = probe(checkpoint, episodes, frames_for_head=64)["val_mse_per_command"]
    return sum(per_command) / len(per_command)


def flown_none(run: Path, episodes: int, seed: int) -> dict[str, Any]:
    """RUN/eval_none.json's `none` row; flown first (2 workers) if it is not there."""
    out = run / "eval_none.json"
    if not out.is_file():
        command = [EDGELIQUID, "eval", str(run / "best.pt"), "--episodes", str(episodes)]
        command += ["--seed", str(seed), "--shift", "none", "--json", str(out), "--workers", "2"]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return cfc_stall.flown_none(run)


def row(run: Path, episodes: list, eval_episodes: int, eval_seed: int) -> dict[str, Any]:
    base = json.loads((run / "base" / "metrics.json").read_text())
    tuned = json.loads((run / "metrics.json").read_text())
    flights = json.loads((run / "dagger" / "manifest.json").read_text())["episodes"]
    collect_s = json.loads((run / "dagger_collect.json").read_text())["seconds"]
    none = flown_none(run, eval_episodes, eval_seed)
    seconds = [base["wall_seconds"], collect_s, tuned["wall_seconds"]]
    out = {
        "run": str(run),
        "seed": tuned["train_config"]["seed"],
        "base_loss": round(common_loss(run / "base" / "best.pt", episodes), 4),
        "loss": round(common_loss(run / "best.pt", episodes), 4),
        "base_flight_success": sum(e["outcome"] == "success" for e in flights) / len(flights),
        "stage_seconds": [round(s, 1) for s in seconds],
        "minutes": round(sum(seconds) / 60, 2),
        "none_success": none["success_rate"],
        "none_ci95": none["success_ci95"],
    }
    if (run / "eval_777.json").is_file():
        rows = json.loads((run / "eval_777.json").read_text())["results"]
        shifted = [r for r in rows if r["shift"] != "none"]
        worst = min(shifted, key=lambda r: r["success_rate"])
        out["selection_777"] = {
            "worst": worst["success_rate"],
            "worst_shift": worst["shift"],
            "mean": round(sum(r["success_rate"] for r in shifted) / len(shifted), 3),
        }
    return out


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| seed | common val loss: base → DAgger | x best | `none` success [95% CI] "
        "| base's flights | minutes (base + flights + fine-tune) | 777: worst shift, mean |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        low, high = r["none_ci95"]
        sel = r.get("selection_777")
        s777 = f"{sel['worst']:.2f} ({sel['worst_shift']}), {sel['mean']:.3f}" if sel else "–"
        parts = " + ".join(f"{s / 60:.1f}" for s in r["stage_seconds"])
        lines.append(
            f"| {r['seed']} | {r['base_loss']:.3f} → {r['loss']:.3f} | {r['ratio_to_best']:.2f} "
            f"| {r['none_success']:.2f} [{low:.2f}, {high:.2f}] "
            f"| {r['base_flight_success']:.2f} | {r['minutes']:.1f} ({parts}) | {s777} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data", type=Path, help="the expert data folder (its validation windows)")
    p.add_argument("runs", type=Path, nargs="+", help="train_shipped.py run folders")
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--eval-seed", type=int, default=12345)
    p.add_argument("--json", type=Path)
    p.add_argument("--results", type=Path, help="update the table in this Markdown page")
    a = p.parse_args(argv)
    missing = [str(r) for r in a.runs if not (r / "dagger_collect.json").is_file()]
    if missing:
        raise SystemExit(f"not finished train_shipped.py runs: {', '.join(missing)}")
    torch.set_num_threads(1)
    episodes = load_dataset(a.data)
    rows = sorted(
        (row(r, episodes, a.episodes, a.eval_seed) for r in a.runs), key=lambda r: r["seed"]
    )
    best = min(r["loss"] for r in rows)
    for r in rows:
        r["ratio_to_best"] = round(r["loss"] / best, 3)
    met = all(
        r["ratio_to_best"] <= RATIO_LIMIT and r["none_success"] >= SUCCESS_LIMIT for r in rows
    )
    summary = {"data": str(a.data), "eval_seed": a.eval_seed, "all_pass": met, "rows": rows}
    print(table(rows))
    print(f"{'all pass' if met else 'NOT all pass'} (issue 12, done-when 1)")
    if a.json:
        atomic_write(a.json, (json.dumps(summary, indent=2) + "\n").encode())
    if a.results:
        marked.write_block(a.results, table(rows), BEGIN, END)


if __name__ == "__main__":
    main(sys.argv[1:])
