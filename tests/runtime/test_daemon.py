"""The control loop and its fail-safe ladder, one fault per rung, mostly on a virtual clock."""

import logging
import socket
import threading
import time

import numpy as np
import pytest
from onnx_fixtures import HEIGHT, WIDTH, write_model

from edgeliquid.runtime.daemon import Daemon, DaemonConfig
from edgeliquid.runtime.engine import OnnxPolicy
from edgeliquid.runtime.notify import Notifier
from edgeliquid.runtime.sinks import NullSink, Sink
from edgeliquid.runtime.sources import CaptureSource, FastClock, FrameSource, MonotonicClock


class ListSink(Sink):
    name = "list"

    def __init__(self):
        self.messages = []

    def send(self, message):
        self.messages.append(message)


class ScriptedSource(FrameSource):
    """A new frame after every `every`-th command (like a camera at rate/every); can stall."""

    name = "scripted"

    def __init__(self, clock, every=1, stall_after=None, seed=0):
        super().__init__(clock)
        self.every, self.stall_after = every, stall_after
        self.rng = np.random.default_rng(seed)
        self.commands = []
        self.due = False

    def open(self):
        self._new()

    def _new(self):
        self._publish(self.rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8))

    def command(self, command):
        self.commands.append(np.asarray(command).copy())
        stalled = self.stall_after is not None and self._count >= self.stall_after
        self.due = len(self.commands) % self.every == 0 and not stalled

    def latest(self):  # the new frame turns up when the daemon next looks, like the fast sim
        if self.due:
            self.due = False
            self._new()
        return super().latest()


class Spy:
    """Wraps a policy: records dt per step; optional slow steps (real seconds) from step k."""

    def __init__(self, policy, slow_steps=(), slow_s=0.0):
        self.policy, self.slow_steps, self.slow_s = policy, set(slow_steps), slow_s
        self.limits, self.metadata = policy.limits, policy.metadata
        self.dts, self.count = [], 0

    prepare = property(lambda self: self.policy.prepare)
    state = property(lambda self: self.policy.state)
    reset = property(lambda self: self.policy.reset)

    def step(self, image, dt):
        self.dts.append(dt)
        self.count += 1
        if self.count - 1 in self.slow_steps:
            time.sleep(self.slow_s)
        return self.policy.step(image, dt)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {
        "plain": write_model(root / "plain.onnx"),
        "nan": write_model(root / "nan.onnx", nan_after=5),
        "loud": write_model(root / "loud.onnx", gain=10.0),
    }


def fly(model, source_kwargs=None, policy_wrap=None, sink=None, clock=None, **config):
    clock = clock or FastClock()
    policy = OnnxPolicy(model)
    policy = policy_wrap(policy) if policy_wrap else policy
    source = ScriptedSource(clock, **(source_kwargs or {}))
    sink = sink or ListSink()
    daemon = Daemon(policy, source, sink, DaemonConfig(**config), clock=clock)
    with source:
        stats = daemon.run()
    return stats, sink, source, policy


def test_fresh_frames_give_ok_commands_then_one_final_hold(models):
    stats, sink, source, _ = fly(models["plain"], rate_hz=20, max_steps=40)
    msgs = sink.messages
    assert [m.seq for m in msgs] == list(range(41))
    assert {m.status for m in msgs[:-1]} == {"ok"}
    assert (msgs[-1].status, msgs[-1].reason, msgs[-1].command) == ("hold", "shutdown", (0.0,) * 4)
    assert stats.steps == 40 and stats.holds == 1
    np.testing.assert_allclose(np.diff([m.t for m in msgs[:-1]]), 0.05)
    np.testing.assert_array_equal(source.commands[0], np.float32(msgs[0].command))


def test_duration_sets_the_number_of_ticks(models):
    stats, _, _, _ = fly(models["plain"], rate_hz=20, duration_s=3.0)
    assert stats.ticks == 61  # 60 commands in 3 s at 20 Hz, plus the final hold


def test_measured_dt_reaches_the_graph_and_slow_camera_repeats(models):
    spy = {}
    _, sink, _, _ = fly(
        models["plain"],
        {"every": 2},
        policy_wrap=lambda p: spy.setdefault("p", Spy(p)),
        rate_hz=20,
        max_steps=20,
    )
    assert spy["p"].count == 10  # one step per new frame, not per tick
    assert spy["p"].dts[0] == pytest.approx(0.1)  # nominal for the first frame
    np.testing.assert_allclose(spy["p"].dts[1:], 0.1)  # frames every 2 ticks of 50 ms
    msgs = sink.messages[:-1]
    assert all(a.command == b.command for a, b in zip(msgs[::2], msgs[1::2], strict=True))
    assert {m.status for m in msgs} == {"ok"}


def test_commands_are_clamped_to_metadata_limits(models):
    _, sink, _, policy = fly(models["loud"], rate_hz=10, max_steps=10)
    commands = np.array([m.command for m in sink.messages[:-1]])
    assert np.all(np.abs(commands) <= policy.limits + 1e-6)
    assert {m.status for m in sink.messages[:-1]} == {"degraded"}
    assert {m.reason for m in sink.messages[:-1]} == {"clamped"}


def test_stalled_source_holds_within_one_period_then_resets_state(models, caplog):
    with caplog.at_level(logging.WARNING, logger="edgeliquid.runtime.daemon"):
        stats, sink, source, _ = fly(
            models["plain"],
            {"stall_after": 10},
            rate_hz=20,
            max_steps=60,
            max_frame_age_s=0.12,
            reset_after_s=1.0,
        )
    last_stamp = source.latest().stamp
    msgs = sink.messages
    first_hold = next(m for m in msgs if m.status == "hold")
    assert first_hold.reason == "stale_frame"
    assert first_hold.t - (last_stamp + 0.12) <= 0.05 + 1e-9  # within one control period
    after = [m for m in msgs if m.t >= first_hold.t]
    assert all(m.status == "hold" and m.command == (0.0,) * 4 for m in after)
    assert stats.resets == 1 and "resetting the recurrent state" in caplog.text


def test_nan_output_holds_on_that_tick_and_recovers_after_reset(models):
    stats, sink, _, _ = fly(models["nan"], rate_hz=10, max_steps=20)
    statuses = [m.status for m in sink.messages[:-1]]
    assert statuses[:6] == ["ok"] * 6  # the fixture turns NaN on its 7th step
    assert (statuses[6], sink.messages[6].reason) == ("hold", "nonfinite")
    assert statuses[7:13] == ["ok"] * 6  # state reset: six clean steps again
    assert statuses[13] == "hold"
    assert stats.resets >= 2
    assert all(np.isfinite(m.command).all() for m in sink.messages)


def test_slow_step_holds_on_that_tick_and_logs_repeats(models, caplog):
    slow = {}
    with caplog.at_level(logging.WARNING, logger="edgeliquid.runtime.daemon"):
        stats, sink, _, _ = fly(
            models["plain"],
            policy_wrap=lambda p: slow.setdefault("p", Spy(p, slow_steps=range(5, 8), slow_s=0.12)),
            clock=MonotonicClock(),  # real time: the step budget is wall time
            rate_hz=20,
            max_steps=30,
            step_budget_s=0.02,
            overrun_log_after=3,
        )
    msgs = sink.messages[:-1]
    assert [m.status for m in msgs[:5]] == ["ok"] * 5
    assert (msgs[5].status, msgs[5].reason) == ("hold", "overrun")  # the slow step's own tick
    assert all(m.status == "hold" for m in msgs if m.reason == "overrun")
    assert stats.reasons["overrun"] >= 3 and "over budget 3 times in a row" in caplog.text
    assert msgs[-1].status == "ok"  # fast again: back to flying


class FailingSink(ListSink):
    name = "flaky"

    def send(self, message):
        if 10 <= message.seq < 30:
            raise OSError("network is unreachable")
        super().send(message)


def test_failing_sink_is_logged_and_the_loop_keeps_going(models, caplog):
    with caplog.at_level(logging.WARNING, logger="edgeliquid.runtime.daemon"):
        stats, sink, source, _ = fly(models["plain"], sink=FailingSink(), rate_hz=20, max_steps=50)
    assert stats.ticks == 51 and stats.sink_errors == 20
    assert [m.seq for m in sink.messages] == [*range(10), *range(30, 51)]
    assert sink.messages[-1].reason == "shutdown"
    assert "network is unreachable" in caplog.text
    assert len(source.commands) == 51  # the vehicle side kept getting every command


class DyingDevice(CaptureSource):
    """A fake camera at ~100 Hz that dies after `die_after` frames and needs 2 tries to return."""

    name = "dying"

    def __init__(self, die_after):
        super().__init__(backoff=(0.05, 0.1))
        self.die_after, self.grabs, self.connects, self.died_at = die_after, 0, 0, None

    def _connect(self):
        from edgeliquid.errors import EdgeLiquidError

        self.connects += 1
        if self.died_at is not None and self.connects < 4:
            raise EdgeLiquidError("device busy")

    def _grab(self):
        time.sleep(0.01)
        self.grabs += 1
        if self.grabs == self.die_after:
            self.died_at = time.monotonic()
            return None
        return np.full((HEIGHT, WIDTH, 3), self.grabs % 256, np.uint8)


def test_dying_source_holds_while_reconnecting_then_flies_again(models):
    policy, sink = OnnxPolicy(models["plain"]), ListSink()
    source = DyingDevice(die_after=30)
    config = DaemonConfig(rate_hz=20, duration_s=1.5, max_frame_age_s=0.1)
    with source:
        Daemon(policy, source, sink, config).run()
    assert source.connects >= 4  # the initial open, two refused retries, then success
    holds = [m for m in sink.messages if m.reason == "source_lost"]
    assert holds, "no hold while the source was lost"
    last_good = max(m.t for m in sink.messages if m.status == "ok" and m.t < holds[0].t)
    assert holds[0].t - last_good <= 0.05 + 0.04  # the very next tick (+ scheduling slack)
    assert holds[0].t - source.died_at <= 0.1 + 0.05 + 0.04  # max frame age + one period
    assert any(m.status == "ok" and m.t > holds[-1].t for m in sink.messages)


def test_sd_notify_ready_watchdog_stopping(models, tmp_path):
    address = str(tmp_path / "notify.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(address)
    server.settimeout(1.0)
    notifier = Notifier({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "2000000"})
    clock = FastClock()
    source = ScriptedSource(clock)
    with source, server:
        config = DaemonConfig(max_steps=5)  # frozen: set at construction
        daemon = Daemon(OnnxPolicy(models["plain"]), source, NullSink(), config, clock, notifier)
        daemon.run()
        received = []
        server.setblocking(False)
        while True:
            try:
                received.append(server.recv(4096).decode())
            except BlockingIOError:
                break
    assert received[0].startswith("READY=1")
    assert "WATCHDOG=1" in received
    assert received[-1] == "STOPPING=1"


def test_notifier_without_socket_is_silent():
    notifier = Notifier({})
    assert not notifier.enabled
    assert not notifier.ready() and not notifier.watchdog() and not notifier.stopping()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate_hz": 0}, "rate_hz"),
        ({"max_frame_age_s": -1}, "max_frame_age_s"),
        ({"rate_hz": 10, "step_budget_s": 0.5}, "step_budget_s"),
        ({"dt_range_s": (0.5, 0.1)}, "dt_range_s"),
    ],
)
def test_config_names_the_bad_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DaemonConfig(**kwargs)


class GreySource(ScriptedSource):
    def _new(self):
        self._publish(np.zeros((HEIGHT, WIDTH), np.uint8))  # no colour channels


def test_unusable_frame_holds_and_keeps_running(models):
    clock = FastClock()
    source, sink = GreySource(clock), ListSink()
    with source:
        Daemon(
            OnnxPolicy(models["plain"]), source, sink, DaemonConfig(max_steps=5), clock=clock
        ).run()
    assert [m.reason for m in sink.messages] == ["bad_frame"] * 5 + ["shutdown"]


class Broken(Spy):
    def step(self, image, dt):
        if self.count == 3:
            self.count += 1
            raise RuntimeError("ORT: invalid input")
        return super().step(image, dt)


def test_step_error_holds_that_tick_only(models):
    _, sink, _, _ = fly(models["plain"], policy_wrap=Broken, rate_hz=10, max_steps=8)
    assert [m.status for m in sink.messages[:-1]] == ["ok"] * 3 + ["hold"] + ["ok"] * 4
    assert sink.messages[3].reason == "step_error"


def test_finished_file_source_ends_the_run(models, tmp_path):
    import cv2

    from edgeliquid.runtime.sources import FolderSource

    (tmp_path / "imgs").mkdir()
    for i in range(5):
        cv2.imwrite(str(tmp_path / "imgs" / f"{i}.png"), np.full((30, 40, 3), 40 * i, np.uint8))
    source, sink = FolderSource(tmp_path / "imgs", fps=10), ListSink()
    with source:
        stats = Daemon(OnnxPolicy(models["plain"]), source, sink, DaemonConfig(rate_hz=40)).run()
    assert source.finished and stats.steps == 5
    assert sink.messages[-1].reason == "shutdown"


class Hung(Spy):
    """From step 3 on, a step never returns (until the test lets it go)."""

    def __init__(self, policy):
        super().__init__(policy)
        self.gate = threading.Event()

    def step(self, image, dt):
        if self.count == 3:
            self.count += 1
            self.gate.wait(30.0)
        return super().step(image, dt)


def test_a_step_that_never_returns_cannot_silence_the_stream_or_block_stop(models):
    clock, stop = MonotonicClock(), threading.Event()
    policy = Hung(OnnxPolicy(models["plain"]))
    source, sink = ScriptedSource(clock), ListSink()
    config = DaemonConfig(rate_hz=20, step_budget_s=0.02)
    daemon = Daemon(policy, source, sink, config, clock=clock, stop=stop)
    threading.Timer(0.5, stop.set).start()
    t0 = time.monotonic()
    try:
        with source:
            stats = daemon.run()
    finally:
        policy.gate.set()
    assert time.monotonic() - t0 < 0.5 + 0.2  # the stop ended the run with the step still out
    msgs = sink.messages
    assert [m.status for m in msgs[:3]] == ["ok"] * 3
    assert all(m.reason == "overrun" for m in msgs[3:-1]) and len(msgs[3:-1]) >= 7
    assert msgs[-1].reason == "shutdown" and stats.steps == 3
    gaps = np.diff([m.t for m in msgs[:-1]])
    assert gaps.max() < 0.05 + 0.03  # one message per 50 ms period, hung step or not
    assert 0.05 + 0.02 - 0.01 < msgs[3].t - msgs[2].t < 0.05 + 0.02 + 0.02  # at its budget


def test_the_guard_never_steps_a_new_frame_itself(models):
    """While the guard covers an overrun it ticks with may_step=False: a new frame gets the
    overrun hold even when the covered step returned a moment ago (busy already False), so
    the guard's thread never runs a step its own bookkeeping would then drop."""
    clock = FastClock()
    policy = Spy(OnnxPolicy(models["plain"]))
    with ScriptedSource(clock) as source:
        daemon = Daemon(policy, source, ListSink(), DaemonConfig(), clock=clock)
        assert not daemon._guard.busy
        assert daemon._tick(may_step=False)[1:3] == ("hold", "overrun")
        assert policy.count == 0
        assert daemon._tick()[1] == "ok" and policy.count == 1  # the loop's own tick steps
