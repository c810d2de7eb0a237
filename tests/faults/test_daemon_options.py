"""Issue 10, daemon options: --duration, --max-frame-age and --rate are bounded to what a
vehicle can fly with, MAVLink below PX4's 2 Hz warns, and a stop is immediate at any rate."""

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]
from onnx_fixtures import HEIGHT, WIDTH, write_model  # noqa: E402

from edgeliquid.cli import app  # noqa: E402
from edgeliquid.runtime.daemon import Daemon, DaemonConfig  # noqa: E402
from edgeliquid.runtime.engine import OnnxPolicy  # noqa: E402
from edgeliquid.runtime.sinks import Sink  # noqa: E402
from edgeliquid.runtime.sources import FrameSource, MonotonicClock  # noqa: E402


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("m") / "nav.onnx")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"duration_s": float("nan")}, "duration_s"),  # main: runs forever
        ({"duration_s": float("inf")}, "duration_s"),
        ({"duration_s": 0.0}, "duration_s"),
        ({"max_frame_age_s": 1e6}, "max_frame_age_s"),  # main: a frozen camera flies as ok
        ({"max_frame_age_s": 0.31}, "max_frame_age_s"),  # > 3 periods at 10 Hz
        ({"rate_hz": 2, "max_frame_age_s": 1.5}, "max_frame_age_s"),  # > 1 s
        ({"max_frame_age_s": float("nan")}, "max_frame_age_s"),
        ({"rate_hz": 0.05}, "rate_hz"),  # main: the final hold waits up to 20 s
        ({"rate_hz": 1000}, "rate_hz"),
        ({"rate_hz": float("nan")}, "rate_hz"),
        ({"max_steps": 0}, "max_steps"),
        ({"reset_after_s": float("inf")}, "reset_after_s"),
    ],
)
def test_out_of_range_options_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DaemonConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},  # the defaults: 10 Hz, 0.25 s
        {"rate_hz": 20, "max_frame_age_s": 0.25},  # the systemd unit's settings
        {"rate_hz": 100, "max_frame_age_s": 0.25},  # a 10 Hz camera under a fast loop
        {"rate_hz": 1, "max_frame_age_s": 1.0},
        {"rate_hz": 10, "max_frame_age_s": 0.3, "duration_s": 1e-3},
    ],
)
def test_settings_a_vehicle_flies_with_are_accepted(kwargs):
    DaemonConfig(**kwargs)


def test_frozen_config_cannot_be_edited_past_its_checks():
    with pytest.raises(AttributeError):
        DaemonConfig().max_frame_age_s = 1e6


@pytest.mark.parametrize(
    "args", [["--duration", "nan"], ["--max-frame-age", "1e6"], ["--rate", "0.05"]]
)
def test_cli_refuses_them_in_one_line(model, args):
    result = CliRunner().invoke(app, ["run", str(model), "--sink", "null", *args])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("edgeliquid: error: ") and result.output.count("\n") == 1


def test_mavlink_below_two_hz_warns(model, caplog):
    pytest.importorskip("pymavlink")
    from edgeliquid.runtime.service import fly

    config = DaemonConfig(rate_hz=1, max_steps=2)
    fly(model, "sim", "mavlink:udpout:127.0.0.1:9", config, fast=True)
    assert "below PX4's 2 Hz" in caplog.text


class StampSink(Sink):
    name = "stamps"

    def __init__(self):
        self.sent = []  # (monotonic time, reason)

    def send(self, message):
        self.sent.append((time.monotonic(), message.reason))


class StillCamera(FrameSource):
    def open(self):
        self._publish(np.zeros((HEIGHT, WIDTH, 3), np.uint8))


def test_stop_at_one_hz_sends_the_final_hold_at_once_not_a_period_later(model):
    sink, clock = StampSink(), MonotonicClock()
    source = StillCamera(clock)
    daemon = Daemon(OnnxPolicy(model), source, sink, DaemonConfig(rate_hz=1), clock)
    stopped = []

    def stop_soon():
        time.sleep(0.3)  # inside the first period's pacing wait
        stopped.append(time.monotonic())
        daemon.stop()

    with source:
        threading.Thread(target=stop_soon, daemon=True).start()
        daemon.run()
    final_t, reason = sink.sent[-1]
    assert reason == "shutdown"
    assert final_t - stopped[0] < 0.05  # main: ~0.7 s, the rest of the period
