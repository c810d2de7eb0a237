"""The MAVLink sink, decoded by a pymavlink receiver on loopback."""

import socket

import numpy as np
import pytest
from onnx_fixtures import HEIGHT, WIDTH, write_model

from edgeliquid.runtime.engine import OnnxPolicy
from edgeliquid.runtime.sinks import CommandMessage

mavutil = pytest.importorskip("pymavlink.mavutil")
from edgeliquid.runtime.mavlink import MavlinkSink, velocity_yaw_rate_mask  # noqa: E402


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class FakeTime:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def _receive_all(receiver):
    out = []
    while (msg := receiver.recv_match(blocking=True, timeout=0.5)) is not None:
        out.append(msg)
    return out


def test_mask_is_velocity_plus_yaw_rate():
    assert velocity_yaw_rate_mask() == 1479 == 0b010111000111


def test_receiver_decodes_heartbeats_and_body_frame_setpoints(tmp_path):
    policy = OnnxPolicy(write_model(tmp_path / "m.onnx"))
    port = _free_port()
    receiver = mavutil.mavlink_connection(f"udpin:127.0.0.1:{port}")
    fake_time = FakeTime()
    sink = MavlinkSink(f"udpout:127.0.0.1:{port}", clock=fake_time)
    rng = np.random.default_rng(0)
    sent = []
    with sink:
        for seq in range(25):  # 2.5 s of a 10 Hz stream
            command = policy.step(rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8), 0.1)
            sent.append(command)
            sink.send(CommandMessage.make(seq, fake_time.now, command, "ok"))
            fake_time.now += 0.1
        received = _receive_all(receiver)
    receiver.close()
    beats = [m for m in received if m.get_type() == "HEARTBEAT"]
    targets = [m for m in received if m.get_type() == "SET_POSITION_TARGET_LOCAL_NED"]
    assert len(beats) == 3  # at 0 s (open), 1 s and 2 s
    assert beats[0].type == mavutil.mavlink.MAV_TYPE_ONBOARD_CONTROLLER
    assert len(targets) == len(sent)
    for msg, command in zip(targets, sent, strict=True):
        assert (msg.coordinate_frame, msg.type_mask) == (8, 1479)
        assert (msg.target_system, msg.target_component) == (1, 1)
        np.testing.assert_array_equal(
            np.float32([msg.vx, msg.vy, msg.vz, msg.yaw_rate]), np.float32(command)
        )
    assert [m.time_boot_ms for m in targets[:3]] == [0, 100, 200]
    assert targets[0].get_srcSystem() == 1 and targets[0].get_srcComponent() == 191


def test_hold_is_a_zero_velocity_setpoint():
    port = _free_port()
    receiver = mavutil.mavlink_connection(f"udpin:127.0.0.1:{port}")
    with MavlinkSink(f"udpout:127.0.0.1:{port}") as sink:
        sink.send(CommandMessage.make(0, 0.0, np.zeros(4), "hold", "shutdown"))
        received = _receive_all(receiver)
    receiver.close()
    (target,) = [m for m in received if m.get_type() == "SET_POSITION_TARGET_LOCAL_NED"]
    assert (target.vx, target.vy, target.vz, target.yaw_rate) == (0.0, 0.0, 0.0, 0.0)


def test_frame_must_be_a_body_frame():
    with pytest.raises(ValueError, match="BODY_NED"):
        MavlinkSink("udpout:127.0.0.1:14540", frame=1)
