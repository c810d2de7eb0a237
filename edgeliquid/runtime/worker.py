"""The step guard: policy steps run on the loop's own thread; a guard covers one that overruns.

Handing each step to a worker thread and waiting on it cost two thread wake-ups per tick
(measured 50–150 µs next to a 140–300 µs ONNX step; docs/bench/loop.md), so the loop thread
now calls the policy itself and only marks the step: `begin()` / `end()`, a lock and a clock
read each. The guard (the thread that called `Daemon.run`) waits in `watch()`; once a step has
run for `budget_s` it owns the stream: it sends the overrun hold and keeps ticking until the
step is back. `end()` then tells the loop thread its tick was sent for it: the late result is
dropped and the thread waits in `wait_back()` until the guard hands the loop back at its next
tick. A step that never returns strands only that (daemon) thread; after `close()` it sends
nothing, whenever it returns.
"""

from __future__ import annotations

import threading
import time

MIN_POLL_S = 1e-3  # the guard looks for a running step at least this far apart


class StepGuard:
    """Who sends the ticks: the loop thread, or the guard while a step is over budget."""

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s
        self._lock = threading.Lock()
        self._step = 0  # number of the step in flight; 0: none
        self._count = 0
        self._started = 0.0  # time.monotonic() at its start: the budget is wall time
        self._guarding = False  # the guard sends the ticks
        self._closed = False
        self._back = threading.Event()

    @property
    def busy(self) -> bool:
        """A step is in flight on the loop thread."""
        return self._step != 0

    @property
    def closed(self) -> bool:
        return self._closed

    # -- the loop thread ------------------------------------------------------------------------

    def begin(self) -> None:
        with self._lock:
            self._count += 1
            self._step, self._started = self._count, time.monotonic()

    def end(self) -> bool:
        """The step is back: True if its tick is still the loop's to send (not covered)."""
        with self._lock:
            self._step = 0
            return not self._guarding

    def wait_back(self) -> bool:
        """After a covered step, wait for the loop to be handed back; False: the run is over."""
        self._back.wait()
        self._back.clear()
        return not self._closed

    # -- the guard ------------------------------------------------------------------------------

    def watch(self, done: threading.Event) -> bool:
        """Wait until `done` (False) or a step has run `budget_s` (True: the guard now sends).

        With no step in flight it looks again after half a budget, so a step that starts in
        between is seen before its budget is out and the hold goes at start + budget_s.
        """
        poll = max(self.budget_s / 2, MIN_POLL_S)
        while not done.is_set():
            with self._lock:
                step, started = self._step, self._started
            if step == 0:
                done.wait(poll)
                continue
            left = started + self.budget_s - time.monotonic()
            if left > 0:
                done.wait(left)
                continue
            with self._lock:
                if self._step == step:  # still the same step: it overran
                    self._guarding = True
                    return True
        return False

    def hand_back(self) -> bool:
        """Give the loop back if the covered step has returned; False while it still runs."""
        with self._lock:
            if self._step != 0:
                return False
            self._guarding = False
        self._back.set()
        return True

    def close(self) -> None:
        """The run is over: a step that comes back later sends nothing and its thread ends."""
        with self._lock:
            self._closed = self._guarding = True
        self._back.set()
