"""`edgeliquid collect`: expert flights, or a policy's flights labelled by the expert (DAgger),
as episode files."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from edgeliquid.cli.app import config_of, guarded


@guarded
def collect_command(
    out: Annotated[Path, typer.Option(help="Episodes folder; rerun to resume an interrupted one.")],
    episodes: Annotated[int, typer.Option(help="Episodes to record.")],
    seed: Annotated[int, typer.Option(help="Episode i's scene comes from (seed, i) only.")] = 0,
    shift: Annotated[str, typer.Option(help="Shift name(s), e.g. none or winter+noise.")] = "none",
    task: Annotated[
        str, typer.Option(help="reach | range | follow | chain | reacquire (sim.tasks).")
    ] = "reach",
    dt_jitter: Annotated[
        float, typer.Option(help="Frame-interval variation: dt in 0.1 s x [1-F, 1+F].")
    ] = 0.0,
    action_noise: Annotated[
        float, typer.Option(help="Smooth noise on the flown command, share of each limit.")
    ] = 0.15,
    hover: Annotated[
        float, typer.Option(help="Seconds recorded after the expert arrives (stop + hover).")
    ] = 2.0,
    randomize: Annotated[
        bool, typer.Option(help="Per-episode light and palettes (ranges exclude the eval shifts).")
    ] = False,
    glare_ahead: Annotated[
        bool,
        typer.Option(help="With --randomize: a strong low sun ahead in half the episodes."),
    ] = False,
    decoys: Annotated[
        bool,
        typer.Option(help="Look-alikes of the target: boxes, off-colour spheres, odd trees."),
    ] = False,
    decoy_mix: Annotated[
        str,
        typer.Option(
            help="With --decoys: v2, dense (more red-orange boxes), dense-dirt, domes or "
            "domes-dirt."
        ),
    ] = "v2",
    workers: Annotated[int, typer.Option(help="Processes (one core each).")] = 1,
    height: Annotated[int, typer.Option(help="Frame height: the policy's input.")] = 72,
    width: Annotated[int, typer.Option(help="Frame width: the policy's input.")] = 128,
    policy: Annotated[
        Path | None,
        typer.Option(help="DAgger: this .pt or .onnx policy flies; the expert labels every frame."),
    ] = None,
    beta: Annotated[
        float, typer.Option(help="With --policy: probability the expert's command is flown.")
    ] = 0.0,
    beta_per: Annotated[
        str, typer.Option(help="What one --beta draw covers: step or episode.")
    ] = "step",
) -> None:
    """Record expert flights (noisy execution, clean labels) as episode files; with --policy,
    the policy's flights, every frame labelled with the expert's clean command (DAgger)."""
    from edgeliquid.training.collect import CollectConfig, check_out, collect, load_learner

    config = config_of(
        CollectConfig,
        episodes=episodes,
        seed=seed,
        shift=shift,
        task=task,
        dt_jitter=dt_jitter,
        action_noise=action_noise,
        hover_s=hover,
        randomize=randomize,
        glare_ahead=glare_ahead,
        decoys=decoys,
        decoy_mix=decoy_mix,
        workers=workers,
        height=height,
        width=width,
        policy=None if policy is None else str(policy),
        beta=beta,
        beta_per=beta_per,
    )
    check_out(out, config)
    learner = None if config.policy is None else load_learner(config)  # its errors: one line
    with typer.progressbar(length=episodes, label="collect", file=sys.stderr) as bar:
        manifest = collect(out, config, progress=bar.update, learner=learner)
    entries = manifest["episodes"]
    successes = sum(e["outcome"] == "success" for e in entries)
    steps = sum(e["steps"] for e in entries)
    if policy is None:
        typer.echo(f"{len(entries)} episodes, {steps} frames; expert success {successes}")
    else:  # the success of what flew: the policy, mixed with the expert by --beta
        flyer = "policy" if beta == 0 else f"policy (beta {beta:g} per {beta_per})"
        typer.echo(
            f"{len(entries)} episodes; {flyer} success {successes / len(entries):.2f}, "
            f"expert-labelled {steps:,} frames"
        )
    typer.echo(f"wrote {out / 'manifest.json'}")
