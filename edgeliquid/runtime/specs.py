"""`--source` and `--sink` strings → source and sink objects.

The factories live here, apart from the base classes, so no base module imports its own
subclasses (`sources` ← `simsource`, `sinks` ← `mavlink` run one way). The simulator and
pymavlink are only imported when a spec names them: `SimSource` and `MavlinkSink` import their
heavy parts lazily themselves.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TextIO

from edgeliquid.errors import EdgeLiquidError
from edgeliquid.runtime.mavlink import FRAMES, MavlinkSink
from edgeliquid.runtime.simsource import SimSource, SimSourceConfig
from edgeliquid.runtime.sinks import CsvSink, NullSink, Sink, StdoutSink, UdpSink
from edgeliquid.runtime.sources import Clock, FolderSource, FrameSource, OpenCVSource

SIM_SPEC = "sim[:SHIFT][,task=TASK][,seed=N]"


def open_source(spec: str, clock: Clock | None = None, fast: bool = False) -> FrameSource:
    """The source for a `--source` value: sim[:...], a camera index, a path, a URL, a pipeline."""
    if spec == "sim" or spec.startswith("sim:"):
        return SimSource(sim_config(spec, fast), clock=clock)
    if spec.isdigit():
        return OpenCVSource(int(spec), clock)
    if re.match(r"^[a-z][a-z0-9+.-]*://", spec) or "!" in spec or spec.startswith("/dev/"):
        return OpenCVSource(spec, clock)
    path = Path(spec)
    if path.is_dir():
        return FolderSource(path, clock)
    if path.is_file():
        return OpenCVSource(str(path), clock)
    raise EdgeLiquidError(
        f"no source {spec!r}: expected sim, a camera index, /dev/videoN, a video file, "
        "an image folder, a URL or a GStreamer pipeline"
    )


def sim_config(spec: str, fast: bool = False) -> SimSourceConfig:
    """`sim`, `sim:winter+noise`, `sim:task=follow`, `sim:dusk,task=chain,seed=3`: a shift
    (names joined by '+'), then options; the simulator checks the names when it opens."""
    fields: dict[str, Any] = {"fast": fast}
    for item in spec.partition(":")[2].split(","):
        key, eq, value = item.partition("=")
        if not eq and item and "shift" not in fields:
            fields["shift"] = item
        elif key == "task" and value:
            fields["task"] = value
        elif key == "seed" and value.isdigit():
            fields["seed"] = int(value)
        elif item:
            raise EdgeLiquidError(f"bad simulator source {spec!r}: expected {SIM_SPEC}")
    return SimSourceConfig(**fields)


def parse_udp(spec: str) -> tuple[str, int]:
    """`udp://HOST:PORT` (HOST may be empty for loopback, or [v6]) → (host, port)."""
    rest = spec.removeprefix("udp://")
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise EdgeLiquidError(f"bad UDP sink {spec!r}: expected udp://HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


def open_sink(
    spec: str,
    stream: TextIO | None = None,
    overwrite: bool = False,
    protect: tuple[str | Path, ...] = (),
    mavlink_frame: str = "body_ned",
) -> Sink:
    """The sink for a `--sink` value: stdout, null, udp://H:P, csv:PATH, mavlink:CONN.

    `overwrite` lets a csv sink replace an existing file; `protect` lists files (the model)
    it must never write. `mavlink_frame` is body_ned (PX4) or body_offset_ned (ArduPilot).
    """
    if spec == "stdout":
        return StdoutSink(stream)
    if spec == "null":
        return NullSink()
    if spec.startswith("udp://"):
        return UdpSink(*parse_udp(spec))
    if spec.startswith("csv:") and len(spec) > 4:
        return CsvSink(spec[4:], overwrite=overwrite, protect=protect)
    if spec.startswith("mavlink:") and len(spec) > 8:
        if mavlink_frame not in FRAMES:
            raise EdgeLiquidError(
                f"--mavlink-frame must be one of {', '.join(FRAMES)}, got {mavlink_frame!r}"
            )
        return MavlinkSink(spec[8:], frame=FRAMES[mavlink_frame])
    raise EdgeLiquidError(
        f"no sink {spec!r}: expected stdout, udp://HOST:PORT, mavlink:CONN, csv:PATH or null"
    )
