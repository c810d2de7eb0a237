"""`edgeliquid demo`: the shipped model in the simulator, video + plot + summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgeliquid.cli.app import guarded
from edgeliquid.errors import EdgeLiquidError


@guarded
def demo_command(
    model: Annotated[Path, typer.Option(help="Policy to fly.")] = Path("models/nav_cfc.onnx"),
    episodes: Annotated[int, typer.Option(help="Simulated episodes.")] = 4,
    out: Annotated[Path, typer.Option(help="Folder for the video, plot and summary.")] = Path(
        "demo_out"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the first episode.")] = 0,
) -> None:
    """Fly the shipped policy in the simulator: rollout.mp4, trajectories.png, summary.json."""
    from edgeliquid.demo import DemoConfig, run_demo

    try:
        config = DemoConfig(episodes=episodes, seed=seed)
    except ValueError as e:
        raise EdgeLiquidError(str(e)) from None
    summary = run_demo(model, out, config, echo=typer.echo)
    typer.echo(
        f"success {summary['successes']}/{summary['episodes']}; wrote "
        f"{summary['video']}, {summary['plot']}, {out / 'summary.json'}"
    )
