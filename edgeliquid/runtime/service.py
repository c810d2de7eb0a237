"""`edgeliquid run` as a function: wire model, source, sink, recorder and systemd into a Daemon.

Order matters for safety: the sink opens first, so when the model or the source cannot be
opened the only thing ever sent is one hold command before the error is raised. A live
source is opened in the background while the loop already holds ("no_frame"). Signals
(SIGTERM from systemd, SIGINT from Ctrl-C, SIGHUP from a closed terminal) all mean stop:
before the sink is open the run just returns (exit 0, nothing sent), after it the loop sends
its final hold at once and flushes (exit 0).
"""

from __future__ import annotations

import logging
import sys
from contextlib import ExitStack
from pathlib import Path

from edgeliquid.errors import EdgeLiquidError
from edgeliquid.runtime.daemon import HOLD, Daemon
from edgeliquid.runtime.daemon_config import PX4_MIN_RATE_HZ, DaemonConfig, RunStats
from edgeliquid.runtime.engine import OnnxPolicy
from edgeliquid.runtime.notify import Notifier
from edgeliquid.runtime.sinks import CommandMessage, Sink
from edgeliquid.runtime.sources import (
    BackgroundOpen,
    Clock,
    FastClock,
    FrameSource,
    MonotonicClock,
)
from edgeliquid.runtime.specs import open_sink, open_source
from edgeliquid.runtime.stopping import StopRequest

log = logging.getLogger(__name__)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at emit time (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("edgeliquid: %(message)s"))

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def log_to_stderr(level: int = logging.INFO) -> None:
    """Route edgeliquid's log lines (stats, fail-safe warnings) to stderr, once."""
    logger = logging.getLogger("edgeliquid")
    logger.setLevel(level)
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        logger.addHandler(_StderrHandler())


def send_hold(sink: Sink, reason: str, clock: Clock | None = None) -> None:
    """One hold message (before giving up at start-up); sink errors are only logged."""
    now = (clock or MonotonicClock()).now()
    try:
        sink.send(CommandMessage.make(0, now, HOLD, "hold", reason))
        sink.flush()
    except Exception as e:  # we are already failing; the original error is what matters
        log.warning("could not send a hold to %s: %s", sink.name, e)


def _recorder(folder: Path, policy: OnnxPolicy):
    from edgeliquid.runtime.recorder import FlightRecorder

    return FlightRecorder(folder, policy)


def _frames(spec: str, clock: Clock, fast: bool) -> FrameSource:
    """The source; in real time opened in the background, so a device that blocks in open
    cannot keep the loop (its holds, stops and --duration) from starting."""
    source = open_source(spec, clock, fast=fast)
    return source if fast else BackgroundOpen(source)


def fly(
    model: str | Path,
    source: str,
    sink: str,
    config: DaemonConfig,
    provider: str = "cpu",
    record: Path | None = None,
    fast: bool = False,
    stop: StopRequest | None = None,
    overwrite: bool = False,
    mavlink_frame: str = "body_ned",
) -> RunStats:
    """Fly `model` from `source` to `sink` until stopped; `fast` runs on virtual time.

    `stop` (set by the signal handlers of `runtime.stopping`) is honoured at every stage:
    before the sink opens the run returns at once and sends nothing; after, the daemon sends
    its final hold and returns. `overwrite` lets a csv sink replace an existing file.
    """
    stop = stop or StopRequest()
    clock: Clock = FastClock() if fast else MonotonicClock()
    if sink.startswith("mavlink:") and config.rate_hz < PX4_MIN_RATE_HZ:
        log.warning(
            "%g Hz is below PX4's %g Hz offboard minimum: PX4 will leave offboard mode",
            config.rate_hz,
            PX4_MIN_RATE_HZ,
        )
    if stop.requested:
        log.info("stopped (%s) before start-up finished: nothing sent", stop.reason)
        return RunStats()
    with ExitStack() as stack:
        out = stack.enter_context(
            open_sink(sink, overwrite=overwrite, protect=(model,), mavlink_frame=mavlink_frame)
        )
        try:
            policy = OnnxPolicy(model, provider=provider)
            frames = stack.enter_context(_frames(source, clock, fast))
            recorder = stack.enter_context(_recorder(record, policy)) if record else None
        except EdgeLiquidError:
            send_hold(out, "startup_error", clock)
            raise
        what = f"{Path(model).name} on {policy.provider}"
        log.info("flying %s from %s to %s at %g Hz", what, source, sink, config.rate_hz)
        daemon = Daemon(policy, frames, out, config, clock, Notifier(), recorder, stop.event)
        stats = daemon.run()
    if stop.requested:
        log.info("stopped by %s", stop.reason)
    elif (error := getattr(frames, "error", None)) is not None:  # failed after the loop began
        raise error
    return stats
