"""`edgeliquid run` as a function: wire model, source, sink, recorder and systemd into a Daemon.

Order matters for safety: the sink opens first, so when the model or the source cannot be
opened the only thing ever sent is one hold command before the error is raised. Signals
(SIGTERM from systemd, Ctrl-C) ask the loop to stop; it then sends its final hold and flushes.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from edgeliquid.errors import EdgeLiquidError
from edgeliquid.runtime.daemon import HOLD, Daemon, DaemonConfig, RunStats
from edgeliquid.runtime.engine import OnnxPolicy
from edgeliquid.runtime.notify import Notifier
from edgeliquid.runtime.sinks import CommandMessage, Sink, open_sink
from edgeliquid.runtime.sources import Clock, FastClock, MonotonicClock, open_source

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


@contextmanager
def stop_on_signals(daemon: Daemon) -> Iterator[Daemon]:
    """SIGTERM and SIGINT ask `daemon` to stop cleanly (main thread only); restored after."""
    previous = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, lambda *_: daemon.stop())
    try:
        yield daemon
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


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


def fly(
    model: str | Path,
    source: str,
    sink: str,
    config: DaemonConfig,
    provider: str = "cpu",
    record: Path | None = None,
    fast: bool = False,
) -> RunStats:
    """Fly `model` from `source` to `sink` until stopped; `fast` runs on virtual time."""
    clock: Clock = FastClock() if fast else MonotonicClock()
    with ExitStack() as stack:
        out = stack.enter_context(open_sink(sink))
        try:
            policy = OnnxPolicy(model, provider=provider)
            frames = stack.enter_context(open_source(source, clock, fast=fast))
        except EdgeLiquidError:
            send_hold(out, "startup_error", clock)
            raise
        recorder = stack.enter_context(_recorder(record, policy)) if record else None
        what = f"{Path(model).name} on {policy.provider}"
        log.info("flying %s from %s to %s at %g Hz", what, source, sink, config.rate_hz)
        daemon = Daemon(policy, frames, out, config, clock, Notifier(), recorder)
        with stop_on_signals(daemon):
            return daemon.run()
