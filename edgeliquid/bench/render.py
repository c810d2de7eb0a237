"""How a bench run looks: the markdown table (machine, model, rows, floor, targets) and the
latency CDF plot, both from the JSON-ready dict `report.run_bench` returns."""

from __future__ import annotations

from pathlib import Path

import numpy as np

TABLE_HEAD = (
    "| row | p50 µs | p90 µs | p99 µs | steps/s | vs torch | vs floor | file KB | RSS MiB |\n"
    "|---|--:|--:|--:|--:|--:|--:|--:|--:|"
)


def _cell(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def _table_row(row: dict) -> str:
    if row["status"] != "ok":
        return f"| {row['name']} | {row['status']}: {row['reason']} |" + " |" * 7
    size = None if row.get("file_bytes") is None else row["file_bytes"] / 1024
    cells = [f"{row[k]:.1f}" for k in ("p50_us", "p90_us", "p99_us")]
    cells += [f"{row['steps_per_s']:,.0f}", _cell(row["speedup_vs_torch"], ".1f") + "x"]
    cells += [_cell(row["floor_ratio"], ".1f") + "x", _cell(size, ".1f")]
    return f"| {row['name']} | " + " | ".join([*cells, f"{row['peak_rss_mib']:.0f}"]) + " |"


def _header(result: dict) -> str:
    machine, model, s = result["machine"], result["model"], result["settings"]
    load = f"load {machine['load_avg_start'][0]:g} → {machine['load_avg_end'][0]:g}"
    return (
        f"{machine['cpu']}, {machine['cores']} cores ({load}), {result['created'][:10]}; "
        f"model: {model['source']}, {model['parameters']:,} params; {s['iterations']} steps "
        f"per row after {s['warmup']} warm-up, one thread per row; unrolled T="
        f"{s['unrolled_steps']}; {s['replay']}."
    )


def _floor_row(floor: dict) -> str:
    if not floor["flops_per_step"]:
        return "| compute floor | not measured: FLOPs need the checkpoint |" + " |" * 7
    return (
        f"| compute floor: {floor['flops_per_step'] / 1e6:.2f} MFLOP ÷ {floor['sgemm_gflops']:.1f}"
        f" GFLOP/s (1-thread sgemm) | {floor['floor_us']:.1f} |" + " |" * 4 + " 1.0x | | |"
    )


def markdown(result: dict) -> str:
    """The run as a markdown table with its machine, model, floor and targets."""
    verdict = {True: "met", False: "missed", None: "not measured"}
    targets = [
        f"{name} {_cell(t['value'], '.2f')}x (target {t['target']}: {verdict[t['met']]})"
        for name, t in result["targets"].items()
    ]
    between = result["targets"].get("daemon_vs_bare_onnx_step", {}).get("between_rows")
    if between is not None:  # the daemon's ratio is paired; the rows' own p50s give this one
        targets.append(f"daemon p50 / onnx_step row p50 {between:.2f}x (rows run apart)")
    return "\n".join(
        [
            _header(result),
            "",
            TABLE_HEAD,
            *(_table_row(row) for row in result["rows"]),
            _floor_row(result["floor"]),
            "",
            "Targets: " + "; ".join(targets) + ".",
        ]
    )


def plot_cdf(result: dict, path: Path) -> bool:
    """Latency CDF of every measured row (log µs) with the floor; False without matplotlib."""
    from edgeliquid.episodes import atomic_write

    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(9, 5.5))
    quantiles = np.arange(101) / 100
    for row in (r for r in result["rows"] if r["status"] == "ok"):
        ax.plot(row["cdf_us"], quantiles, label=row["name"].replace("`", ""))
    if result["floor"]["floor_us"]:
        ax.axvline(result["floor"]["floor_us"], color="k", ls="--", label="compute floor")
    ax.set(xscale="log", xlabel="µs per control step", ylabel="fraction of steps")
    ax.set_title(f"edgeliquid bench: {result['machine']['cpu']}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=120))
    plt.close(fig)
    return True
