"""Policies trained on a mix of the simulator's tasks, flown on every task (issue 13).

    .venv/bin/python scripts/train_tasks.py [--data data/tasks] [--runs runs/tasks]
        [--episodes 40] [--archs cfc lstm] [--epochs 10] [--eval-episodes 100]
        [--eval-seed 12345] [--results docs/results.md] [--json docs/tasks/policies.json]
        [--column "shipped (reach only)=docs/tasks/shipped_eval.json"]

1. `edgeliquid collect --task T` for every task into DATA/T: the expert's flights, collect
   seed 1, the shipped recipe's timing jitter, action noise and 2 s of recorded hover;
2. `edgeliquid train DATA/reach DATA/range ... --arch A` per architecture (the same data,
   epochs and seed for each; every folder split into train/validation on its own). No wall-time
   cap: on a shared machine a cap gives whichever arch ran beside less load more epochs (a
   first run under a 15-minute cap gave the CfC 9 epochs and the LSTM about 13);
3. `edgeliquid eval RUN/best.pt --task all`, 100 episodes per task on the eval seed (scenes
   disjoint from the data's);
4. the table (task x arch, success with its 95% Wilson interval) into --json and between the
   `<!-- train_tasks:begin -->` / `<!-- train_tasks:end -->` markers of --results.

Every step whose output exists is skipped (collect resumes itself), so a killed run continues.
Each step is the public CLI, echoed, so the recipe is what a user would type.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

import marked

from edgeliquid.episodes import atomic_write
from edgeliquid.sim.tasks import TASKS

EDGELIQUID = str(Path(sys.executable).with_name("edgeliquid"))
BEGIN, END = "<!-- train_tasks:begin -->", "<!-- train_tasks:end -->"


def run(command: list[str], log: Path | None = None) -> None:
    """Echo and run one CLI command (its output to `log` if given); stop if it fails."""
    print("$ " + shlex.join(command), flush=True)
    if log is None:
        subprocess.run(command, check=True)
        return
    with log.open("w") as out:
        subprocess.run(command, check=True, stdout=out, stderr=subprocess.STDOUT)


def collect(a: argparse.Namespace, task: str) -> Path:
    out = a.data / task
    command = [EDGELIQUID, "collect", "--out", str(out), "--episodes", str(a.episodes)]
    command += ["--seed", "1", "--task", task, "--dt-jitter", "0.3", "--action-noise", "0.2"]
    run([*command, "--hover", "2.0", "--workers", str(a.workers)])
    return out


def train(a: argparse.Namespace, arch: str, folders: list[Path]) -> Path:
    out = a.runs / arch
    if not (out / "metrics.json").is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        command = [EDGELIQUID, "train", *map(str, folders), "--out", str(out), "--arch", arch]
        command += ["--epochs", str(a.epochs), "--seed", "0"]  # no wall cap: see the docstring
        run([*command, "--overwrite"], log=a.runs / f"{arch}.train.log")
    return out


def evaluate(a: argparse.Namespace, run_dir: Path) -> dict:
    report = run_dir / "eval_tasks.json"
    if not report.is_file():
        command = [EDGELIQUID, "eval", str(run_dir / "best.pt"), "--task", "all"]
        command += ["--episodes", str(a.eval_episodes), "--seed", str(a.eval_seed)]
        run([*command, "--json", str(report), "--workers", str(a.workers)])
    return json.loads(report.read_text())


def table(reports: dict[str, dict]) -> str:
    """Markdown: one row per task, one column per architecture."""
    archs = list(reports)
    lines = ["| task | " + " | ".join(archs) + " |", "|---" + "|--:" * len(archs) + "|"]
    cells = {
        arch: {row["task"]: row for row in report["results"] if row["shift"] == "none"}
        for arch, report in reports.items()
    }
    for task in TASKS:
        row = [f"| `{task}` "]
        for arch in archs:
            r = cells[arch].get(task)
            low, high = r["success_ci95"] if r else (0.0, 0.0)
            row.append(f"| {r['success_rate']:.2f} [{low:.2f}, {high:.2f}] " if r else "| – ")
        lines.append("".join(row) + "|")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=Path("data/tasks"))
    p.add_argument("--runs", type=Path, default=Path("runs/tasks"))
    p.add_argument("--episodes", type=int, default=40, help="collected per task")
    p.add_argument("--archs", nargs="+", default=["cfc", "lstm"])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--eval-episodes", type=int, default=100)
    p.add_argument("--eval-seed", type=int, default=12345)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument(
        "--column",
        action="append",
        default=[],
        metavar="LABEL=EVAL_JSON",
        help="one more column from an `eval --task all --json` report, e.g. the shipped policy",
    )
    p.add_argument("--json", type=Path, help="write the summary here")
    p.add_argument("--results", type=Path, help="update the table in this Markdown page")
    a = p.parse_args()
    folders = [collect(a, task) for task in TASKS]
    reports = {arch: evaluate(a, train(a, arch, folders)) for arch in a.archs}
    for column in a.column:
        label, _, path = column.partition("=")
        if not path:
            p.error(f"--column needs LABEL=EVAL_JSON, got {column!r}")
        reports[label] = json.loads(Path(path).read_text())
    text = table(reports)
    print(text)
    if a.json:
        summary = {"episodes_per_task": a.episodes, "epochs": a.epochs, "eval_seed": a.eval_seed}
        summary["reports"] = reports
        atomic_write(a.json, (json.dumps(summary, indent=2) + "\n").encode())
    if a.results:
        marked.write_block(a.results, text, BEGIN, END)


if __name__ == "__main__":
    main()
