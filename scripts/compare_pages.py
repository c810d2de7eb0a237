"""Pages of `compare_archs.py`: docs/results.json whole, and the marked blocks of
docs/results.md and the README (the text outside `<!-- compare_archs:begin -->` ...
`<!-- compare_archs:end -->` is kept as it is). Numbers come from `compare_report.py`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import compare_report as report
import marked

from edgeliquid.episodes import atomic_write

BEGIN, END = "<!-- compare_archs:begin -->", "<!-- compare_archs:end -->"
TITLE = "# Results: the wired CfC against equal-size dense CfC, LSTM, GRU and CNN policies"
PAIRED = "pairs every episode with the same scene flown by the other arch"


# -- marked blocks ---------------------------------------------------------------------


def replace_block(text: str, block: str, where: str = "the page") -> str:
    """`text` with everything between the compare_archs markers replaced by `block`."""
    return marked.replace_block(text, block, BEGIN, END, where)


def check_pages(results_md: Path, readme: Path) -> None:
    """Refuse before any training if a page's block could not be written."""
    pages = [readme] + ([results_md] if results_md.exists() else [])
    for page in pages:
        try:
            replace_block(page.read_text(), "", str(page))
        except (OSError, ValueError) as e:
            raise SystemExit(f"compare_archs: {e}") from None


def write_pages(docs: Path, readme: Path, setup: dict[str, Any], table: dict[str, Any]) -> None:
    docs.mkdir(parents=True, exist_ok=True)
    payload = json.dumps({"setup": setup, **table}, indent=1) + "\n"
    atomic_write(docs / "results.json", payload.encode())
    page = docs / "results.md"
    text = page.read_text() if page.exists() else f"{TITLE}\n\n{BEGIN}\n{END}\n"
    atomic_write(page, replace_block(text, results_block(setup, table), str(page)).encode())
    new_readme = replace_block(readme.read_text(), readme_block(setup, table), str(readme))
    atomic_write(readme, new_readme.encode())


# -- cells -----------------------------------------------------------------------------


def _rate(cell: dict[str, Any]) -> str:
    low, high = cell["ci95"]
    return f"{cell['rate']:.2f} [{low:.2f}, {high:.2f}]"


def _diff(cell: dict[str, Any]) -> str:
    low, high = cell["ci95"]
    text = f"{cell['diff']:+.2f} [{low:+.2f}, {high:+.2f}]"
    return f"**{text}**" if low > 0 or high < 0 else text


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _header(names: list[str], numeric: int) -> list[str]:
    return [_row(names), "|" + "---|" * (len(names) - numeric) + "---:|" * numeric]


# -- tables ----------------------------------------------------------------------------


def success_table(table: dict[str, Any]) -> list[str]:
    shifts, mean = table["shifts"], "mean of shifts" if len(table["shifts"]) > 1 else None
    lines = _header(
        ["arch", "params", *shifts, *([mean] if mean else [])], len(shifts) + 1 + bool(mean)
    )
    for arch, row in table["archs"].items():
        cells = [_rate(row["success"][sh]) for sh in shifts]
        if mean:
            cells.append(f"**{_rate(row['mean_over_shifts'])}**")
        lines.append(_row([arch, f"{row['param_count']:,}", *cells]))
    return lines


def paired_table(table: dict[str, Any]) -> list[str]:
    if not table["paired"]:
        return [f"{report.REFERENCE} was not part of this sweep: no paired differences."]
    columns = list(next(iter(table["paired"].values())))
    lines = _header([f"{report.REFERENCE} − arch", *columns], len(columns))
    for arch, row in table["paired"].items():
        lines.append(_row([arch, *(_diff(row[c]) for c in columns)]))
    return lines


def verdicts(table: dict[str, Any]) -> list[str]:
    """Plain sentences: per baseline, the shifts where CfC is clearly behind or ahead."""
    lines = []
    for arch, row in table["paired"].items():
        cells = {c: v for c, v in row.items() if c != "mean of shifts"}
        behind = [c for c, v in cells.items() if v["ci95"][1] < 0]
        ahead = [c for c, v in cells.items() if v["ci95"][0] > 0]
        lower = [c for c, v in cells.items() if v["diff"] < 0 and c not in behind]
        parts = [f"- against {arch}: CfC is clearly behind on {_names(behind)}"]
        parts.append(f"clearly ahead on {_names(ahead)}")
        parts.append(f"lower but within the interval of zero on {_names(lower)}")
        lines.append("; ".join(parts) + ".")
    return lines or [f"- {report.REFERENCE} was not part of this sweep."]


def _names(shifts: list[str]) -> str:
    return ", ".join(f"`{s}`" for s in shifts) if shifts else "no shift"


def seed_table(table: dict[str, Any]) -> list[str]:
    """One row per training run: a run that did not learn shows here, not only as spread."""
    lines = _header(["arch", "training seed", "lr", "best val loss", "none", "mean of shifts"], 5)
    for arch, row in table["archs"].items():
        none = row["success"].get("none", {}).get("per_seed")
        means = (row["mean_over_shifts"] or {}).get("per_seed")
        for seed, loss in enumerate(row["best_val_loss"]):
            cells = [f"{none[seed]:.2f}" if none else "–", f"{means[seed]:.2f}" if means else "–"]
            lines.append(_row([arch, str(seed), f"{row['lr']:g}", f"{loss:.4f}", *cells]))
    return lines


def training_table(table: dict[str, Any]) -> list[str]:
    names = ["arch", "core", "params", "MFLOP/step", "lr", "best val loss (mean, min–max)"]
    lines = _header([*names, "train time per run"], 5)
    for arch, row in table["archs"].items():
        loss = row["best_val_loss"]
        lines.append(
            _row(
                [
                    arch,
                    row["core"],
                    f"{row['param_count']:,}",
                    f"{row['flops_per_step'] / 1e6:.2f}",
                    f"{row['lr']:g}",
                    f"{sum(loss) / len(loss):.4f} ({min(loss):.4f}–{max(loss):.4f})",
                    f"{sum(row['train_seconds']) / len(loss) / 60:.1f} min",
                ]
            )
        )
    return lines


def lr_table(setup: dict[str, Any]) -> list[str]:
    grid = setup["lr_grid"]
    if not grid:
        lr = ", ".join(sorted({f"{v:g}" for v in setup["lr"].values()}))
        return [f"No `--lr-grid`: every arch trained at lr {lr}."]
    candidates = [f"{v:g}" for v in grid["candidates"]]
    lines = [
        f"One run per lr at training seed {grid['seed']} (not a compared seed); the lr with the "
        "lowest best validation loss (bold) is the arch's lr. The test shifts play no part.",
        "",
        *_header(["arch", *(f"lr {c}" for c in candidates)], len(candidates)),
    ]
    for arch, losses in grid["best_val_loss"].items():
        chosen = f"{setup['lr'][arch]:g}"
        cells = [f"**{losses[c]:.4f}**" if c == chosen else f"{losses[c]:.4f}" for c in candidates]
        lines.append(_row([arch, *cells]))
    return lines


# -- blocks ----------------------------------------------------------------------------


def _facts(setup: dict[str, Any], table: dict[str, Any]) -> list[str]:
    data, seeds = setup["data"], setup["training_seeds"]
    episodes = setup["eval"]["episodes_per_shift"]
    columns = ", ".join(table["shifts"])
    if setup["eval"].get("tasks", ["reach"]) != ["reach"]:
        columns += " (a shift alone is reach; `TASK` and `TASK:SHIFT` are the other tasks)"
    return [
        f"- Data: {data['episodes']} expert episodes ({data['frames']} frames) from "
        f"`{setup['collect']}`; no evaluation shift in the data.",
        f"- Training: the same recipe for every arch, {json.dumps(setup['train'])}, except the "
        f"learning rate (below); training seeds {seeds}; best checkpoint by validation loss.",
        f"- Evaluation: `evaluate` on {columns}, {episodes} episodes per shift "
        f"and run, eval seed {setup['eval']['seed']}: episode i is the same scene for every "
        "shift, run and arch (scenes disjoint from the training data).",
        f"- Success cells: pooled over {len(seeds)} seeds × {episodes} episodes = "
        f"{len(seeds) * episodes} flights, 95% Wilson score interval on the pooled count (it "
        "treats the flights as independent, so the spread between training seeds is not in it; "
        "see the per-run table).",
        f"- `mean of shifts` (every reach shift but `none`) and the differences: 95% percentile "
        f"bootstrap, {setup['bootstrap']['resamples']} resamples of the scenes (shared by both "
        "archs of a pair) and of each arch's training seeds; the difference " + PAIRED + ".",
        f"- Machine: {setup['machine']}; {setup['engine']}.",
    ]


def results_block(setup: dict[str, Any], table: dict[str, Any]) -> str:
    seeds, episodes = len(setup["training_seeds"]), setup["eval"]["episodes_per_shift"]
    lines = [
        f"Generated by `scripts/compare_archs.py` on {setup['date']}. Regenerate with:",
        "",
        "```bash",
        setup["command"],
        "```",
        "",
        "The same command with `--report-only` rewrites this page from the stored runs in "
        "docs/compare/ alone (each run's metrics and per-episode outcomes), without training.",
        "",
        *_facts(setup, table),
        "",
        f"## Closed-loop success rate ({seeds} seeds × {episodes} episodes, 95% Wilson interval)",
        "",
        *success_table(table),
        "",
        f"## {report.REFERENCE} minus each arch, paired over the same scenes (95% interval)",
        "",
        "Bold: the interval excludes zero.",
        "",
        *paired_table(table),
        "",
        "## What the differences say",
        "",
        *verdicts(table),
        "",
        "## Per training run",
        "",
        *seed_table(table),
        "",
        "## Training",
        "",
        *training_table(table),
        "",
        "## Learning rate per arch",
        "",
        *lr_table(setup),
    ]
    return "\n".join(lines)


def _lr_phrase(setup: dict[str, Any]) -> str:
    if setup["lr_grid"]:
        return "each arch's learning rate chosen on validation loss"
    return "the same learning rate for every arch (no `--lr-grid`)"


def readme_block(setup: dict[str, Any], table: dict[str, Any]) -> str:
    seeds, episodes = len(setup["training_seeds"]), setup["eval"]["episodes_per_shift"]
    archs = ", ".join(a for a in table["archs"] if a != report.REFERENCE)
    columns = [
        "arch",
        "params",
        "none",
        "mean of shifts",
        f"{report.REFERENCE} − arch (mean of shifts)",
    ]
    lines = [
        f"[docs/results.md](docs/results.md) compares the wired CfC with {archs} of the same size "
        f"({seeds} training seeds each, {episodes} episodes per shift, same data and recipe, "
        f"{_lr_phrase(setup)}; `scripts/compare_archs.py`, "
        f"{setup['date']}). Success pooled over the seeds, 95% intervals:",
        "",
        *_header(columns, 4),
    ]
    for arch, row in table["archs"].items():
        paired = table["paired"].get(arch, {}).get("mean of shifts")
        mean = row["mean_over_shifts"]
        cells = [
            _rate(row["success"]["none"]) if "none" in row["success"] else "–",
            _rate(mean) if mean else "–",
            _diff(paired) if paired else "–",
        ]
        lines.append(_row([arch, f"{row['param_count']:,}", *cells]))
    return "\n".join([*lines, "", *verdicts(table)])
