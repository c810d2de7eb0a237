"""The `edgeliquid` command line.

Each command imports its heavy modules (torch, onnx, the simulator) inside its body, so
`edgeliquid --help` and the on-device commands stay fast and torch-free.
"""

from __future__ import annotations

import sys

from edgeliquid.runtime import stopping  # stdlib only

if sys.argv[1:2] == ["run"]:  # `run` owns SIGTERM/SIGINT/SIGHUP before typer's imports too
    stopping.catch_early()

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from edgeliquid import __version__
from edgeliquid.errors import EdgeLiquidError

app = typer.Typer(
    help="Compact liquid (CfC) navigation policies: simulate, train, export, fly.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one error line to stderr and return the Exit to raise."""
    typer.echo(f"edgeliquid: error: {message}", err=True)
    return typer.Exit(code)


def command(*args: Any, group: typer.Typer | None = None, **kwargs: Any) -> Callable:
    """`app.command` (or `group.command`) that turns EdgeLiquidError (and a few OS errors)
    into one clear line."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*a: Any, **kw: Any) -> Any:
            try:
                return fn(*a, **kw)
            except EdgeLiquidError as e:
                raise fail(str(e)) from None
            except OSError as e:  # a full disk, a missing or unreadable path: one line
                where = f": {e.filename}" if e.filename else ""
                raise fail(f"{e.strerror or e}{where}") from None

        return (group or app).command(*args, **kwargs)(wrapper)

    return decorate


def config_of(cls: Callable, **kwargs: Any) -> Any:
    """Build a validated config; its ValueError becomes the one-line user error."""
    try:
        return cls(**kwargs)
    except ValueError as e:
        raise EdgeLiquidError(str(e)) from None


def write_json(path: Path, value: Any) -> None:
    """Write `value` as indented JSON atomically (the folder made if needed); say so."""
    import json

    from edgeliquid.data import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, (json.dumps(value, indent=2) + "\n").encode())
    typer.echo(f"wrote {path}")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"edgeliquid {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Compact liquid (CfC) navigation policies: simulate, train, export, fly."""


@command("train")
def train_command(
    data_dir: Annotated[Path, typer.Argument(help="Episodes folder from `edgeliquid collect`.")],
    out: Annotated[
        Path, typer.Option("--out", help="Run folder: best.pt, last.pt, metrics.json, curves.png.")
    ],
    arch: Annotated[
        str | None, typer.Option(help="cfc | lstm | gru | cnn.", show_default="cfc, or --init's")
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
    max_minutes: Annotated[
        float | None, typer.Option(help="Stop training after this many minutes.")
    ] = None,
    eval_episodes: Annotated[
        int, typer.Option(help="Closed-loop episodes on shift none after training (0: skip).")
    ] = 0,
    eval_seed: Annotated[int, typer.Option(help="Seed of the closed-loop episodes.")] = 12345,
    augment: Annotated[bool, typer.Option(help="Photometric augmentation.")] = True,
    overwrite: Annotated[
        bool, typer.Option(help="Replace the run already in --out (best.pt, last.pt, ...).")
    ] = False,
) -> None:
    """Behaviour-clone the expert from recorded episodes (truncated BPTT on windows)."""
    from edgeliquid.paths import check_out_dir
    from edgeliquid.train import RUN_FILES, TrainConfig, train

    given = dict(
        epochs=epochs,
        seq_len=seq_len,
        seq_shift=seq_shift,
        batch_size=batch_size,
        lr=lr,
        val_fraction=val_fraction,
    )
    options = {k: v for k, v in given.items() if v is not None}
    if not augment:
        options["augment"] = None
    try:
        config = TrainConfig(
            arch=arch,
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
    result = train(data_dir, out, config, log=typer.echo)
    if not result.best_path.is_file():  # train() raises first; never name a missing file
        raise EdgeLiquidError(f"no best checkpoint was written in {out}")
    typer.echo(f"best checkpoint: {result.best_path} (epoch {result.metrics['best_epoch']})")


@command("info")
def info_command(
    checkpoint: Annotated[
        Path | None,
        typer.Argument(help="Checkpoint .pt to describe.", show_default="the default config"),
    ] = None,
    arch: Annotated[
        str | None,
        typer.Option(help="cfc | lstm | gru | cnn, for the default config.", show_default="cfc"),
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


@command("run")
def run_command(
    model: Annotated[Path, typer.Argument(help="Exported .onnx step graph.")],
    source: Annotated[
        str,
        typer.Option(
            help="sim[:SHIFT] | camera index | /dev/videoN | video file | image folder | "
            "rtsp/http URL | GStreamer pipeline."
        ),
    ] = "sim",
    sink: Annotated[
        str,
        typer.Option(help="stdout | udp://HOST:PORT | mavlink:CONN | csv:PATH | null."),
    ] = "stdout",
    rate: Annotated[
        float, typer.Option(help="Command rate, Hz, 1 to 100 (PX4 offboard needs ≥ 2).")
    ] = 10.0,
    max_frame_age: Annotated[
        float,
        typer.Option(
            help="Older frames are stale: send hold, seconds; at most 1 s and "
            "max(0.25 s, 3 periods)."
        ),
    ] = 0.25,
    provider: Annotated[str, typer.Option(help="cpu | cuda | tensorrt.")] = "cpu",
    duration: Annotated[
        float | None,
        typer.Option(help="Stop after this many seconds (> 0).", show_default="never"),
    ] = None,
    record: Annotated[
        Path | None, typer.Option(help="Flight recorder: write episode files into this folder.")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Let a csv:PATH sink replace an existing file (never the model).")
    ] = False,
) -> None:
    """Fly an exported policy: frames in, velocity + yaw-rate commands out, fail-safe to hold.

    SIGTERM, SIGINT, SIGHUP stop the run, exit 0: with a final hold once the sink is open.
    """
    from edgeliquid.runtime import stopping

    with stopping.on_signals() as stop:  # first: a signal during the imports below only stops
        from edgeliquid.runtime.daemon import DaemonConfig
        from edgeliquid.runtime.service import fly, log_to_stderr

        try:
            config = DaemonConfig(rate_hz=rate, max_frame_age_s=max_frame_age, duration_s=duration)
        except ValueError as e:
            raise EdgeLiquidError(str(e)) from None
        log_to_stderr()
        fly(model, source, sink, config, provider, record, stop=stop, overwrite=overwrite)


@command("demo")
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


@command("export")
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
    atol: Annotated[float, typer.Option(help="Largest tolerated |torch - ONNX|.")] = 1e-5,
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


@command("collect")
def collect_command(
    out: Annotated[Path, typer.Option(help="Episodes folder; rerun to resume an interrupted one.")],
    episodes: Annotated[int, typer.Option(help="Episodes to record.")],
    seed: Annotated[int, typer.Option(help="Episode i's scene comes from (seed, i) only.")] = 0,
    shift: Annotated[str, typer.Option(help="Shift name(s), e.g. none or winter+noise.")] = "none",
    dt_jitter: Annotated[
        float, typer.Option(help="Frame-interval variation: dt in 0.1 s x [1-F, 1+F].")
    ] = 0.0,
    action_noise: Annotated[
        float, typer.Option(help="Smooth noise on the flown command, share of each limit.")
    ] = 0.15,
    hover: Annotated[
        float, typer.Option(help="Seconds recorded after the expert arrives (stop + hover).")
    ] = 2.0,
    workers: Annotated[int, typer.Option(help="Processes (one core each).")] = 1,
    height: Annotated[int, typer.Option(help="Frame height: the policy's input.")] = 72,
    width: Annotated[int, typer.Option(help="Frame width: the policy's input.")] = 128,
) -> None:
    """Record expert flights (noisy execution, clean labels) as episode files."""
    from edgeliquid.collect import CollectConfig, check_out, collect

    config = config_of(
        CollectConfig,
        episodes=episodes,
        seed=seed,
        shift=shift,
        dt_jitter=dt_jitter,
        action_noise=action_noise,
        hover_s=hover,
        workers=workers,
        height=height,
        width=width,
    )
    check_out(out, config)
    with typer.progressbar(length=episodes, label="collect", file=sys.stderr) as bar:
        manifest = collect(out, config, progress=bar.update)
    entries = manifest["episodes"]
    successes = sum(e["outcome"] == "success" for e in entries)
    steps = sum(e["steps"] for e in entries)
    typer.echo(f"{len(entries)} episodes, {steps} frames; expert success {successes}")
    typer.echo(f"wrote {out / 'manifest.json'}")


@command("eval")
def eval_command(
    model: Annotated[str, typer.Argument(help="expert | checkpoint .pt | exported .onnx.")],
    episodes: Annotated[int, typer.Option(help="Episodes per shift.")] = 50,
    seed: Annotated[int, typer.Option(help="Episode i's scene comes from (seed, i) only.")] = 0,
    shift: Annotated[
        str, typer.Option(help="Shift name(s) (e.g. winter+noise), or all: every single shift.")
    ] = "none",
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the report as JSON here.")
    ] = None,
    workers: Annotated[int, typer.Option(help="Processes (one core each).")] = 1,
) -> None:
    """Fly a policy closed loop in the simulator; success, collisions, distance, time."""
    from edgeliquid.evaluate import evaluate, format_table
    from edgeliquid.paths import check_out_file, json_with
    from edgeliquid.sim.shifts import shift_names

    if json_path is not None:  # an earlier eval report may be replaced, nothing else
        check_out_file(json_path, "--json", (".json",), json_with("model", "results"))
    shifts = shift_names() if shift == "all" else [shift]
    with typer.progressbar(length=episodes * len(shifts), label="eval", file=sys.stderr) as bar:
        try:
            report = evaluate(
                model, episodes=episodes, seed=seed, shifts=shifts, workers=workers,
                progress=bar.update,
            )  # fmt: skip
        except ValueError as e:
            raise EdgeLiquidError(str(e)) from None
    typer.echo(format_table(report))
    if json_path is not None:
        write_json(json_path, report)


sim_app = typer.Typer(help="The simulator: frames per shift, render speed.", no_args_is_help=True)
app.add_typer(sim_app, name="sim")


@command("preview", group=sim_app)
def sim_preview_command(
    out: Annotated[Path, typer.Option("-o", "--out", help="PNG contact sheet.")] = Path(
        "docs/shifts.png"
    ),
    shift: Annotated[str, typer.Option(help="Shift name(s), or all: one row each.")] = "all",
    seeds: Annotated[int, typer.Option(help="Scenes per row (first and mid-flight frame).")] = 3,
    height: Annotated[int, typer.Option(help="Frame height.")] = 72,
    width: Annotated[int, typer.Option(help="Frame width.")] = 128,
    scale: Annotated[int, typer.Option(help="Pixel magnification on the sheet.")] = 2,
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
        sheet = contact_sheet(shifts, range(seeds), (height, width), scale)
    except ValueError as e:
        raise EdgeLiquidError(str(e)) from None
    save_rgb(out, sheet)
    typer.echo(f"wrote {out}: {len(shifts)} shifts x {seeds} scenes")


@command("bench", group=sim_app)
def sim_bench_command(
    frames: Annotated[int, typer.Option(help="Frames to render (and env steps to take).")] = 2000,
    shift: Annotated[str, typer.Option(help="Shift name(s).")] = "none",
    height: Annotated[int, typer.Option(help="Frame height (the policy input).")] = 72,
    width: Annotated[int, typer.Option(help="Frame width (the policy input).")] = 128,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the numbers as JSON here.")
    ] = None,
) -> None:
    """Frames per second of the renderer and of env.step, on one core."""
    from edgeliquid.paths import check_out_file, json_with
    from edgeliquid.sim.preview import benchmark

    if not 1 <= frames <= 1_000_000:
        raise EdgeLiquidError(f"--frames must be in 1..1000000, got {frames}")
    if json_path is not None:
        check_out_file(json_path, "--json", (".json",), json_with("render_fps", "step_fps"))
    try:
        result = benchmark(frames, (height, width), shift)
    except ValueError as e:
        raise EdgeLiquidError(str(e)) from None
    typer.echo(
        f"{height}x{width}, shift {shift}, one core ({result['core']}), median / best trial:"
    )
    for name, unit in (("render", "frames/s"), ("step", "env steps/s")):
        median, best = result[f"{name}_fps"], result[f"{name}_fps_best"]
        per = f"{1e6 / median:.0f} / {1e6 / best:.0f} µs"
        typer.echo(f"  {name:<7}{median:6.0f} / {best:.0f} {unit}  ({per})")
    if json_path is not None:
        write_json(json_path, result)


@command("bench")
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
    from edgeliquid import bench

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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
