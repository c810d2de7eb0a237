"""The exact commands that produce the shipped policy: models/nav_cfc.pt + models/nav_cfc.json.

    .venv/bin/python scripts/train_shipped.py            # collect, train, eval, model card

Each step is the public CLI, run as a subprocess and echoed, so the card's commands are the
ones a user would type:

1. `edgeliquid collect`: expert flights with timing variation (--dt-jitter), smooth action
   noise (recoveries) and 2 s of hover after arrival (so stopping is in the data), per-episode
   randomised light and palettes (--randomize; ranges exclude the eval shifts), a strong low
   sun ahead in half the episodes (--glare-ahead; still below the glare preset) and decoys
   (--decoys: boxes, off-colour spheres on poles, odd-coloured trees; never the
   distractors or autumn preset), no OOD shift; collect seed 1;
2. `edgeliquid train`: the CfC policy from scratch (BatchNorm head, per-frame input
   normalisation, strong per-window augmentation, 18 epochs under a 15-minute cap), training
   seed 3 (picked among 0-4 on the selection seed 777 by the rule in docs/robustness.md,
   round 6), wall time measured on this machine;
3. `edgeliquid eval --shift all`: 100 episodes per shift on eval seed 12345 and on a second,
   fresh seed 4242 (disjoint scenes; the recipe was chosen on seed 777, never reported);
4. copy best.pt to models/nav_cfc.pt, export and verify models/nav_cfc.onnx, fly it 100
   episodes on `none`, and write the model card models/nav_cfc.json.

Steps whose output exists are skipped (collect resumes itself), so a killed run continues;
`--retrain` starts training and evaluation over.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

EDGELIQUID = str(Path(sys.executable).with_name("edgeliquid"))


def run(command: list[str]) -> None:
    """Echo and run one CLI command; stop the pipeline if it fails."""
    print("$ " + shlex.join(command), flush=True)
    subprocess.run(command, check=True)


def commands(a: argparse.Namespace) -> dict[str, list[str]]:
    """The CLI commands of the recipe."""
    return {
        "collect": [
            EDGELIQUID,
            "collect",
            "--out",
            str(a.data),
            "--episodes",
            str(a.episodes),
            "--seed",
            str(a.data_seed),
            "--dt-jitter",
            str(a.dt_jitter),
            "--action-noise",
            str(a.action_noise),
            "--hover",
            str(a.hover),
            "--randomize" if a.randomize else "--no-randomize",
            "--glare-ahead" if a.glare_ahead else "--no-glare-ahead",
            "--decoys" if a.decoys else "--no-decoys",
            "--decoy-mix",
            a.decoy_mix,
            "--workers",
            "2",
        ],
        "train": [
            EDGELIQUID,
            "train",
            str(a.data),
            "--out",
            str(a.run),
            "--seed",
            str(a.train_seed),
            "--epochs",
            str(a.epochs),
            "--seq-len",
            str(a.seq_len),
            "--seq-shift",
            str(a.seq_shift),
            "--batch-size",
            str(a.batch_size),
            "--input-norm",
            a.input_norm,
            "--augment-preset",
            a.augment_preset,
            "--val-seed",
            "0",
            "--max-minutes",
            "15",
        ],
        "eval": eval_command(a, a.eval_seed, a.run / "eval.json"),
        "eval_second": eval_command(a, a.second_seed, a.run / f"eval_{a.second_seed}.json"),
        "export": [
            EDGELIQUID,
            "export",
            str(a.out / "nav_cfc.pt"),
            "-o",
            str(a.out / "nav_cfc.onnx"),
        ],
        "eval_onnx": [
            EDGELIQUID,
            "eval",
            str(a.out / "nav_cfc.onnx"),
            "--episodes",
            str(a.eval_episodes),
            "--seed",
            str(a.eval_seed),
            "--shift",
            "none",
            "--json",
            str(a.run / "eval_onnx.json"),
            "--workers",
            "2",
        ],
    }


def eval_command(a: argparse.Namespace, seed: int, out: Path) -> list[str]:
    """100 episodes per shift, every shift, on the checkpoint, scenes from `seed`."""
    command = [EDGELIQUID, "eval", str(a.run / "best.pt"), "--episodes", str(a.eval_episodes)]
    command += ["--seed", str(seed), "--shift", "all", "--json", str(out)]
    return [*command, "--workers", "2"]


def eval_card(command: str, report: dict) -> dict[str, Any]:
    """One eval seed's table and issue 12's verdicts on it."""
    rows = report["results"]
    none = next(r["success_rate"] for r in rows if r["shift"] == "none")
    shifted = [r["success_rate"] for r in rows if r["shift"] != "none"]
    mean = sum(shifted) / len(shifted)
    return {
        "command": command,
        "seed": report["seed"],
        "episodes_per_shift": report["episodes"],
        "success_none": none,
        "mean_success_single_shifts": mean,
        "worst_single_shift": min(shifted),
        "targets": {"success_none": 0.97, "every_single_shift": 0.80, "mean": 0.90},
        "met": none >= 0.97 and min(shifted) >= 0.80 and mean >= 0.90,
        "results": rows,
    }


def model_card(a: argparse.Namespace, cmds: dict[str, list[str]]) -> dict[str, Any]:
    """The card: what the model is, what it saw, how long it took, how well it flies."""
    from edgeliquid.model import load_checkpoint

    metrics = json.loads((a.run / "metrics.json").read_text())
    model, _ = load_checkpoint(a.out / "nav_cfc.pt")
    pretty = {k: shlex.join([Path(v[0]).name, *v[1:]]) for k, v in cmds.items()}
    seeds = ((a.run / "eval.json", "eval"), (a.run / f"eval_{a.second_seed}.json", "eval_second"))
    evals = [eval_card(pretty[key], json.loads(path.read_text())) for path, key in seeds]
    return {
        "name": "nav_cfc",
        "checkpoint": "models/nav_cfc.pt",
        "sha256": hashlib.sha256((a.out / "nav_cfc.pt").read_bytes()).hexdigest(),
        "arch": metrics["arch"],
        "param_count": metrics["param_count"],
        "flops_per_step": metrics["flops_per_step"],
        "state_size": int(model.state_size),
        "model_config": metrics["model_config"],
        "data": {**metrics["data"], "command": pretty["collect"]},
        "training": {
            "command": pretty["train"],
            "config": metrics["train_config"],
            "epochs_run": len(metrics["history"]),
            "best_epoch": metrics["best_epoch"],
            "best_val_loss": metrics["best_val_loss"],
            "wall_seconds": round(metrics["wall_seconds"], 1),
            "machine": metrics["machine"],
            "history": metrics["history"],
        },
        "eval": evals[0],
        "eval_second_seed": evals[1],
        "onnx": onnx_card(a, cmds, pretty, evals[0]["success_none"]),
        "reproduce": ".venv/bin/python scripts/train_shipped.py",
        "date": time.strftime("%Y-%m-%d"),
    }


def onnx_card(a: argparse.Namespace, cmds: dict, pretty: dict, none_pt: float) -> dict[str, Any]:
    """The exported step graph: file, hash, and its closed-loop success next to the .pt's."""
    onnx_path = a.out / "nav_cfc.onnx"
    report = json.loads((a.run / "eval_onnx.json").read_text())
    none = report["results"][0]["success_rate"]
    return {
        "file": "models/nav_cfc.onnx",
        "bytes": onnx_path.stat().st_size,
        "sha256": hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
        "export_command": pretty["export"],
        "eval_command": pretty["eval_onnx"],
        "success_none": none,
        "success_none_checkpoint": none_pt,
        "within_2_points": abs(none - none_pt) <= 0.02,
    }


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=Path("data/glare3"))
    p.add_argument("--run", type=Path, default=Path("runs/shipped"))
    p.add_argument("--out", type=Path, default=Path("models"))
    p.add_argument("--episodes", type=int, default=300)
    p.add_argument("--data-seed", type=int, default=1)
    p.add_argument("--dt-jitter", type=float, default=0.3)
    p.add_argument("--action-noise", type=float, default=0.2)
    p.add_argument("--hover", type=float, default=2.0, help="s recorded after arrival")
    p.add_argument(
        "--randomize",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="collect with per-episode randomised light and palettes",
    )
    p.add_argument(
        "--glare-ahead",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with --randomize: a strong low sun ahead in half the episodes",
    )
    p.add_argument(
        "--decoys",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="collect with look-alikes of the target (sim.decoys; never an eval preset)",
    )
    p.add_argument(
        "--decoy-mix", default="v2", help="collect --decoy-mix: v2, dense, dense-dirt, domes"
    )
    p.add_argument(
        "--train-seed", type=int, default=3, help="chosen among 0-4 on seed 777 (robustness.md)"
    )
    p.add_argument("--epochs", type=int, default=18)
    p.add_argument("--seq-len", type=int, default=32, help="train --seq-len (steps a window)")
    p.add_argument("--seq-shift", type=int, default=16, help="train --seq-shift")
    p.add_argument("--batch-size", type=int, default=32, help="train --batch-size (windows)")
    p.add_argument("--input-norm", default="frame", help="fixed | frame (train --input-norm)")
    p.add_argument("--augment-preset", default="strong", help="train --augment-preset")
    p.add_argument("--eval-episodes", type=int, default=100)
    p.add_argument("--eval-seed", type=int, default=12345)
    p.add_argument(
        "--second-seed", type=int, default=4242, help="a second, fresh set of eval scenes"
    )
    p.add_argument("--retrain", action="store_true", help="train and evaluate again")
    return p.parse_args(argv)


def main(argv: list[str]) -> None:
    a = parse(argv)
    cmds = commands(a)
    if a.retrain and a.run.exists():
        shutil.rmtree(a.run)
    run(cmds["collect"])
    if not (a.run / "metrics.json").is_file():
        run(cmds["train"])
    if not (a.run / "eval.json").is_file():
        run(cmds["eval"])
    if not (a.run / f"eval_{a.second_seed}.json").is_file():
        run(cmds["eval_second"])
    a.out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(a.run / "best.pt", a.out / "nav_cfc.pt")
    run(cmds["export"])  # verified against torch; exits non-zero (and deletes) on a mismatch
    run(cmds["eval_onnx"])
    card = model_card(a, cmds)
    (a.out / "nav_cfc.json").write_text(json.dumps(card, indent=1) + "\n")
    ev = card["eval"]
    print(
        f"wrote {a.out / 'nav_cfc.pt'} and {a.out / 'nav_cfc.json'}: success none "
        f"{ev['success_none']:.2f}, mean over shifts {ev['mean_success_single_shifts']:.2f}, "
        f"worst shift {ev['worst_single_shift']:.2f} (seed {ev['seed']}), "
        f"training {card['training']['wall_seconds'] / 60:.1f} min"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
