"""`edgeliquid sim preview|bench|serve`: what the camera sees per shift or through a task's
flight; render speed; the simulator as a vehicle (MJPEG camera + MAVLink autopilot) in its own
process."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgeliquid.cli.app import guarded, write_json
from edgeliquid.errors import EdgeLiquidError

sim_app = typer.Typer(help="The simulator: frames per shift, render speed.", no_args_is_help=True)


@guarded
def sim_preview_command(
    out: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--out",
            help="PNG contact sheet (docs/shifts.png); with --task all a folder for TASK.png "
            "each (docs/tasks), with one --task its PNG (docs/tasks/TASK.png).",
        ),
    ] = None,
    shift: Annotated[
        str | None,
        typer.Option(
            help="Shift name(s), or all: one row each (with --task: one, none).", show_default="all"
        ),
    ] = None,
    task: Annotated[
        str | None,
        typer.Option(help="A task sheet instead: reach|range|follow|chain|reacquire, or all."),
    ] = None,
    seeds: Annotated[
        int, typer.Option(help="Scenes (first and mid-flight frame / task rows).")
    ] = 3,
    height: Annotated[int, typer.Option(help="Frame height.")] = 72,
    width: Annotated[int, typer.Option(help="Frame width.")] = 128,
    scale: Annotated[int, typer.Option(help="Pixel magnification on the sheet.")] = 2,
    randomize: Annotated[
        bool, typer.Option(help="Randomised light and palettes (collect --randomize), new per row.")
    ] = False,
) -> None:
    """A contact sheet of what the camera sees under each shift, or through a task's flight."""
    from edgeliquid.paths import check_out_file, is_png
    from edgeliquid.sim.preview import check_sheet, contact_sheet, save_rgb
    from edgeliquid.sim.shifts import parse_shift, shift_names

    if task is not None:
        _task_sheets(task, out, shift or "none", seeds, (height, width), scale, randomize)
        return
    out = out or Path("docs/shifts.png")
    check_out_file(out, "-o", (".png",), replaces=is_png)
    shifts = shift_names() if shift in (None, "all") else [shift]
    try:
        for name in shifts:
            parse_shift(name)
        check_sheet(seeds, (height, width), scale)
        sheet = contact_sheet(shifts, range(seeds), (height, width), scale, randomize)
    except ValueError as e:
        raise EdgeLiquidError(str(e)) from None
    save_rgb(out, sheet)
    typer.echo(f"wrote {out}: {len(shifts)} shifts x {seeds} scenes")


def _task_sheets(
    task: str,
    out: Path | None,
    shift: str,
    seeds: int,
    size: tuple[int, int],
    scale: int,
    randomize: bool,
) -> None:
    """`sim preview --task`: one sheet per task, each checked writable before any flight."""
    from edgeliquid.paths import check_out_file, is_png
    from edgeliquid.sim.preview import check_sheet, save_rgb, task_sheet
    from edgeliquid.sim.shifts import parse_shift
    from edgeliquid.sim.tasks import task_names

    try:
        tasks = task_names(task)
        if shift == "all" or randomize:
            raise ValueError("a task sheet takes one --shift and no --randomize")
        parse_shift(shift)
        check_sheet(seeds, size, scale)
    except ValueError as e:
        raise EdgeLiquidError(f"sim preview --task: {e}") from None
    folder = task == "all" or "," in task
    if folder:
        paths = [(out or Path("docs/tasks")) / f"{name}.png" for name in tasks]
    else:
        paths = [out or Path("docs/tasks") / f"{task}.png"]
    for path in paths:
        check_out_file(path, "-o", (".png",), replaces=is_png)
    for name, path in zip(tasks, paths, strict=True):
        save_rgb(path, task_sheet(name, range(seeds), size, scale, shift))
        typer.echo(f"wrote {path}: {name}, {seeds} scenes")


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


@guarded
def sim_serve_command(
    shift: Annotated[str, typer.Option(help="Shift name(s) joined by '+'.")] = "none",
    task: Annotated[
        str, typer.Option(help="reach | range | follow | chain | reacquire.")
    ] = "reach",
    seed: Annotated[int, typer.Option(help="The scene: NavEnv.reset(seed=SEED).")] = 0,
    video: Annotated[int, typer.Option(help="MJPEG port on 127.0.0.1 (0: any free).")] = 8554,
    mavlink: Annotated[
        str, typer.Option(help="Where setpoints arrive: a pymavlink udpin:HOST:PORT.")
    ] = "udpin:127.0.0.1:14540",
    out: Annotated[
        Path | None, typer.Option(help="Flight report FLIGHT.json (and FLIGHT.png, top-down).")
    ] = None,
    duration: Annotated[float, typer.Option(help="Wall-clock cap on the run, seconds.")] = 60.0,
    loss_timeout: Annotated[
        float, typer.Option(help="COM_OF_LOSS_T: setpoint gap before the failsafe, s.")
    ] = 1.0,
    stall: Annotated[
        str | None,
        typer.Option(help="Fault: START:LENGTH s after offboard the camera sends nothing."),
    ] = None,
) -> None:
    """Fly NavEnv in real time as a vehicle: camera over HTTP, PX4-style offboard over MAVLink."""
    from edgeliquid.cli.app import config_of
    from edgeliquid.paths import check_out_file, json_with
    from edgeliquid.runtime import stopping
    from edgeliquid.runtime.service import log_to_stderr
    from edgeliquid.sim.autopilot import AutopilotConfig
    from edgeliquid.sim.vehicle import VehicleConfig, serve

    if out is not None:
        check_out_file(out, "--out", (".json",), json_with("outcome", "track"))
    if not mavlink.startswith("udpin:"):
        raise EdgeLiquidError(f"--mavlink must be udpin:HOST:PORT, got {mavlink!r}")
    config = config_of(
        VehicleConfig,
        shift=shift,
        task=task,
        seed=seed,
        video_port=video,
        mavlink=mavlink,
        duration_s=duration,
        stall=_pair(stall),
        autopilot=config_of(AutopilotConfig, loss_timeout_s=loss_timeout),
    )
    log_to_stderr()
    with stopping.on_signals() as stop:
        try:
            report = serve(config, stop.event, out)
        except ValueError as e:  # a bad shift or task name
            raise EdgeLiquidError(str(e)) from None
    typer.echo(
        f"{report['outcome']} after {report['flight_time_s']:.1f} s"
        + (f": wrote {out}" if out else "")
    )


def _pair(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    start, _, length = text.partition(":")
    try:
        return float(start), float(length)
    except ValueError:
        raise EdgeLiquidError(f"--stall must be START:LENGTH seconds, got {text!r}") from None


sim_app.command("preview")(sim_preview_command)
sim_app.command("bench")(sim_bench_command)
sim_app.command("serve")(sim_serve_command)
