"""Frame sources: newest-frame capture, BGR → RGB, finite sources, reconnects, the simulator."""

import threading
import time

import cv2
import numpy as np
import pytest

from edgeliquid.errors import EdgeLiquidError
from edgeliquid.runtime import simsource as sim
from edgeliquid.runtime.sources import (
    CaptureSource,
    FastClock,
    FolderSource,
    OpenCVSource,
)
from edgeliquid.runtime.specs import open_source


def wait_for(predicate, timeout=3.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.005)
    return False


class FastDevice(CaptureSource):
    """A fake 500 Hz camera; `fail_reads` makes reads fail, `refuse` makes reopening fail."""

    name = "fake"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.grabs, self.connect_times = 0, []
        self.fail_reads = threading.Event()
        self.refuse = 0

    def _connect(self):
        self.connect_times.append(time.monotonic())
        if self.refuse > 0:
            self.refuse -= 1
            raise EdgeLiquidError("not yet")

    def _grab(self):
        time.sleep(0.002)
        if self.fail_reads.is_set():
            return None
        self.grabs += 1
        return np.full((4, 5, 3), self.grabs % 256, np.uint8)


def test_capture_thread_keeps_only_the_newest_frame():
    with FastDevice() as source:
        assert wait_for(lambda: source.grabs > 30)
        time.sleep(0.05)
        first = source.latest()
        time.sleep(0.05)
        second = source.latest()
    assert second.index > first.index + 5  # frames were dropped, not queued
    assert second.stamp > first.stamp
    assert second.image[0, 0, 0] == (second.index + 1) % 256  # the frame matches its number


def test_lost_live_source_reconnects_with_backoff():
    with FastDevice(backoff=(0.02, 0.08)) as source:
        assert wait_for(lambda: source.latest() is not None)
        source.refuse = 3
        source.fail_reads.set()
        assert wait_for(lambda: source.lost)
        source.fail_reads.clear()
        assert wait_for(lambda: not source.lost)
        before = source.latest().index
        assert wait_for(lambda: source.latest().index > before)
    gaps = np.diff(source.connect_times[1:])  # retries after the initial open
    assert len(gaps) == 3  # three refused, then the fourth try worked
    assert gaps[0] >= 0.035 and gaps[1] >= 0.075  # waits doubled: 0.02, 0.04, 0.08 s ...
    assert gaps[2] < 0.15  # ... and stopped growing at the 0.08 s cap


def _write_images(folder, colours):
    folder.mkdir()
    for i, bgr in enumerate(colours):
        cv2.imwrite(str(folder / f"{i:03d}.png"), np.full((6, 8, 3), bgr, np.uint8))


def test_folder_source_plays_once_in_name_order_as_rgb(tmp_path):
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (10, 20, 30)]
    _write_images(tmp_path / "imgs", colours)
    (tmp_path / "imgs" / "notes.txt").write_text("not an image")
    seen = {}

    def record():
        frame = source.latest()
        if frame is not None:
            seen[frame.index] = frame
        return source.finished

    with FolderSource(tmp_path / "imgs", fps=50) as source:
        assert wait_for(record)
        record()
    frames = [seen[i] for i in sorted(seen)]
    assert [f.index for f in frames] == list(range(len(colours)))
    for frame, (b, g, r) in zip(frames, colours, strict=True):
        assert tuple(frame.image[0, 0]) == (r, g, b)


def test_folder_source_paces_at_its_fps(tmp_path):
    _write_images(tmp_path / "imgs", [(i, i, i) for i in range(6)])
    start = time.monotonic()
    with FolderSource(tmp_path / "imgs", fps=20) as source:
        assert wait_for(lambda: source.finished)
    assert time.monotonic() - start >= 5 / 20 - 0.01


def test_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(EdgeLiquidError, match="no images"), FolderSource(tmp_path):
        pass


def test_video_file_is_read_as_rgb_and_finishes(tmp_path):
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (32, 24))
    for _ in range(5):
        writer.write(np.full((24, 32, 3), (200, 30, 10), np.uint8))  # BGR: blue-ish
    writer.release()
    source = OpenCVSource(str(path))
    assert not source.live
    with source:
        assert wait_for(lambda: source.finished)
    frame = source.latest()
    assert frame.index == 4 and frame.image.shape == (24, 32, 3)
    r, _, b = frame.image[12, 16].astype(int)
    assert b > 150 and r < 60  # came out RGB
    assert source.fps == pytest.approx(25.0)


def test_missing_camera_is_a_clear_error():
    with (
        pytest.raises(EdgeLiquidError, match="cannot open video source"),
        OpenCVSource("/dev/video-none"),
    ):
        pass


def test_open_source_picks_the_right_kind(tmp_path):
    _write_images(tmp_path / "imgs", [(0, 0, 0)])
    (tmp_path / "clip.mp4").write_bytes(b"")
    assert isinstance(open_source(str(tmp_path / "imgs")), FolderSource)
    assert open_source("2").target == 2
    assert open_source("/dev/video1").api == cv2.CAP_V4L2
    assert open_source("videotestsrc ! videoconvert ! appsink").api == cv2.CAP_GSTREAMER
    assert open_source("rtsp://10.0.0.2:8554/cam").target == "rtsp://10.0.0.2:8554/cam"
    assert not open_source(str(tmp_path / "clip.mp4")).live
    assert type(open_source("sim")).__name__ == "SimSource"
    with pytest.raises(EdgeLiquidError, match="no source"):
        open_source(str(tmp_path / "missing"))


# -- the simulator source ---------------------------------------------------------------------


def test_fast_sim_steps_once_per_command_with_virtual_stamps():
    clock = FastClock()
    config = sim.SimSourceConfig(fast=True, height=24, width=32, seed=3)
    with sim.SimSource(config, clock=clock) as source:
        first = source.latest()
        assert first.image.shape == (24, 32, 3) and first.image.dtype == np.uint8
        assert source.latest() is first  # no command, no step
        x0 = source.last_info["state"][0]
        for _ in range(10):
            clock.advance(0.1)
            source.command(np.array([2.0, 0, 0, 0], np.float32))
            frame = source.latest()
            assert frame.stamp == clock.now()
        assert frame.index == 10
        assert source.last_info["state"][0] != x0  # the commands flew the drone


def test_realtime_sim_delivers_frames_at_its_dt():
    config = sim.SimSourceConfig(height=24, width=32)
    with sim.SimSource(config) as source:
        time.sleep(0.55)
        frame = source.latest()
    assert 4 <= frame.index <= 6  # 10 Hz for ~0.55 s


def test_sim_starts_a_new_episode_when_one_ends():
    config = sim.SimSourceConfig(fast=True, height=24, width=32)
    with sim.SimSource(config, clock=FastClock()) as source:
        for _ in range(400):
            source.command(np.array([0, 0, 1.0, 0], np.float32))  # descend into the ground
            source.latest()
            if source.episodes > 1:
                break
    assert source.episodes == 2


def test_sim_source_spec_takes_a_shift_a_task_and_a_seed():
    from edgeliquid.runtime.specs import sim_config

    assert sim_config("sim") == sim.SimSourceConfig()
    assert sim_config("sim:winter+noise").shift == "winter+noise"
    assert sim_config("sim:task=follow") == sim.SimSourceConfig(task="follow")
    both = sim_config("sim:dusk,task=chain,seed=3", fast=True)
    assert both == sim.SimSourceConfig(shift="dusk", task="chain", seed=3, fast=True)
    for bad in ("sim:dusk,winter", "sim:task=", "sim:seed=-1", "sim:rate=5"):
        with pytest.raises(EdgeLiquidError, match=r"expected sim\[:SHIFT\]\[,task=TASK\]"):
            sim_config(bad)
    with pytest.raises(EdgeLiquidError, match="unknown task 'hike'"), open_source("sim:task=hike"):
        pass


def test_sim_source_flies_the_task():
    with open_source("sim:task=follow", clock=FastClock(), fast=True) as source:
        assert source.name == "sim:none,task=follow"
        start = source._env.scene.target.copy()
        for _ in range(30):
            source.command(np.zeros(4, np.float32))
            source.latest()
        assert np.hypot(*(source._env.scene.target - start)[:2]) > 0.5  # it walked away


def test_bad_sim_shift_is_a_clear_error():
    with pytest.raises(EdgeLiquidError, match="bad simulator settings"), open_source("sim:nope"):
        pass
