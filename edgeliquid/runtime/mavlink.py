"""The MAVLink sink: body-frame velocity + yaw-rate setpoints and a 1 Hz heartbeat (pymavlink).

Each command becomes `SET_POSITION_TARGET_LOCAL_NED` in `MAV_FRAME_BODY_NED` (PX4; ArduPilot
reads body velocities in `MAV_FRAME_BODY_OFFSET_NED`, pass `frame=9`) with the type mask that
ignores position, acceleration and yaw, leaving vx, vy, vz and yaw_rate: 1479, built from
pymavlink's named flags. The hold command (all zeros) is a hover setpoint, so the stream that
PX4 offboard mode needs (≥2 Hz) never stops while the daemon runs; a heartbeat identifies us
as an onboard controller. pymavlink is imported here only, when a mavlink sink is opened.

CONN is any pymavlink connection string: `udpout:127.0.0.1:14540`, `tcp:HOST:PORT`,
`/dev/ttyTHS1,921600` (serial device, then baud after a comma; needs pyserial, which the
`mavlink` extra installs). A missing module or a device that cannot be opened is one
EdgeLiquidError line.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from edgeliquid.errors import EdgeLiquidError
from edgeliquid.runtime.sinks import CommandMessage, Sink

log = logging.getLogger(__name__)
BODY_NED = 8
FRAMES = {"body_ned": BODY_NED, "body_offset_ned": 9}  # --mavlink-frame: PX4, ArduPilot
HEARTBEAT_LOST_S = 3.0  # three missed 1 Hz heartbeats: the autopilot is gone
COMPANION_COMPONENT = 191  # MAV_COMP_ID_ONBOARD_COMPUTER
INSTALL_EXTRA = "pip install 'edgeliquid[mavlink]'"


def _mavlink_modules():
    try:
        from pymavlink import mavutil
        from pymavlink.dialects.v20 import common
    except ImportError:
        raise EdgeLiquidError(f"the mavlink sink needs pymavlink: {INSTALL_EXTRA}") from None
    return mavutil, common


NETWORK_SCHEMES = ("udp", "udpin", "udpout", "udpbcast", "tcp", "tcpin")


def check_address(device: str) -> None:
    """A network connection's HOST:PORT must resolve: pymavlink's UDP link would otherwise
    drop every setpoint silently (it swallows the send errors)."""
    scheme, sep, rest = device.partition(":")
    if not sep or scheme not in NETWORK_SCHEMES:
        return  # a serial device or a file
    host, _, port = rest.rpartition(":")
    if not port.isdigit() or int(port) > 65535:
        raise EdgeLiquidError(f"bad MAVLink connection {device!r}: expected {scheme}:HOST:PORT")
    try:
        socket.getaddrinfo(host or "0.0.0.0", int(port))
    except (socket.gaierror, UnicodeError) as e:
        why = getattr(e, "strerror", None) or str(e)
        raise EdgeLiquidError(f"cannot resolve MAVLink connection {device!r}: {why}") from None


def velocity_yaw_rate_mask() -> int:
    """type_mask that keeps vx, vy, vz and yaw_rate and ignores everything else (= 1479)."""
    _, mav = _mavlink_modules()
    ignored = (
        mav.POSITION_TARGET_TYPEMASK_X_IGNORE,
        mav.POSITION_TARGET_TYPEMASK_Y_IGNORE,
        mav.POSITION_TARGET_TYPEMASK_Z_IGNORE,
        mav.POSITION_TARGET_TYPEMASK_AX_IGNORE,
        mav.POSITION_TARGET_TYPEMASK_AY_IGNORE,
        mav.POSITION_TARGET_TYPEMASK_AZ_IGNORE,
        mav.POSITION_TARGET_TYPEMASK_YAW_IGNORE,
    )
    mask = 0
    for flag in ignored:
        mask |= flag
    return mask


class MavlinkSink(Sink):
    """Velocity + yaw-rate setpoints to an autopilot over any pymavlink connection."""

    def __init__(
        self,
        conn: str,
        system: int = 1,  # the vehicle's system id: a companion shares it
        component: int = COMPANION_COMPONENT,
        target: tuple[int, int] = (1, 1),  # autopilot system, component
        frame: int = BODY_NED,
        heartbeat_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,  # for heartbeat timing and time_boot_ms
    ) -> None:
        if frame not in (BODY_NED, 9):
            raise ValueError(f"frame must be 8 (BODY_NED) or 9 (BODY_OFFSET_NED), got {frame}")
        self.conn, self.system, self.component = conn, system, component
        self.target, self.frame, self.heartbeat_s = target, frame, heartbeat_s
        self.clock = clock
        self.name = f"mavlink:{conn}"
        self.mask = velocity_yaw_rate_mask()
        self._link: Any = None  # the pymavlink connection once open
        self._started = 0.0
        self._last_heartbeat = -float("inf")
        self.watch = AutopilotWatch()
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None

    def open(self) -> None:
        mavutil, _ = _mavlink_modules()
        device, _, baud = self.conn.partition(",")
        check_address(device)
        try:
            self._link = mavutil.mavlink_connection(
                device,
                baud=int(baud) if baud else 57600,
                source_system=self.system,
                source_component=self.component,
            )
        except ImportError as e:  # pymavlink imports pyserial only for a serial device
            raise EdgeLiquidError(
                f"MAVLink connection {self.conn!r} needs the {e.name or 'serial'} module: "
                f"{INSTALL_EXTRA}"
            ) from None
        except (OSError, ValueError) as e:  # pyserial's SerialException is an OSError
            raise EdgeLiquidError(f"cannot open MAVLink connection {self.conn!r}: {e}") from None
        self._started = self.clock()
        self._heartbeat(self._started)
        self._stop.clear()
        self._reader = threading.Thread(target=self._read, name="mavlink-read", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        """The autopilot's heartbeats (and their mode), read off the same link."""
        link = self._link
        while not self._stop.is_set() and link is not None:
            try:
                msg = link.recv_match(type="HEARTBEAT", blocking=True, timeout=0.2)
            except (OSError, ValueError):  # closed under us at the end
                return
            if msg is not None and msg.type != self._mavutil_onboard():
                self.watch.seen(time.monotonic(), _mode_of(msg))
            self.watch.check(time.monotonic())

    @staticmethod
    def _mavutil_onboard() -> int:
        _, mav = _mavlink_modules()
        return mav.MAV_TYPE_ONBOARD_CONTROLLER

    def _heartbeat(self, now: float) -> None:
        _, mav = _mavlink_modules()
        self._link.mav.heartbeat_send(
            mav.MAV_TYPE_ONBOARD_CONTROLLER, mav.MAV_AUTOPILOT_INVALID, 0, 0, mav.MAV_STATE_ACTIVE
        )
        self._last_heartbeat = now

    def send(self, message: CommandMessage) -> None:
        if self._link is None:
            raise OSError(f"{self.name} is not open")
        now = self.clock()
        if now - self._last_heartbeat >= self.heartbeat_s:
            self._heartbeat(now)
        forward, right, down, yaw_rate = message.command
        boot_ms = round((now - self._started) * 1000) & 0xFFFFFFFF
        self._link.mav.set_position_target_local_ned_send(
            boot_ms, *self.target, self.frame, self.mask,
            0.0, 0.0, 0.0, forward, right, down, 0.0, 0.0, 0.0, 0.0, yaw_rate,
        )  # fmt: skip

    def close(self) -> None:
        self._stop.set()
        if self._reader is not None:
            self._reader.join(timeout=1.0)
            self._reader = None
        if self._link is not None:
            self._link.close()
            self._link = None


def _mode_of(msg: Any) -> str:
    mavutil, _ = _mavlink_modules()
    return str(mavutil.mode_string_v10(msg))


class AutopilotWatch:
    """Logs when the autopilot's heartbeat is first seen, changes mode, or is lost."""

    def __init__(self, lost_after_s: float = HEARTBEAT_LOST_S) -> None:
        self.lost_after_s = lost_after_s
        self.mode: str | None = None  # the mode of the last heartbeat; None: not seen / lost
        self.last_seen: float | None = None

    def seen(self, now: float, mode: str) -> None:
        if self.mode is None:
            log.info("autopilot heartbeat seen: mode %s", mode)
        elif mode != self.mode:
            log.info("autopilot mode %s -> %s", self.mode, mode)
        self.mode, self.last_seen = mode, now

    def check(self, now: float) -> None:
        silent = now - (self.last_seen if self.last_seen is not None else now)
        if self.mode is not None and silent > self.lost_after_s:
            log.warning(
                "autopilot heartbeat lost: none for %.1f s (last mode %s)",
                silent,
                self.mode,
            )
            self.mode = None
