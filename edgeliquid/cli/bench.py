"""`edgeliquid bench`: latency per control step, every row in its own process."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated

import typer

from edgeliquid.cli.app import config_of, guarded


@guarded
def bench_command(
    model: Annotated[
        Path | None,
        typer.Argument(
            help="Checkpoint .pt (every row) or .onnx step graph (ONNX rows only).",
            show_default="models/nav_cfc.pt, else random weights",
        ),
    ] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the result here.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Latency CDF plot (PNG).")] = None,
    markdown_path: Annotated[
        Path | None, typer.Option("--markdown", help="Write the table here too.")
    ] = None,
    quick: Annotated[bool, typer.Option(help="Smoke test: < 1 min, timings not for reading.")] = (
        False
    ),
    iterations: Annotated[
        int | None, typer.Option(help="Timed steps per row.", show_default="3000, quick 200")
    ] = None,
    workdir: Annotated[
        Path | None, typer.Option(help="Keep the exported graphs and row files here.")
    ] = None,
    from_json: Annotated[
        Path | None, typer.Option(help="Render an earlier run's JSON instead of measuring.")
    ] = None,
) -> None:
    """Latency per control step: torch, ncps, LTC, the ONNX graphs, the daemon, the floor."""
    from edgeliquid.bench import report as bench

    bench.check_outputs(json_path, plot, markdown_path, workdir)
    if from_json is not None:
        result = bench.load_result(from_json)
    else:
        config = bench.QUICK if quick else bench.BenchConfig()
        if iterations is not None:
            config = config_of(bench.BenchConfig, **{**vars(config), "iterations": iterations})
        log = functools.partial(typer.echo, err=True)
        result = bench.run_bench(model, config, workdir, echo=log)
    table = bench.markdown(result)
    typer.echo(table)
    bench.write_outputs(result, table, json_path, plot, markdown_path, echo=typer.echo)
