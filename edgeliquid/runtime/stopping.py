"""Stop requests: SIGTERM, SIGINT and SIGHUP all set one event that start-up and the loop watch.

Standard library only, so `edgeliquid run` can take the signals over before its heavy imports
(numpy, onnxruntime, OpenCV): a signal then never lands as a `KeyboardInterrupt` inside an
import or a model load, it only asks to stop. What a stop does depends on when it comes:
before the sink is open the run exits 0 with one log line and sends nothing; once the sink
is open the daemon sends one final hold and exits 0 (see `edgeliquid.runtime.service.fly`).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

SIGNALS = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, n))


class StopRequest:
    """Set once by a stop signal (or by code); `event` is what waits wake up on."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason = ""
        self._asked = False  # set by a signal handler, before the event is

    @property
    def requested(self) -> bool:
        return self._asked or self.event.is_set()

    def stop(self, reason: str = "stop requested") -> None:
        self.reason = self.reason or reason
        self.event.set()

    def _on_signal(self, signum: int, _frame: object) -> None:
        # Not `event.set()` here: the handler runs in the main thread between bytecodes, maybe
        # while that thread is inside `event.wait()` holding the event's (non-reentrant) lock;
        # set() would then wait on it forever. A flag plus a helper thread that sets the event
        # once the lock is free is safe at any point.
        self._asked = True
        self.reason = self.reason or signal.Signals(signum).name
        threading.Thread(target=self.event.set, name="stop-signal", daemon=True).start()


_early: tuple[StopRequest, dict] | None = None


def _install(request: StopRequest) -> dict:
    if threading.current_thread() is not threading.main_thread():
        return {}  # only the main thread may set handlers; the caller can still stop()
    return {sig: signal.signal(sig, request._on_signal) for sig in SIGNALS}


def catch_early() -> None:
    """Take the stop signals over now (main thread); `on_signals()` then inherits them."""
    global _early
    if _early is None:
        request = StopRequest()
        _early = (request, _install(request))


@contextmanager
def on_signals() -> Iterator[StopRequest]:
    """A StopRequest set by SIGTERM/SIGINT/SIGHUP while inside.

    The old handlers come back afterwards, except after `catch_early()`: that process is
    the run, so once the run is over (everything closed) the stop signals are ignored; at
    interpreter exit Python would put back the default actions, and a late second Ctrl-C
    would then kill the finished run with status -2.
    """
    global _early
    if _early is not None:
        (request, _), _early = _early, None
        try:
            yield request
        finally:
            for sig in SIGNALS:
                signal.signal(sig, signal.SIG_IGN)
        return
    request = StopRequest()
    previous = _install(request)
    try:
        yield request
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
