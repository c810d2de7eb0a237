"""`edgeliquid run`: the on-device daemon (no torch)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgeliquid.cli.app import guarded
from edgeliquid.errors import EdgeLiquidError


@guarded
def run_command(
    model: Annotated[Path, typer.Argument(help="Exported .onnx step graph.")],
    source: Annotated[
        str,
        typer.Option(
            help="sim[:SHIFT][,task=TASK][,seed=N] | camera index | /dev/videoN | video file | "
            "image folder | rtsp/http URL | GStreamer pipeline."
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
    mavlink_frame: Annotated[
        str,
        typer.Option(help="MAVLink setpoint frame: body_ned (PX4) | body_offset_ned (ArduPilot)."),
    ] = "body_ned",
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
        fly(
            model,
            source,
            sink,
            config,
            provider,
            record,
            stop=stop,
            overwrite=overwrite,
            mavlink_frame=mavlink_frame,
        )
