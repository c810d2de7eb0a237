"""The control loop: newest frame → policy step → clamped command → sink, at a fixed rate.

Every tick emits exactly one message, so the setpoint stream an autopilot watches never stops
and never repeats a stale command. The fail-safe ladder, checked each tick:

  no frame yet / frame older than max_frame_age   → hold ("no_frame", "stale_frame")
  source lost (reopening with back-off)           → hold ("source_lost") once its frame is stale
  policy step not back within the step budget     → hold ("overrun"); logged after N in a row
  frame the engine rejects (dtype, channels)      → hold ("bad_frame"), logged
  policy step raised                              → hold ("step_error"), logged
  non-finite command or state                     → hold ("nonfinite") and reset the state
  holding longer than reset_after_s               → reset the recurrent state (logged)
  sink raises                                     → logged (rate-limited); the loop keeps going
  stop() (SIGTERM/SIGINT/SIGHUP), --duration,     → one final hold ("shutdown") at once (the
  max_steps                                          pacing wait wakes on stop), flush, return

A policy command is `ok`, or `degraded` when it had to be clamped to the metadata's limits or
the measured dt fell outside `dt_range_s`. Ticks without a new frame (a 10 Hz camera under a
20 Hz loop) re-send the last command while its frame is younger than max_frame_age.

The loop (ticks and policy steps) runs on its own thread; the thread that called `run()` is the
guard (`runtime.worker.StepGuard`): when a step overruns its budget the guard sends that tick's
hold and keeps ticking until the step is back, so a hung step cannot silence the stream, and a
stop still sends the final hold at once. Time comes from an injected clock (`FastClock` runs
the loop without real-time waits; the step budget is always wall time) and measured dt between
frames is fed to dt-input graphs.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import NamedTuple

import numpy as np

from edgeliquid import contract
from edgeliquid.errors import EdgeLiquidError
from edgeliquid.runtime.daemon_config import DaemonConfig, RunStats
from edgeliquid.runtime.notify import Notifier
from edgeliquid.runtime.sinks import CommandMessage, Sink
from edgeliquid.runtime.sources import Clock, Frame, FrameSource, MonotonicClock
from edgeliquid.runtime.worker import StepGuard

log = logging.getLogger(__name__)
HOLD = np.asarray(contract.HOLD, np.float32)


class _StepResult(NamedTuple):  # a tuple: built every tick, cheaper than a dataclass
    command: np.ndarray
    latency_ms: float
    state_before: np.ndarray | None  # only kept for the recorder
    state_finite: bool


class Daemon:
    """Flies `policy` on `source` frames, sending one message per tick to `sink`."""

    def __init__(
        self,
        policy,
        source: FrameSource,
        sink: Sink,
        config: DaemonConfig | None = None,
        clock: Clock | None = None,
        notifier: Notifier | None = None,
        recorder=None,
        stop: threading.Event | None = None,  # set by a signal handler: see runtime.stopping
    ) -> None:
        self.policy, self.source, self.sink = policy, source, sink
        self.config = config or DaemonConfig()
        self.clock = clock or MonotonicClock()
        self.notifier = notifier or Notifier({})
        self.recorder = recorder
        self.stats = RunStats()
        self.limits = np.asarray(policy.limits, np.float32)
        self._highs = self.limits.tolist()  # symmetric limits, float32 values, exact
        self.nominal_dt = float(policy.metadata.nominal_dt)
        self._stop = stop if stop is not None else threading.Event()
        self._guard = StepGuard(self.config.budget)
        self._loop_done = threading.Event()
        self._error: BaseException | None = None
        self._start = self._deadline = self._next_stats = 0.0
        self._reset_pending = False
        self._last_index = -1  # index of the last frame handed to the policy
        self._last_stamp: float | None = None
        self._last: tuple[np.ndarray, str, str, float] = (HOLD, "hold", "no_frame", 0.0)
        self._hold_since: float | None = None
        self._overruns = 0
        self._seq = 0
        self._last_sink_log = -float("inf")

    def stop(self) -> None:
        """Ask the loop to finish its tick, send a final hold and return (signal-safe)."""
        self._stop.set()

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> RunStats:
        """Run until stopped, out of duration/steps, or the finite source ran out.

        The loop runs on its own thread; this one guards it (see the module docstring) and
        stays free for signal handlers.
        """
        self._start = self._deadline = self.clock.now()
        self._next_stats = self._start + self.config.stats_every_s
        self.notifier.ready(f"flying at {self.config.rate_hz:g} Hz")
        loop = threading.Thread(target=self._loop, name="control-loop", daemon=True)
        try:
            loop.start()
            while self._guard.watch(self._loop_done) and self._cover():
                pass
        finally:
            covering = self._guard.busy
            self._guard.close()  # the loop thread sends nothing more, now or when its step returns
            if not covering:
                loop.join(self.config.period + self.config.budget)
            self._shutdown()
        if self._error is not None:
            raise self._error
        return self.stats

    def _loop(self) -> None:
        """The control loop's thread: tick, send, pace; paused while the guard covers a step."""
        try:
            while not self._should_stop():
                verdict = self._tick()
                if verdict is None:  # the guard sent this tick (the step overran)
                    if not self._guard.wait_back():
                        return
                    continue
                self._cycle(verdict)
        except BaseException as e:  # raised again by run(), after the final hold
            self._error = e
        finally:
            self._loop_done.set()

    def _cover(self) -> bool:
        """The guard: send the overrun hold, tick until the step is back; False: stopped."""
        self._last = self._overrun(f"step took longer than {self.config.budget * 1e3:.1f} ms")
        self._cycle(self._last)
        while not self._guard.hand_back():
            if self._should_stop():
                return False
            verdict = self._tick(may_step=False)  # the step may return just now: not ours
            assert verdict is not None  # the guard never steps, so it always has a verdict
            self._cycle(verdict)
        return True

    def _cycle(self, verdict: tuple[np.ndarray, str, str, float]) -> None:
        """One tick's output, then the wait for the next: whoever owns the loop calls this."""
        self._emit(*verdict)
        self.notifier.watchdog()
        self._next_stats = self._maybe_stats(self._next_stats)
        self._deadline = self._pace(self._deadline)

    def _should_stop(self) -> bool:
        cfg, now = self.config, self.clock.now()
        if self._stop.is_set() or self._guard.closed:
            return True
        if cfg.duration_s is not None and now - self._start >= cfg.duration_s - 1e-9:
            return True
        if cfg.max_steps is not None and self.stats.ticks >= cfg.max_steps:
            return True
        if not self.source.finished:  # checked first: once finished, latest() is the last frame
            return False
        frame = self.source.latest()
        if frame is None or frame.index == self._last_index:
            log.info("%s finished", getattr(self.source, "name", "source"))
            return True
        return False

    def _pace(self, deadline: float) -> float:
        """Sleep until the next deadline; a tick that starts a period late is a miss."""
        deadline += self.config.period
        now = self.clock.now()
        if now > deadline:
            self.stats.misses += 1
            if now > deadline + self.config.period:
                return now  # re-anchor instead of bursting to catch up
        self.clock.sleep_until(deadline, self._stop)  # a stop wakes it: the final hold goes now
        return deadline

    def _maybe_stats(self, next_stats: float) -> float:
        now = self.clock.now()
        if now < next_stats:
            return next_stats
        line = self.stats.line()
        log.info(line)
        self.notifier.status(line)
        self.stats.window.clear()
        return now + self.config.stats_every_s

    def _shutdown(self) -> None:
        try:
            self._emit(HOLD, "hold", "shutdown", 0.0)
        finally:
            try:
                self.sink.flush()
            except Exception as e:  # a broken sink must not turn a clean stop into a crash
                log.warning("flushing %s failed: %s", self.sink.name, e)
            self.notifier.stopping()
            log.info("stopped: %s", self.stats.line())

    # -- one tick ---------------------------------------------------------------------------

    def _tick(self, may_step: bool = True) -> tuple[np.ndarray, str, str, float] | None:
        """(command, status, reason, latency_ms) for this tick; None if the guard sent it.
        The guard ticks with `may_step=False`: a new frame then gets the overrun hold, never
        a step on the guard's thread (the covered step can return between its checks)."""
        now = self.clock.now()
        frame = self.source.latest()
        fault = self._frame_fault(frame, now)
        if fault or frame is None:
            return HOLD, "hold", fault, 0.0
        if frame.index == self._last_index:
            return self._last
        if not may_step or self._guard.busy:
            return self._overrun("previous step still running")
        verdict = self._step(frame)
        if verdict is not None:
            self._last = verdict
        return verdict

    def _frame_fault(self, frame: Frame | None, now: float) -> str:
        if frame is None:
            return "source_lost" if self.source.lost else "no_frame"
        if now - frame.stamp > self.config.max_frame_age_s:
            return "source_lost" if self.source.lost else "stale_frame"
        return ""

    def _measured_dt(self, frame: Frame) -> tuple[float, bool]:
        """dt since the last stepped frame, clamped; True if it had to be clamped."""
        if self._last_stamp is None:
            return self.nominal_dt, False
        low, high = self.config.dt_range_s
        raw = frame.stamp - self._last_stamp
        dt = min(max(raw, low), high)
        return dt, dt != raw

    def _step(self, frame: Frame) -> tuple[np.ndarray, str, str, float] | None:
        dt, dt_clamped = self._measured_dt(frame)
        try:
            image = self.policy.prepare(frame.image)
        except EdgeLiquidError as e:
            log.warning("unusable frame from %s: %s", getattr(self.source, "name", "source"), e)
            self._last_index = frame.index
            return HOLD, "hold", "bad_frame", 0.0
        reset, self._reset_pending = self._reset_pending, False
        self._last_index, self._last_stamp = frame.index, frame.stamp
        self._guard.begin()
        try:
            result = self._policy_step(image, dt, reset)
        except Exception as e:  # the policy failed (ORT error, bad output): hold, keep flying
            if not self._guard.end():
                return None  # too late: the guard has sent this tick
            log.warning("policy step failed: %s", e)
            return HOLD, "hold", "step_error", 0.0
        if not self._guard.end():
            return None
        self._overruns = 0
        self.stats.steps += 1
        self.stats.window.append(result.latency_ms)
        verdict = self._judge(frame, result, dt_clamped)
        if self.recorder is not None:
            state, command = result.state_before, result.command
            self.recorder.add(image, dt, state, command, frame.stamp, verdict[1])
        return verdict

    def _policy_step(self, image: np.ndarray, dt: float, reset: bool) -> _StepResult:
        if reset:
            self.policy.reset()
        state_before = self.policy.state if self.recorder is not None else None
        t0 = time.perf_counter()
        command = self.policy.step(image, dt)
        latency_ms = (time.perf_counter() - t0) * 1e3
        # one reduction: NaN or ±inf anywhere makes the sum non-finite (so would a sum past
        # 3.4e38, which no sane state reaches: treated the same, as a broken state)
        finite = math.isfinite(self.policy.state.sum())
        return _StepResult(command, latency_ms, state_before, finite)

    def _judge(self, frame, result: _StepResult, dt_clamped: bool):
        """Turn a step's raw output into (command, status, reason, latency)."""
        latency = result.latency_ms
        values = result.command.tolist()  # 4 Python floats: cheaper than numpy at this size
        if not (math.isfinite(sum(values)) and result.state_finite):  # NaN/inf anywhere
            self._request_reset("non-finite policy output")
            return HOLD, "hold", "nonfinite", latency
        if self.clock.now() - frame.stamp > self.config.max_frame_age_s:
            return HOLD, "hold", "stale_frame", latency
        if any(abs(v) > high for v, high in zip(values, self._highs, strict=True)):
            clipped = [
                min(max(v, -high), high) for v, high in zip(values, self._highs, strict=True)
            ]
            return np.asarray(clipped, np.float32), "degraded", "clamped", latency
        if dt_clamped:
            return result.command, "degraded", "dt_clamped", latency
        return result.command, "ok", "", latency

    def _overrun(self, why: str) -> tuple[np.ndarray, str, str, float]:
        self._overruns += 1
        if self._overruns == self.config.overrun_log_after:
            log.warning(
                "policy step over budget %d times in a row (%s): holding", self._overruns, why
            )
        return HOLD, "hold", "overrun", 0.0

    def _request_reset(self, why: str) -> None:
        log.warning("%s: resetting the recurrent state", why)
        self._reset_pending = True
        self._last_stamp = None  # the first step after a reset uses the nominal dt
        self.stats.resets += 1

    # -- output -----------------------------------------------------------------------------

    def _emit(self, command: np.ndarray, status: str, reason: str, latency_ms: float) -> None:
        now = self.clock.now()
        self._track_holds(status, now)
        message = CommandMessage.make(self._seq, now, command, status, reason, latency_ms)
        self._seq += 1
        self.stats.ticks += 1
        self.stats.holds += status == "hold"
        self.stats.degraded += status == "degraded"
        if reason:
            self.stats.reasons[reason] += 1
        try:
            self.sink.send(message)
        except Exception as e:  # any sink failure is logged; the loop (and the ladder) go on
            self._sink_failed(e, now)
        self.source.command(command)

    def _track_holds(self, status: str, now: float) -> None:
        if status != "hold":
            self._hold_since = None
            return
        if self._hold_since is None:
            self._hold_since = now
        elif now - self._hold_since > self.config.reset_after_s and not self._reset_pending:
            self._request_reset(f"holding for {now - self._hold_since:.2f} s")
            self._hold_since = now

    def _sink_failed(self, error: Exception, now: float) -> None:
        self.stats.sink_errors += 1
        if now - self._last_sink_log >= self.config.stats_every_s:
            log.warning(
                "sink %s failed (%d so far): %s", self.sink.name, self.stats.sink_errors, error
            )
            self._last_sink_log = now
