"""Behaviour cloning of the expert: windows, truncated BPTT, checkpoints, curves, metrics.

`train(data_dir, run_dir, TrainConfig(...))` fits any policy from `edgeliquid.model` (CfC or a
baseline) to the expert's clean commands recorded by `edgeliquid collect`:

- windows of `seq_len` steps every `seq_shift` steps; zero state at a window's first step,
  state carried through it (truncated backpropagation through time); the recorded per-step dt
  goes to the model, so it learns from the irregular timing it will fly with;
- MSE on normalised commands, the normalisation (mean/std of the training labels) stored in
  the model's `command_mean`/`command_std` buffers, so the checkpoint outputs physical units;
- per-sequence photometric augmentation (`training.augment`), validation split by episode,
  cosine learning-rate decay, gradient clipping, an optional wall-clock budget;
- RUN_DIR gets best.pt (lowest validation loss), last.pt, metrics.json and curves.png.

Reproducible for a seed at a fixed thread count: the seed sets the weights, the window order
and the augmentation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from edgeliquid.errors import EdgeLiquidError
from edgeliquid.host import keep_freed_memory
from edgeliquid.model.policy import PolicyBase
from edgeliquid.training.augment import Augmenter
from edgeliquid.training.config import TrainConfig
from edgeliquid.training.data import data_dirs, load_episodes
from edgeliquid.training.records import (
    closed_loop_none,
    epoch_line,
    machine,
    plain,
    plot_curves,
    write_metrics,
)
from edgeliquid.training.windows import (
    Tensors,
    WindowSet,
    command_statistics,
    prefetched,
    split_windows,
    to_tensors,
)

Log = Callable[[str], None]


@dataclass(frozen=True)
class TrainResult:
    """Where a run's files went, and its metrics (also in metrics.json)."""

    run_dir: Path
    best_path: Path
    last_path: Path
    metrics: dict[str, Any]


@dataclass
class _Run:
    """Everything the epoch loop mutates, in one place."""

    model: PolicyBase
    optimizer: torch.optim.Optimizer
    config: TrainConfig
    train_set: WindowSet
    val_set: WindowSet
    augmenter: Augmenter | None
    rng: np.random.Generator
    total_steps: int
    deadline: float | None
    step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


def masked_loss(model: PolicyBase, tensors: Tensors) -> torch.Tensor:
    """MSE between normalised predictions and normalised labels over the unpadded steps."""
    frames, commands, dt, mask = tensors
    predicted, _ = model(frames, None, dt)
    error = model.normalize_commands(predicted) - model.normalize_commands(commands)
    weights = mask.to(error.dtype).unsqueeze(-1)
    return (error.square() * weights).sum() / (weights.sum() * error.shape[-1]).clamp_min(1.0)


def optimizer_step(
    model: PolicyBase, optimizer: torch.optim.Optimizer, tensors: Tensors, grad_clip: float
) -> torch.Tensor:
    """One step on one batch: masked loss, backward, gradient clipping, update; the loss."""
    loss = masked_loss(model, tensors)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss


def _set_lr(run: _Run) -> float:
    """Linear warm-up, then cosine decay from lr to lr * lr_final over the planned steps."""
    cfg = run.config
    cosine = 0.5 * (1 + math.cos(math.pi * min(run.step / max(run.total_steps, 1), 1.0)))
    warmup = min(1.0, (run.step + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0
    lr = cfg.lr * (cfg.lr_final + (1 - cfg.lr_final) * cosine) * warmup
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    return lr


def _train_epoch(run: _Run) -> tuple[float, bool]:
    """One pass over shuffled training windows; returns (mean loss, stopped by the deadline)."""
    run.model.train()
    losses = []
    batches = run.train_set.batches(run.config.batch_size, run.rng)
    for tensors in prefetched(batches, run.config.device, run.augmenter):
        _set_lr(run)
        loss = optimizer_step(run.model, run.optimizer, tensors, run.config.grad_clip)
        run.step += 1
        losses.append(loss.item())
        if run.deadline is not None and time.monotonic() > run.deadline:
            return float(np.mean(losses)), True
    return float(np.mean(losses)), False


@torch.no_grad()
def evaluate_loss(model: PolicyBase, windows: WindowSet, batch_size: int = 32) -> float:
    """Mean masked loss over `windows` without augmentation (NaN when there are none)."""
    if len(windows) == 0:
        return float("nan")
    model.eval()
    total, count = 0.0, 0
    for batch in windows.batches(batch_size):
        steps = int(batch.mask.sum())
        total += masked_loss(model, to_tensors(batch, model.command_mean.device)).item() * steps
        count += steps
    return total / count


def _init_model(config: TrainConfig, log: Log) -> PolicyBase:
    """The --init checkpoint; it keeps its label statistics, so outputs stay in scale."""
    from edgeliquid.model import load_checkpoint

    assert config.init is not None  # only called with --init
    model, _ = load_checkpoint(Path(config.init))
    for name in ("arch", "conv_norm", "input_norm"):
        asked, has = getattr(config, name), getattr(model.config, name)
        if asked is not None and has != asked:
            option = "--" + name.replace("_", "-")
            log(
                f"warning: --init checkpoint has {name} {has!r}; "
                f"using it and ignoring {option} {asked!r}"
            )
    return model


def _prepare_model(config: TrainConfig, height: int, width: int, log: Log) -> PolicyBase:
    """A fresh model sized to the episodes (seeded), or the --init one checked against them."""
    from edgeliquid.model import NavPolicyConfig, build_policy

    torch.manual_seed(config.seed)
    if config.init is None:
        try:
            model_config = NavPolicyConfig(
                arch=config.arch or "cfc",
                conv_norm=config.conv_norm or "batch",
                input_norm=config.input_norm or "fixed",
                input_height=height,
                input_width=width,
                **config.model,
            )
        except ValueError as e:  # e.g. a conv stack too deep for the episodes' frame size
            raise EdgeLiquidError(f"model for {height}x{width} episodes: {e}") from None
        return build_policy(model_config)
    model = _init_model(config, log)
    expected = (model.config.input_height, model.config.input_width)
    if expected != (height, width):
        raise EdgeLiquidError(
            f"episodes are {height}x{width} but {config.init} takes "
            f"{expected[0]}x{expected[1]}: collect at the model's input size"
        )
    return model


def _set_label_statistics(model: PolicyBase, train_set: WindowSet) -> None:
    used = np.unique(train_set.rows[:, 0]).tolist()
    mean, std = command_statistics([train_set.episodes[i] for i in used])
    model.command_mean.copy_(torch.from_numpy(mean))
    model.command_std.copy_(torch.from_numpy(std))


def _save(run: _Run, path: Path, data: dict[str, Any], epoch: int, val_loss: float) -> None:
    from edgeliquid.model import save_checkpoint

    save_checkpoint(
        path,
        run.model,
        train_config=plain(run.config),
        data=data,
        epoch=epoch,
        val_loss=val_loss,
    )


def _fit(run: _Run, run_dir: Path, data: dict[str, Any], log: Log) -> dict[str, Any]:
    """The epoch loop; saves best.pt on each validation improvement and last.pt at the end."""
    best = {"epoch": 0, "val_loss": math.inf}
    start = time.monotonic()
    stopped = False
    for epoch in range(1, run.config.epochs + 1):
        train_loss, stopped = _train_epoch(run)
        val_loss = evaluate_loss(run.model, run.val_set)
        score = train_loss if math.isnan(val_loss) else val_loss
        entry = {
            "epoch": epoch,
            "train_loss": train_loss,
            "val_loss": val_loss,
            "lr": _set_lr(run),
            "seconds": time.monotonic() - start,
        }
        run.history.append(entry)
        log(epoch_line(entry))
        if score < best["val_loss"]:
            best = {"epoch": epoch, "val_loss": score}
            _save(run, run_dir / "best.pt", data, epoch, score)
        if stopped:
            log(f"stopping: --max-minutes {run.config.max_minutes} reached in epoch {epoch}")
            break
    last = run.history[-1]
    _save(run, run_dir / "last.pt", data, int(last["epoch"]), last["val_loss"])
    return {
        "best_epoch": best["epoch"],
        "best_val_loss": best["val_loss"],
        "stopped_by_time": stopped,
        "optimizer_steps": run.step,
        "train_seconds": time.monotonic() - start,
    }


def _check_seq_len(config: TrainConfig, episodes: list) -> None:
    """A window longer than every episode is all padding: memory spent on nothing."""
    longest = max(len(ep.commands) for ep in episodes)
    if config.seq_len > longest:
        raise EdgeLiquidError(
            f"--seq-len {config.seq_len} is longer than the longest episode ({longest} steps): "
            f"use at most {longest}"
        )


def _build_run(config: TrainConfig, episodes: list, log: Log, folder_sizes: list[int]) -> _Run:
    _check_seq_len(config, episodes)
    height, width = episodes[0].frames.shape[1:3]
    model = _prepare_model(config, height, width, log)
    train_set, val_set = split_windows(
        episodes,
        config.seq_len,
        config.seq_shift,
        config.val_fraction,
        config.seed if config.val_seed is None else config.val_seed,
        float(model.config.nominal_dt),
        folder_sizes,
    )
    if config.init is None:
        _set_label_statistics(model, train_set)
    model.to(config.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    deadline = None if config.max_minutes is None else time.monotonic() + 60 * config.max_minutes
    return _Run(
        model=model,
        optimizer=optimizer,
        config=config,
        train_set=train_set,
        val_set=val_set,
        augmenter=None
        if config.augment is None
        else Augmenter(config.augment, config.seed, config.device),
        rng=np.random.default_rng(config.seed),
        total_steps=math.ceil(len(train_set) / config.batch_size) * config.epochs,
        deadline=deadline,
    )


def _describe(run: _Run, log: Log) -> dict[str, Any]:
    from edgeliquid.model import count_parameters, estimate_flops

    params = count_parameters(run.model)
    flops = int(estimate_flops(run.model))
    arch = run.model.config.arch
    log(
        f"arch {arch}: {params} parameters, {flops / 1e6:.2f} MFLOP/step, "
        f"{len(run.train_set)} training / {len(run.val_set)} validation windows"
    )
    return {
        "arch": arch,
        "param_count": params,
        "flops_per_step": flops,
        "model_config": plain(run.model.config),
        "train_windows": len(run.train_set),
        "val_windows": len(run.val_set),
        "val_episodes": sorted({int(e) for e in run.val_set.rows[:, 0]}),  # indices, all folders
        "machine": machine(run.config),
    }


def train(
    data_dir: Path | str | Sequence[Path | str],
    run_dir: Path | str,
    config: TrainConfig,
    log: Log = print,
) -> TrainResult:
    """Train (or fine-tune, with `config.init`) on the episodes in `data_dir`, one folder or
    several (e.g. the expert's and DAgger rounds'); see module doc."""
    from edgeliquid.paths import check_out_dir

    dirs = data_dirs(data_dir)
    kept = keep_freed_memory()  # ~2x faster steps on CPU: see host.keep_freed_memory
    torch.set_num_threads(config.num_threads)
    cv2.setNumThreads(1)  # the augmenter (cv2) prepares batches on the other core, not both
    run_dir = check_out_dir(run_dir, "--out")
    run_dir.mkdir(parents=True, exist_ok=True)
    before = {}
    if config.init is not None and config.eval_episodes > 0:  # did fine-tuning forget?
        before["init_eval_none"] = closed_loop_none(
            Path(config.init), config.eval_episodes, config.eval_seed, 2
        )
    wall_start = time.monotonic()  # the training budget counts data loading too
    episodes, data, sizes = load_episodes(dirs)
    run = _build_run(config, episodes, log, sizes)
    metrics: dict[str, Any] = {"train_config": plain(config), "data": data, **_describe(run, log)}
    metrics["malloc_keeps_freed_memory"] = kept
    metrics["initial_val_loss"] = evaluate_loss(run.model, run.val_set)
    metrics.update(before)
    metrics.update(_fit(run, run_dir, data, log))
    metrics["wall_seconds"] = time.monotonic() - wall_start
    metrics["history"] = run.history
    if metrics["best_epoch"] == 0:  # every epoch's loss was NaN or inf: nothing to keep
        write_metrics(run_dir, metrics)
        raise EdgeLiquidError(
            f"training diverged (no finite loss in {len(run.history)} epochs): no best.pt was "
            f"written; see {run_dir / 'metrics.json'} (try a lower --lr)"
        )
    if config.eval_episodes > 0:
        metrics["eval_none"] = closed_loop_none(
            run_dir / "best.pt", config.eval_episodes, config.eval_seed, 2
        )
        log(f"closed loop, shift none: success {metrics['eval_none']['success_rate']:.2f}")
    plot_curves(run.history, run_dir / "curves.png")
    write_metrics(run_dir, metrics)
    return TrainResult(run_dir, run_dir / "best.pt", run_dir / "last.pt", metrics)
