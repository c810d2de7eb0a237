"""The offboard state machine on a fake clock: PX4's entry, loss and mask rules."""

import numpy as np

from edgeliquid.sim.autopilot import Autopilot, AutopilotConfig


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _stream(ap, clock, seconds, rate=10.0, command=(1.0, 0.0, 0.0, 0.2), frame=8, mask=1479):
    for _ in range(round(seconds * rate)):
        ap.setpoint(frame, mask, command[:3], command[3])
        clock.now += 1 / rate
        ap.tick()


def test_offboard_only_after_a_2hz_stream_and_ignores_setpoints_before():
    clock = Clock()
    ap = Autopilot(AutopilotConfig(), clock)
    _stream(ap, clock, 3.0, rate=1.0)  # 1 Hz: never enough
    assert ap.mode == "POSCTL" and not ap.command().any()
    _stream(ap, clock, 1.0)
    assert ap.mode == "OFFBOARD"
    assert ap.counts["before_offboard"] >= 3
    np.testing.assert_allclose(ap.command(), [1.0, 0.0, 0.0, 0.2], rtol=1e-6)


def test_setpoint_loss_engages_the_failsafe_after_com_of_loss_t_and_stays():
    clock = Clock()
    ap = Autopilot(AutopilotConfig(loss_timeout_s=1.0), clock)
    _stream(ap, clock, 2.0)
    last = ap.last_setpoint
    while ap.mode == "OFFBOARD":
        clock.now += 0.02
        ap.tick()
    failsafe = ap.events[-1]
    assert (failsafe.event, failsafe.mode) == ("failsafe", "LOITER")
    assert 1.0 < failsafe.t - last <= 1.0 + 0.02
    assert not ap.command().any()
    _stream(ap, clock, 2.0)  # as on PX4, a returning stream does not resume the flight
    assert ap.mode == "LOITER" and not ap.command().any()


def test_only_body_frames_with_a_velocity_mask_count():
    clock = Clock()
    ap = Autopilot(AutopilotConfig(), clock)
    assert not ap.setpoint(1, 1479, (1, 0, 0), 0)  # LOCAL_NED
    assert not ap.setpoint(8, 0x0C00, (1, 0, 0), 0)  # the wrong "velocity only" mask
    assert ap.setpoint(9, 1479, (1, 0, 0), 0)  # BODY_OFFSET_NED, as ArduPilot
    assert ap.counts["ignored"] == 2


def test_the_vehicle_flies_the_task_asked_and_refuses_an_unknown_one():
    from typer.testing import CliRunner

    from edgeliquid.cli import app
    from edgeliquid.sim.vehicle import Vehicle, VehicleConfig

    vehicle = Vehicle(VehicleConfig(task="chain", seed=3))
    vehicle.env.reset(seed=3)  # what run() does first
    assert vehicle.env.config.task == "chain" and vehicle.report()["task"] == "chain"
    result = CliRunner().invoke(app, ["sim", "serve", "--task", "hike", "--duration", "1"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "task must be one of reach, range, follow, chain, reacquire" in result.output
