"""`edgeliquid train` and `edgeliquid info`: fit a policy on episodes; describe one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from edgeliquid.cli.app import guarded
from edgeliquid.errors import EdgeLiquidError

# AugmentConfig() and its classmethods (a dash in the name for an underscore)
AUGMENT_PRESETS = ("strong", "outdoor", "dirt-ahead", "paper")


@guarded
def train_command(
    data_dirs: Annotated[
        list[Path],
        typer.Argument(
            help="Episodes folder(s) from `edgeliquid collect`: the expert's, DAgger rounds'.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Run folder: best.pt, last.pt, metrics.json, curves.png.")
    ],
    arch: Annotated[
        str | None,
        typer.Option(
            help="cfc | cfc_dense | lstm | lstm_dt | gru | cnn.", show_default="cfc, or --init's"
        ),
    ] = None,
    conv_norm: Annotated[
        str | None,
        typer.Option(
            help="batch | none: BatchNorm after each conv (none: the pre-fix head).",
            show_default="batch, or --init's",
        ),
    ] = None,
    input_norm: Annotated[
        str | None,
        typer.Option(
            help="fixed | frame: pixels normalised by fixed statistics, or each frame by its "
            "own (exposure, veil and white balance do not reach the convs).",
            show_default="fixed, or --init's",
        ),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(help="Passes over the data.", show_default="14")
    ] = None,
    seed: Annotated[int, typer.Option(help="Weights, window order, augmentation.")] = 0,
    seq_len: Annotated[
        int | None, typer.Option(help="Window length, steps.", show_default="32")
    ] = None,
    seq_shift: Annotated[
        int | None, typer.Option(help="Steps between window starts.", show_default="16")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Windows per step.", show_default="32")
    ] = None,
    lr: Annotated[
        float | None, typer.Option(help="Adam learning rate.", show_default="4e-3")
    ] = None,
    init: Annotated[
        Path | None, typer.Option(help="Fine-tune from this checkpoint (its config wins).")
    ] = None,
    val_fraction: Annotated[
        float | None, typer.Option(help="Share of episodes for validation.", show_default="0.1")
    ] = None,
    val_seed: Annotated[
        int | None,
        typer.Option(
            help="Which episodes are held out; one value for several --seed runs validates "
            "them on the same episodes.",
            show_default="--seed",
        ),
    ] = None,
    max_minutes: Annotated[
        float | None, typer.Option(help="Stop training after this many minutes.")
    ] = None,
    eval_episodes: Annotated[
        int, typer.Option(help="Closed-loop episodes on shift none after training (0: skip).")
    ] = 0,
    eval_seed: Annotated[int, typer.Option(help="Seed of the closed-loop episodes.")] = 12345,
    augment: Annotated[bool, typer.Option(help="Photometric augmentation.")] = True,
    augment_preset: Annotated[
        str,
        typer.Option(
            help="strong: jitter + light changes | outdoor: strong + frequent wide glare and "
            "lens dirt | dirt-ahead: strong + lens dirt mid-frame | paper: jitter, gains, noise "
            "only."
        ),
    ] = "strong",
    overwrite: Annotated[
        bool, typer.Option(help="Replace the run already in --out (best.pt, last.pt, ...).")
    ] = False,
) -> None:
    """Behaviour-clone the expert from recorded episodes, from one folder or several (truncated
    BPTT on windows)."""
    from edgeliquid.paths import check_out_dir
    from edgeliquid.training.config import RUN_FILES, TrainConfig
    from edgeliquid.training.trainer import train

    given = dict(
        epochs=epochs,
        seq_len=seq_len,
        seq_shift=seq_shift,
        batch_size=batch_size,
        lr=lr,
        val_fraction=val_fraction,
        val_seed=val_seed,
    )
    options: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    if augment_preset not in AUGMENT_PRESETS:
        raise EdgeLiquidError(
            f"--augment-preset must be one of {', '.join(AUGMENT_PRESETS)}, got {augment_preset!r}"
        )
    if not augment:
        options["augment"] = None
    elif augment_preset != "strong":
        from edgeliquid.training.augment import AugmentConfig

        options["augment"] = getattr(AugmentConfig, augment_preset.replace("-", "_"))()
    try:
        config = TrainConfig(
            arch=arch,
            conv_norm=conv_norm,
            input_norm=input_norm,
            seed=seed,
            max_minutes=max_minutes,
            init=None if init is None else str(init),
            eval_episodes=eval_episodes,
            eval_seed=eval_seed,
            **options,
        )
    except ValueError as e:
        raise EdgeLiquidError(str(e)) from None
    check_out_dir(out, "--out")
    earlier = [name for name in RUN_FILES[:2] if (out / name).exists()]
    if earlier and not overwrite:
        raise EdgeLiquidError(
            f"--out {out} already holds a run ({', '.join(earlier)}): choose another folder "
            "or pass --overwrite to replace it"
        )
    result = train(data_dirs, out, config, log=typer.echo)
    if not result.best_path.is_file():  # train() raises first; never name a missing file
        raise EdgeLiquidError(f"no best checkpoint was written in {out}")
    typer.echo(f"best checkpoint: {result.best_path} (epoch {result.metrics['best_epoch']})")


@guarded
def info_command(
    checkpoint: Annotated[
        Path | None,
        typer.Argument(help="Checkpoint .pt to describe.", show_default="the default config"),
    ] = None,
    arch: Annotated[
        str | None,
        typer.Option(
            help="cfc | cfc_dense | lstm | lstm_dt | gru | cnn, for the default config.",
            show_default="cfc",
        ),
    ] = None,
) -> None:
    """Arch, input size, parameters, MFLOP per step and state size of a policy."""
    from edgeliquid.model import (
        ARCHS,
        NavPolicyConfig,
        build_policy,
        load_checkpoint,
        policy_summary,
    )

    if checkpoint is not None and arch is not None:
        raise EdgeLiquidError("--arch is for the default config; a checkpoint has its own arch")
    if checkpoint is not None:
        model, source = load_checkpoint(checkpoint)[0], str(checkpoint)
    elif (arch or "cfc") not in ARCHS:
        raise EdgeLiquidError(f"--arch must be one of {', '.join(ARCHS)}, got {arch!r}")
    else:
        model, source = build_policy(NavPolicyConfig(arch=arch or "cfc")), "default config"
    for key, value in {"source": source, **policy_summary(model)}.items():
        typer.echo(f"{key + ':':<12} {value}")
