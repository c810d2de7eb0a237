"""`edgeliquid export`: checkpoint → verified closed-form ONNX graph (torch, onnx)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgeliquid.cli.app import config_of, guarded
from edgeliquid.errors import EdgeLiquidError


@guarded
def export_command(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint .pt to export.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output .onnx file.")],
    graph: Annotated[str, typer.Option(help="step | unrolled.")] = "step",
    steps: Annotated[int, typer.Option(help="Time steps of an unrolled graph.")] = 16,
    dt: Annotated[str, typer.Option(help="input (dt is a graph input) | fixed (nominal dt).")] = (
        "input"
    ),
    quantize: Annotated[
        str | None, typer.Option(help="int8: also write OUT.int8.onnx (static QDQ).")
    ] = None,
    opset: Annotated[int, typer.Option(help="ONNX opset, 17 or 18.")] = 18,
    atol: Annotated[
        float | None,
        typer.Option(
            help="Largest tolerated |torch - ONNX|.",
            show_default="1e-5; 3e-5 for --input-norm frame models",
        ),
    ] = None,
    verify: Annotated[
        bool, typer.Option("--verify/--no-verify", help="Check against torch on sim frames.")
    ] = True,
    force: Annotated[
        bool, typer.Option(help="Keep an int8 file even if closed-loop success drops.")
    ] = False,
) -> None:
    """Export a checkpoint to a closed-form ONNX graph, verified against torch."""
    from edgeliquid.export import check_out, next_steps, run_export
    from edgeliquid.export.graph import ExportOptions

    options = config_of(ExportOptions, graph=graph, steps=steps, dt_mode=dt, opset=opset, atol=atol)
    if quantize not in (None, "int8"):
        raise EdgeLiquidError(f"--quantize must be int8, got {quantize!r}")
    if quantize and graph != "step":
        raise EdgeLiquidError("--quantize int8 applies to the step graph only")
    check_out(out, int8=quantize is not None)
    result = run_export(
        checkpoint, out, options, echo=typer.echo, verify_steps=500 if verify else None
    )
    paths = [result.path]
    if quantize:
        from edgeliquid.export import run_quantize

        int8 = run_quantize(checkpoint, result.path, options, force=force, echo=typer.echo)
        paths += [int8] if int8 else []
    next_steps(paths[-1], echo=typer.echo)
