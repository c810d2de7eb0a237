"""Worker processes for `collect` and `eval`, with the signals left to the parent.

The parent owns SIGINT and SIGTERM: inside `stop_on_signals()` either one raises `Stopped`
(an EdgeLiquidError: the CLI prints one line and exits 1), and leaving `imap` terminates the
pool, so no worker prints a BrokenPipeError or KeyboardInterrupt traceback and no semaphore
is leaked. Workers ignore SIGINT (Ctrl-C in a terminal reaches the whole process group) and
die on the SIGTERM that `Pool.terminate` sends. stdlib only.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from edgeliquid.errors import EdgeLiquidError

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(EdgeLiquidError):
    """SIGINT or SIGTERM arrived while work was under way."""


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT/SIGTERM raise `Stopped` here (once; later ones are ignored while cleaning up).

    A no-op outside the main thread, where Python cannot set signal handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        if not fired:
            fired.append(signum)
            raise Stopped(f"stopped by {signal.Signals(signum).name}")

    previous = {sig: signal.signal(sig, handler) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def imap(
    fn: Callable[[Any], Any],
    jobs: Iterable[Any],
    workers: int,
    initializer: Callable[..., None] | None = None,
    initargs: tuple = (),
    ordered: bool = True,
    chunksize: int = 1,
) -> Iterator[Any]:
    """`fn(job)` for each job in `workers` spawned processes; in job order if `ordered`.

    Close the iterator (`contextlib.closing`) so the pool ends with the caller's block.
    """
    context = multiprocessing.get_context("spawn")
    # Spawned children inherit an ignored SIGINT through exec, so even a worker that is
    # still importing never turns Ctrl-C into a traceback.
    previous = signal.getsignal(signal.SIGINT)
    main = threading.current_thread() is threading.main_thread()
    if main:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        pool = context.Pool(workers, _init_worker, (initializer, initargs))
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)
    with pool:  # __exit__ terminates the workers, also on Stopped or GeneratorExit
        run = pool.imap if ordered else pool.imap_unordered
        yield from run(fn, jobs, chunksize)


def _init_worker(initializer: Callable[..., None] | None, initargs: tuple) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if initializer is not None:
        initializer(*initargs)
