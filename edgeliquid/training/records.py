"""What a training run writes besides its checkpoints: metrics.json, curves.png, the epoch
line, the machine it ran on, plain copies of its configs, and closed-loop `none` success."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import torch

from edgeliquid.episodes import atomic_write
from edgeliquid.host import cpu_name
from edgeliquid.training.config import TrainConfig


def plain(config: Any) -> dict[str, Any]:
    """A config dataclass as JSON/`weights_only`-safe primitives."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def plot_curves(history: list[dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot(epochs, [h["train_loss"] for h in history], marker="o", label="train (augmented)")
    ax.plot(epochs, [h["val_loss"] for h in history], marker="o", label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE on normalised commands")
    ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png"))
    plt.close(fig)


def write_metrics(run_dir: Path, metrics: dict[str, Any]) -> None:
    atomic_write(run_dir / "metrics.json", (json.dumps(metrics, indent=2) + "\n").encode())


def closed_loop_none(
    checkpoint: Path, episodes: int, seed: int, workers: int = 1
) -> dict[str, Any]:
    """Success of a checkpoint on the in-distribution (`none`) shift, via `edgeliquid.evaluate`."""
    from edgeliquid.evaluate import evaluate

    report = evaluate(
        str(checkpoint), episodes=episodes, seed=seed, shifts=["none"], workers=workers
    )
    return report["results"][0]


def epoch_line(entry: dict[str, float]) -> str:
    return (
        f"epoch {entry['epoch']:3d}  train {entry['train_loss']:.4f}  val {entry['val_loss']:.4f}"
        f"  lr {entry['lr']:.2e}  {entry['seconds']:.0f}s"
    )


def machine(config: TrainConfig) -> str:
    """Where the wall times were measured: CPU model, cores, torch threads (and GPU)."""
    cpu = cpu_name()
    threads = config.num_threads
    where = f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {threads} torch thread(s)"
    if config.device == "cuda":
        where += f", trained on {torch.cuda.get_device_name()}"
    return where
