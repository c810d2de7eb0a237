"""`edgeliquid eval`: closed-loop success in the simulator, per task and shift."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from edgeliquid.cli.app import guarded, write_json
from edgeliquid.errors import EdgeLiquidError


@guarded
def eval_command(
    model: Annotated[str, typer.Argument(help="expert | checkpoint .pt | exported .onnx.")],
    episodes: Annotated[int, typer.Option(help="Episodes per task and shift.")] = 50,
    seed: Annotated[int, typer.Option(help="Episode i's scene comes from (seed, i) only.")] = 0,
    shift: Annotated[
        str, typer.Option(help="Shift name(s) (e.g. winter+noise), or all: every single shift.")
    ] = "none",
    task: Annotated[
        str,
        typer.Option(help="reach|range|follow|chain|reacquire, several joined by ',', or all."),
    ] = "reach",
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the report as JSON here.")
    ] = None,
    workers: Annotated[int, typer.Option(help="Processes (one core each).")] = 1,
) -> None:
    """Fly a policy closed loop in the simulator; success, collisions, distance, time."""
    from edgeliquid.evaluate import evaluate, format_table
    from edgeliquid.paths import check_out_file, json_with
    from edgeliquid.sim.shifts import shift_names
    from edgeliquid.sim.tasks import task_names

    if json_path is not None:  # an earlier eval report may be replaced, nothing else
        check_out_file(json_path, "--json", (".json",), json_with("model", "results"))
    shifts = shift_names() if shift == "all" else [shift]
    try:
        tasks = task_names(task)
    except ValueError as e:
        raise EdgeLiquidError(f"--task: {e}") from None
    length = episodes * len(shifts) * len(tasks)
    with typer.progressbar(length=length, label="eval", file=sys.stderr) as bar:
        try:
            report = evaluate(
                model, episodes=episodes, seed=seed, shifts=shifts, tasks=tasks,
                workers=workers, progress=bar.update,
            )  # fmt: skip
        except ValueError as e:
            raise EdgeLiquidError(str(e)) from None
    typer.echo(format_table(report))
    if json_path is not None:
        write_json(json_path, report)
