"""A stand-in for PX4's offboard mode, over MAVLink (pymavlink), for the simulated vehicle.

What it keeps from PX4 (docs: "Offboard Mode"; reference.md):
- HEARTBEAT at 1 Hz as MAV_AUTOPILOT_PX4 with its custom mode: POSCTL before offboard,
  OFFBOARD while flying setpoints, LOITER (hold) after the failsafe.
- Only `SET_POSITION_TARGET_LOCAL_NED` in MAV_FRAME_BODY_NED (8, PX4) or
  MAV_FRAME_BODY_OFFSET_NED (9, as ArduPilot reads body velocities) with the velocity +
  yaw-rate mask (1479) or the velocity-only mask (3527) is a setpoint; anything else is
  counted and ignored.
- Setpoints before offboard are not flown. Offboard is entered (as if the operator switched
  to it) only once setpoints have streamed at >= 2 Hz for `arm_window_s`.
- In offboard, no setpoint for `loss_timeout_s` (COM_OF_LOSS_T, default 1 s) → the failsafe:
  LOITER, the vehicle holds, an event is logged. As on PX4 the vehicle stays in hold (the
  operator would have to switch back), so a lost link never resumes flight on its own.

`Autopilot` is the state machine on an injected clock (no I/O); `MavlinkLink` runs it behind a
pymavlink `udpin:` connection on a receive thread.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeliquid.contract import HOLD

log = logging.getLogger(__name__)

BODY_FRAMES = {8: "BODY_NED", 9: "BODY_OFFSET_NED"}
VELOCITY_MASKS = (1479, 3527)  # velocity + yaw rate; velocity only (yaw rate then 0)
# PX4 custom modes: (main_mode, sub_mode) as pymavlink's px4_map decodes them
PX4_MODES = {"POSCTL": (3, 0), "OFFBOARD": (6, 0), "LOITER": (4, 3)}


@dataclass(frozen=True)
class AutopilotConfig:
    """PX4's offboard rules, with its parameter names where it has them."""

    loss_timeout_s: float = 1.0  # COM_OF_LOSS_T: setpoint gap that triggers the failsafe
    min_rate_hz: float = 2.0  # PX4 refuses offboard below this setpoint rate
    arm_window_s: float = 1.0  # the rate is measured over this window before entering

    def __post_init__(self) -> None:
        for name in ("loss_timeout_s", "min_rate_hz", "arm_window_s"):
            value = getattr(self, name)
            if not 0 < value < math.inf:
                raise ValueError(f"{name} must be a finite number > 0, got {value}")


@dataclass(frozen=True)
class Event:
    """A mode change or a failsafe, on the shared monotonic clock."""

    t: float  # time.monotonic() (the same clock in every process on one host)
    event: str  # offboard | failsafe
    mode: str
    detail: str = ""


class Autopilot:
    """Offboard state machine: feed it setpoints and ticks, read `command()` and `mode`."""

    def __init__(
        self, config: AutopilotConfig | None = None, clock: Callable[[], float] = time.monotonic
    ):
        self.config = config or AutopilotConfig()
        self.clock = clock
        self.mode = "POSCTL"
        self.events: list[Event] = []
        self.counts = {"setpoints": 0, "flown": 0, "ignored": 0, "before_offboard": 0}
        self.last_setpoint: float | None = None
        self._recent: deque[float] = deque()
        self._command = np.asarray(HOLD, np.float32)
        self._lock = threading.Lock()

    def setpoint(
        self, frame: int, mask: int, velocity: tuple[float, float, float], yaw_rate: float
    ) -> bool:
        """One SET_POSITION_TARGET_LOCAL_NED; True if it is a setpoint this autopilot takes."""
        if frame not in BODY_FRAMES or mask not in VELOCITY_MASKS:
            self.counts["ignored"] += 1
            return False
        now = self.clock()
        values = [*velocity, yaw_rate if mask == 1479 else 0.0]
        command = np.nan_to_num(np.asarray(values, np.float32))
        with self._lock:
            self.counts["setpoints"] += 1
            self.last_setpoint = now
            self._recent.append(now)
            if self.mode == "OFFBOARD":
                self._command = command
                self.counts["flown"] += 1
            else:
                self.counts["before_offboard"] += self.mode == "POSCTL"
            self._update(now)
        return True

    def tick(self) -> None:
        """Check the stream (call often: the failsafe is as late as the last tick)."""
        with self._lock:
            self._update(self.clock())

    def command(self) -> np.ndarray:
        """What the vehicle flies now: the last setpoint in offboard, else hold."""
        with self._lock:
            return self._command.copy() if self.mode == "OFFBOARD" else np.asarray(HOLD, np.float32)

    def _update(self, now: float) -> None:
        cfg = self.config
        while self._recent and now - self._recent[0] > cfg.arm_window_s:
            self._recent.popleft()
        if self.mode == "POSCTL" and len(self._recent) >= cfg.min_rate_hz * cfg.arm_window_s + 1:
            self._enter("offboard", "OFFBOARD", f"setpoints at >= {cfg.min_rate_hz:g} Hz", now)
        elif self.mode == "OFFBOARD" and self.last_setpoint is not None:
            gap = now - self.last_setpoint
            if gap > cfg.loss_timeout_s:
                self._command = np.asarray(HOLD, np.float32)
                detail = f"no setpoint for {gap:.3f} s (COM_OF_LOSS_T {cfg.loss_timeout_s:g} s)"
                self._enter("failsafe", "LOITER", detail, now)

    def _enter(self, event: str, mode: str, detail: str, now: float) -> None:
        self.mode = mode
        self.events.append(Event(now, event, mode, detail))
        log.warning("autopilot: %s -> %s (%s)", event, mode, detail)


def custom_mode(mode: str) -> int:
    main, sub = PX4_MODES[mode]
    return (main << 16) | (sub << 24)


class MavlinkLink:
    """`Autopilot` behind a pymavlink connection: setpoints in, 1 Hz heartbeats out."""

    def __init__(self, conn: str, autopilot: Autopilot, system: int = 1, component: int = 1):
        from pymavlink import mavutil

        self.autopilot, self.conn = autopilot, conn
        self._mavutil = mavutil
        self._link: Any = mavutil.mavlink_connection(
            conn, source_system=system, source_component=component
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="autopilot", daemon=True)
        self._last_heartbeat = -math.inf

    def __enter__(self) -> MavlinkLink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self._link.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            msg = self._link.recv_match(blocking=True, timeout=0.02)
            if msg is not None and msg.get_type() == "SET_POSITION_TARGET_LOCAL_NED":
                velocity = (msg.vx, msg.vy, msg.vz)
                self.autopilot.setpoint(msg.coordinate_frame, msg.type_mask, velocity, msg.yaw_rate)
            self.autopilot.tick()
            self._maybe_heartbeat()

    def _has_peer(self) -> bool:
        """A companion has spoken: pymavlink's udpin keeps its senders in `clients` (newer
        releases) or the last one in `last_address` (older); other links always have one."""
        link = self._link
        if hasattr(link, "clients") and getattr(link, "udp_server", False):
            return bool(link.clients)
        return getattr(link, "last_address", True) is not None

    def _maybe_heartbeat(self) -> None:
        now = time.monotonic()
        if now - self._last_heartbeat < 1.0 or not self._has_peer():
            return  # udpin: nowhere to send until a companion has spoken
        mav = self._mavutil.mavlink
        base = mav.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | mav.MAV_MODE_FLAG_SAFETY_ARMED
        mode = custom_mode(self.autopilot.mode)
        try:
            self._link.mav.heartbeat_send(
                mav.MAV_TYPE_QUADROTOR, mav.MAV_AUTOPILOT_PX4, base, mode, mav.MAV_STATE_ACTIVE
            )
        except OSError as e:  # the companion went away: keep flying the failsafe
            log.debug("heartbeat not sent: %s", e)
        self._last_heartbeat = now
