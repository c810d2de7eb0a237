"""`edgeliquid tune`: search a space file for the policies on the success × latency front.

Ray Tune and Optuna are the `tune` extra, torch the `train` one: on an install without them
(the device's) the command says which to add, in one line, and importing this module (as
`edgeliquid --help` does) imports neither.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated

import typer

from edgeliquid.cli.app import guarded
from edgeliquid.errors import EdgeLiquidError

NEEDS = {"ray": "tune", "optuna": "tune", "yaml": "tune", "torch": "train", "onnx": "train"}


def missing_extras() -> list[str]:
    """The extras (`tune`, `train`) whose packages this install lacks."""
    absent = {extra for module, extra in NEEDS.items() if importlib.util.find_spec(module) is None}
    return sorted(absent, reverse=True)  # tune first: the one this command adds


@guarded
def tune_command(
    space: Annotated[
        Path, typer.Argument(help="Search space YAML (e.g. configs/tune-small.yaml).")
    ],
    data: Annotated[
        list[Path],
        typer.Option("--data", help="Episodes folder from `edgeliquid collect` (repeat for more)."),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="Study folder: trials, front.md, front.png, best.onnx. Rerun to continue."
        ),
    ],
    trials: Annotated[
        int, typer.Option(help="Trials in the study, those already run included.")
    ] = 16,
    address: Annotated[
        str | None,
        typer.Option(
            help="Ray cluster, ray://HOST:10001 (RUN_DIR on shared storage).",
            show_default="a local Ray",
        ),
    ] = None,
    cpus: Annotated[
        int | None, typer.Option(help="CPUs of the local Ray.", show_default="all")
    ] = None,
    reference: Annotated[
        list[Path] | None,
        typer.Option(
            help="An exported model to measure on the same plan and show beside the front "
            "(repeat for more; e.g. models/nav_cfc.onnx)."
        ),
    ] = None,
) -> None:
    """Search a space file for policies on the success x latency front (Ray Tune + Optuna)."""
    missing = missing_extras()
    if missing:
        raise EdgeLiquidError(
            f"edgeliquid tune needs the {' and '.join(missing)} extra{'s' * (len(missing) > 1)}"
            ' (Ray Tune, Optuna; torch): pip install "edgeliquid[train,tune]"'
        )
    if address is not None and cpus is not None:
        raise EdgeLiquidError("--cpus sizes a local Ray; a cluster at --address has its own")
    from edgeliquid.tune.engine import TuneRequest, run_study

    request = TuneRequest(space, tuple(data), out, trials, address, cpus, tuple(reference or ()))
    best = run_study(request, echo=typer.echo)
    if best is None:
        raise EdgeLiquidError(f"no trial succeeded; see the trials' metrics.json in {out}")
    typer.echo(
        f"front: {out / 'front.md'}, {out / 'front.png'}; best.onnx = trial {best['id']} "
        f"(success {best['success']:.2f}, p50 {best['latency_us']:.0f} µs)\n"
        f"  edgeliquid run {out / 'best.onnx'} --source sim --sink stdout --duration 5"
    )
