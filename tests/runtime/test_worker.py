"""The step guard: who sends the ticks while the loop thread is inside a policy step."""

import threading
import time

from edgeliquid.runtime.worker import StepGuard


def test_a_step_within_budget_stays_the_loops_and_watch_ends_with_the_loop():
    guard, done = StepGuard(budget_s=0.05), threading.Event()
    guard.begin()
    assert guard.busy
    assert guard.end() and not guard.busy  # its tick is still the loop's to send
    threading.Timer(0.02, done.set).start()
    t0 = time.monotonic()
    assert guard.watch(done) is False  # the loop ended: nothing to cover
    assert time.monotonic() - t0 < 1.0


def test_an_overrun_is_covered_at_its_budget_and_handed_back_after_it_returns():
    guard, done = StepGuard(budget_s=0.03), threading.Event()
    guard.begin()
    t0 = time.monotonic()
    assert guard.watch(done) is True  # the guard now sends the ticks
    assert 0.03 <= time.monotonic() - t0 < 0.5
    assert not guard.hand_back()  # the step is still running
    assert guard.end() is False  # its tick was sent for it: drop the late result
    assert guard.hand_back()
    assert guard.wait_back()  # the loop goes on
    guard.begin()
    assert guard.end()  # the next step is the loop's again


def test_after_close_a_late_step_sends_nothing_and_its_thread_ends():
    guard = StepGuard(budget_s=0.03)
    guard.begin()
    guard.close()
    assert guard.closed and guard.end() is False and guard.wait_back() is False
