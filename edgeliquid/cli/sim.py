"""`edgeliquid sim preview|bench`: what the camera sees per shift; render speed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgeliquid.cli.app import guarded, write_json
from edgeliquid.errors import EdgeLiquidError

sim_app = typer.Typer(help="The simulator: frames per shift, render speed.", no_args_is_help=True)


@guarded
def sim_preview_command(
    out: Annotated[Path, typer.Option("-o", "--out", help="PNG contact sheet.")] = Path(
        "docs/shifts.png"
    ),
    shift: Annotated[str, typer.Option(help="Shift name(s), or all: one row each.")] = "all",
    seeds: Annotated[int, typer.Option(help="Scenes per row (first and mid-flight frame).")] = 3,
    height: Annotated[int, typer.Option(help="Frame height.")] = 72,
    width: Annotated[int, typer.Option(help="Frame width.")] = 128,
    scale: Annotated[int, typer.Option(help="Pixel magnification on the sheet.")] = 2,
    randomize: Annotated[
        bool, typer.Option(help="Randomised light and palettes (collect --randomize), new per row.")
    ] = False,
) -> None:
    """A contact sheet of what the camera sees under each shift."""
    from edgeliquid.paths import check_out_file, is_png
    from edgeliquid.sim.preview import check_sheet, contact_sheet, save_rgb
    from edgeliquid.sim.shifts import parse_shift, shift_names

    check_out_file(out, "-o", (".png",), replaces=is_png)
    shifts = shift_names() if shift == "all" else [shift]
    try:
        for name in shifts:
            parse_shift(name)
        check_sheet(seeds, (height, width), scale)
        sheet = contact_sheet(shifts, range(seeds), (height, width), scale, randomize)
    except ValueError as e:
        raise EdgeLiquidError(str(e)) from None
    save_rgb(out, sheet)
    typer.echo(f"wrote {out}: {len(shifts)} shifts x {seeds} scenes")


@guarded
def sim_bench_command(
    frames: Annotated[int, typer.Option(help="Frames to render (and env steps to take).")] = 2000,
    shift: Annotated[str, typer.Option(help="Shift name(s).")] = "none",
    height: Annotated[int, typer.Option(help="Frame height (the policy input).")] = 72,
    width: Annotated[int, typer.Option(help="Frame width (the policy input).")] = 128,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the numbers as JSON here.")
    ] = None,
    randomize: Annotated[
        bool, typer.Option(help="Randomised light and palettes (collect --randomize).")
    ] = False,
) -> None:
    """Frames per second of the renderer and of env.step, on one core."""
    from edgeliquid.paths import check_out_file, json_with
    from edgeliquid.sim.preview import benchmark

    if not 1 <= frames <= 1_000_000:
        raise EdgeLiquidError(f"--frames must be in 1..1000000, got {frames}")
    if json_path is not None:
        check_out_file(json_path, "--json", (".json",), json_with("render_fps", "step_fps"))
    try:
        result = benchmark(frames, (height, width), shift, randomize)
    except ValueError as e:
        raise EdgeLiquidError(str(e)) from None
    typer.echo(
        f"{height}x{width}, shift {shift}{' randomized' if randomize else ''}, "
        f"one core ({result['core']}), median / best trial:"
    )
    for name, unit in (("render", "frames/s"), ("step", "env steps/s")):
        median, best = result[f"{name}_fps"], result[f"{name}_fps_best"]
        per = f"{1e6 / median:.0f} / {1e6 / best:.0f} µs"
        typer.echo(f"  {name:<7}{median:6.0f} / {best:.0f} {unit}  ({per})")
    if json_path is not None:
        write_json(json_path, result)


sim_app.command("preview")(sim_preview_command)
sim_app.command("bench")(sim_bench_command)
