"""The daemon's settings (`DaemonConfig`, validated) and what a run reports (`RunStats`).

Kept apart from the loop in `runtime.daemon` so the CLI, the service and the bench can build and
check a config without the loop's machinery.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np

RATE_RANGE_HZ = (1.0, 100.0)  # what autopilots take as a setpoint stream (see DaemonConfig)
MAX_FRAME_AGE_CAP_S = 1.0  # never fly on a frame older than this, whatever the rate
PX4_MIN_RATE_HZ = 2.0  # PX4 leaves offboard mode when setpoints come slower


@dataclass(frozen=True)
class DaemonConfig:
    """How the loop runs and when it falls back to hold.

    The rate lies in [1, 100] Hz: below 1 Hz no autopilot keeps a velocity setpoint stream
    alive (PX4 offboard wants > 2 Hz, ArduPilot guided velocity times out after 3 s), and above
    100 Hz the camera (≤ 60 fps) gives nothing new while a 57600-baud MAVLink link is full.
    A frame may be at most min(1 s, max(0.25 s, 3 periods)) old: longer, and a frozen camera's
    last command would keep going out as `ok` (0.25 s is the floor so that a 10 Hz camera
    still flies under a fast loop).
    """

    rate_hz: float = 10.0  # setpoint rate; PX4 offboard needs ≥ 2 Hz
    max_frame_age_s: float = 0.25  # an older frame is stale → hold
    step_budget_s: float | None = None  # wait this long for a step; None: 80 % of a period
    overrun_log_after: int = 3  # consecutive overruns before the warning
    reset_after_s: float = 1.0  # holding longer than this → reset the recurrent state
    dt_range_s: tuple[float, float] = (0.005, 0.5)  # measured dt is clamped into this
    duration_s: float | None = None  # stop after this long (None: until stopped)
    max_steps: int | None = None  # stop after this many ticks (None: no limit)
    stats_every_s: float = 5.0  # stats line period on stderr

    def __post_init__(self) -> None:
        low_rate, high_rate = RATE_RANGE_HZ
        if not low_rate <= self.rate_hz <= high_rate:  # False for NaN too
            raise ValueError(
                f"rate_hz must be in [{low_rate:g}, {high_rate:g}] Hz, got {self.rate_hz}"
            )
        if not 0 < self.max_frame_age_s <= self.max_frame_age_limit:
            raise ValueError(
                f"max_frame_age_s must be in (0, {self.max_frame_age_limit:g}] s at "
                f"{self.rate_hz:g} Hz, got {self.max_frame_age_s}"
            )
        if self.step_budget_s is not None and not 0 < self.step_budget_s <= self.period:
            raise ValueError(
                f"step_budget_s must be in (0, {self.period}] s (one period), "
                f"got {self.step_budget_s}"
            )
        if self.duration_s is not None and not 0 < self.duration_s < math.inf:
            raise ValueError(f"duration_s must be a finite number > 0 s, got {self.duration_s}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be ≥ 1 or None, got {self.max_steps}")
        if self.overrun_log_after < 1:
            raise ValueError(f"overrun_log_after must be ≥ 1, got {self.overrun_log_after}")
        for name in ("reset_after_s", "stats_every_s"):
            if not 0 < getattr(self, name) < math.inf:
                raise ValueError(f"{name} must be a finite number > 0 s, got {getattr(self, name)}")
        low, high = self.dt_range_s
        if not 0 < low < high < math.inf:
            raise ValueError(f"dt_range_s must be (low, high) with 0 < low < high, got {low, high}")

    @property
    def max_frame_age_limit(self) -> float:
        """The largest max_frame_age_s allowed at this rate (see the class docstring)."""
        return min(MAX_FRAME_AGE_CAP_S, max(0.25, 3 * self.period))

    @property
    def period(self) -> float:
        return 1.0 / self.rate_hz

    @property
    def budget(self) -> float:
        return self.step_budget_s if self.step_budget_s is not None else 0.8 * self.period


@dataclass
class RunStats:
    """What happened during a run (cumulative), plus the current stats window's latencies."""

    ticks: int = 0
    steps: int = 0  # policy steps that returned in time
    holds: int = 0
    degraded: int = 0
    misses: int = 0  # ticks that could not start on their deadline
    resets: int = 0  # recurrent-state resets by the ladder
    sink_errors: int = 0
    reasons: Counter = field(default_factory=Counter)
    window: deque = field(default_factory=lambda: deque(maxlen=4096))  # latencies, ms

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.window, q)) if self.window else float("nan")

    def line(self) -> str:
        return (
            f"{self.ticks} ticks, {self.steps} steps | step p50 {self.percentile(50):.2f} ms "
            f"p99 {self.percentile(99):.2f} ms | misses {self.misses} | holds {self.holds} "
            f"| degraded {self.degraded} | resets {self.resets} | sink errors {self.sink_errors}"
        )
