"""The flight recorder: episode files `edgeliquid train` reads, replayable bit for bit."""

import numpy as np
import pytest
from onnx_fixtures import HEIGHT, STATE, WIDTH, write_model

from edgeliquid import episodes as data
from edgeliquid.errors import EdgeLiquidError
from edgeliquid.runtime.daemon import Daemon, DaemonConfig
from edgeliquid.runtime.engine import OnnxPolicy
from edgeliquid.runtime.recorder import FlightRecorder, replay
from edgeliquid.runtime.service import fly
from edgeliquid.runtime.simsource import SimSource, SimSourceConfig
from edgeliquid.runtime.sinks import NullSink
from edgeliquid.runtime.sources import FastClock


def record(model, folder, steps, chunk_steps):
    clock = FastClock()
    policy = OnnxPolicy(model)
    source = SimSource(SimSourceConfig(fast=True, height=24, width=32), clock=clock)
    config = DaemonConfig(rate_hz=10, max_steps=steps)
    with source, FlightRecorder(folder, policy, chunk_steps=chunk_steps) as recorder:
        stats = Daemon(policy, source, NullSink(), config, clock=clock, recorder=recorder).run()
    return stats


def test_recording_is_a_dataset_and_replays_identically_across_resets(tmp_path):
    model = write_model(tmp_path / "nan.onnx", nan_after=30)  # NaN → hold + state reset
    stats = record(model, tmp_path / "rec", steps=250, chunk_steps=100)
    assert stats.resets >= 5
    episodes = data.load_dataset(tmp_path / "rec")
    assert [e.steps for e in episodes] == [100, 100, 50]
    first = episodes[0]
    assert first.frames.shape[1:] == (HEIGHT, WIDTH, 3)  # the graph's input, not the camera's
    assert first.states.shape == (100, STATE)
    assert first.meta["source"] == "flight" and len(first.meta["status"]) == 100
    assert "hold" in first.meta["status"] and "ok" in first.meta["status"]
    assert np.all(np.diff(first.meta["stamps"]) > 0)
    policy = OnnxPolicy(model)
    for episode in episodes:
        np.testing.assert_array_equal(replay(episode, policy), episode.commands)


def test_dt_and_states_are_what_the_policy_was_given(tmp_path):
    model = write_model(tmp_path / "m.onnx")
    record(model, tmp_path / "rec", steps=20, chunk_steps=50)
    (episode,) = data.load_dataset(tmp_path / "rec")
    assert episode.dt[0] == pytest.approx(0.1) and np.allclose(episode.dt, 0.1)
    assert not episode.states[0].any()  # a fresh start
    np.testing.assert_array_equal(episode.states[1:, 0], np.arange(1, 20))  # fixture's counter


def test_a_second_flight_is_appended(tmp_path):
    model = write_model(tmp_path / "m.onnx")
    record(model, tmp_path / "rec", steps=30, chunk_steps=20)
    record(model, tmp_path / "rec", steps=10, chunk_steps=20)
    manifest = data.read_manifest(tmp_path / "rec")
    assert [e["index"] for e in manifest["episodes"]] == [0, 1, 2]
    assert [e["steps"] for e in manifest["episodes"]] == [20, 10, 10]
    assert len(data.load_dataset(tmp_path / "rec")) == 3


def test_recording_into_a_collected_dataset_is_refused(tmp_path):
    folder = tmp_path / "collected"
    folder.mkdir()
    manifest = data.new_manifest(height=72, width=128, nominal_dt=0.1, shift="none", seed=0)
    data.write_manifest(folder, manifest)
    with pytest.raises(EdgeLiquidError, match="record into a new folder"):
        record(write_model(tmp_path / "m.onnx"), folder, steps=5, chunk_steps=5)


def test_run_record_option_writes_episodes(tmp_path):
    model = write_model(tmp_path / "m.onnx")
    config = DaemonConfig(rate_hz=10, max_steps=40)
    fly(model, "sim", "null", config, record=tmp_path / "rec", fast=True)
    (episode,) = data.load_dataset(tmp_path / "rec")
    assert episode.steps == 40
