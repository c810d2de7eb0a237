"""Frame sources: each a small context manager that hands the daemon the newest RGB frame.

A capture thread reads as fast as the device delivers and keeps only the newest frame, stamped
with the clock's monotonic time (OpenCV/V4L2 queue several buffers, so a slow reader would
otherwise fly on old frames). Colour is converted BGR → RGB here, once. Live sources (camera,
V4L2 device, URL, GStreamer pipeline) that drop out are reopened with exponential back-off while
the daemon holds; finite ones (video file, image folder) play once at their frame rate and then
report `finished`.

`runtime.specs.open_source(spec)` maps the `--source` argument to a source (the simulator
source lives in `runtime.simsource`).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from edgeliquid.errors import EdgeLiquidError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff", ".webp")


class EndOfStream(Exception):
    """Raised by a finite source's `_grab` when it has delivered its last frame."""


@dataclass(frozen=True)
class Frame:
    """One RGB frame (uint8 HxWx3), its capture time on the daemon's clock, and its number."""

    image: np.ndarray
    stamp: float
    index: int


class Clock(Protocol):
    """Where the daemon and the sources read the time and wait."""

    def now(self) -> float: ...

    def sleep_until(self, deadline: float, wake: threading.Event | None = None) -> None:
        """Wait until `deadline`, or until `wake` is set (a stop must not wait a period)."""


class MonotonicClock:
    """Real time: `time.monotonic()`, and sleeping until a deadline or a wake-up."""

    def now(self) -> float:
        return time.monotonic()

    def sleep_until(self, deadline: float, wake: threading.Event | None = None) -> None:
        delay = deadline - time.monotonic()
        if delay <= 0:
            return
        if wake is None:
            time.sleep(delay)
        else:
            wake.wait(delay)


class FastClock:
    """Virtual time that jumps to each deadline at once: soak tests and fast simulation."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def sleep_until(self, deadline: float, wake: threading.Event | None = None) -> None:
        self._now = max(self._now, deadline)

    def advance(self, seconds: float) -> None:
        self._now += seconds


class FrameSource:
    """Base class: a context manager whose `latest()` is the newest frame (or None yet)."""

    name = "source"

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or MonotonicClock()
        self.lost = False  # the device dropped out and is being reopened
        self.finished = False  # a finite source delivered its last frame
        self._frame: Frame | None = None
        self._count = 0
        self._lock = threading.Lock()

    def open(self) -> None:
        """Start delivering frames; raise EdgeLiquidError if the source cannot be opened."""

    def close(self) -> None:
        """Stop and release the device."""

    def latest(self) -> Frame | None:
        with self._lock:
            return self._frame

    def command(self, command: np.ndarray) -> None:
        """The command the daemon just sent (only a simulated source acts on it)."""

    def _publish(self, image: np.ndarray) -> None:
        frame = Frame(image, self.clock.now(), self._count)
        with self._lock:
            self._frame = frame
            self._count += 1

    def __enter__(self) -> FrameSource:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CaptureSource(FrameSource):
    """A frame source read by a thread; subclasses implement `_connect`, `_grab`, `_release`."""

    live = True  # reopen on failure; False: a read failure ends the stream

    def __init__(
        self, clock: Clock | None = None, fps: float | None = None, backoff=(0.25, 4.0)
    ) -> None:
        super().__init__(clock)
        self.fps = fps  # pace reads at this rate (files); None: the device paces itself
        self.backoff = backoff
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _connect(self) -> None:
        raise NotImplementedError

    def _grab(self) -> np.ndarray | None:
        """The next RGB frame, None on a read failure, or raise EndOfStream."""
        raise NotImplementedError

    def _release(self) -> None:
        """Free the device (must be safe to call twice)."""

    def open(self) -> None:
        self._connect()
        self._thread = threading.Thread(target=self._run, name=f"{self.name}-capture", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            if self._thread.is_alive():  # stuck in a driver read: releasing under it can crash
                log.warning("%s did not stop within 5 s; leaving it to exit", self.name)
                return
        self._release()

    def _run(self) -> None:
        deadline = time.monotonic()
        while not self._stop.is_set():
            try:
                image = self._grab()
            except EndOfStream:
                self.finished = True
                return
            if image is None:
                if not self.live:
                    self.finished = True
                    return
                self._reconnect()
                continue
            self._publish(image)
            if self.fps:
                deadline = max(deadline + 1.0 / self.fps, time.monotonic() - 1.0)
                self._stop.wait(max(0.0, deadline - time.monotonic()))

    def _reconnect(self) -> None:
        """Reopen the device with exponential back-off until it works or we are stopped."""
        self.lost = True
        self._release()
        delay, limit = self.backoff
        while not self._stop.wait(delay):
            try:
                self._connect()
            except EdgeLiquidError as e:
                delay = min(2 * delay, limit)
                log.warning("%s still lost (%s); retrying in %.2f s", self.name, e, delay)
                continue
            log.warning("%s reconnected", self.name)
            self.lost = False
            return


class BackgroundOpen(FrameSource):
    """Opens `source` on a thread so a device that blocks in open cannot hold start-up hostage.

    The daemon starts flying at once and holds ("no_frame") until frames come; a stop or
    `--duration` ends the run even while the open still blocks (the thread is abandoned, it
    is a daemon thread). An open that fails, or takes longer than `timeout_s`, ends the run:
    `finished` turns True and `error` says why. `open()` waits up to `grace_s` first, so a
    source that fails at once (no such camera) is reported before anything flies.
    """

    def __init__(self, source: FrameSource, timeout_s: float = 20.0, grace_s: float = 0.5):
        super().__init__(source.clock)
        self.source, self.timeout_s, self.grace_s = source, timeout_s, grace_s
        self.name = getattr(source, "name", "source")
        self.error: EdgeLiquidError | None = None
        self._opened = threading.Event()
        self._done = threading.Event()
        self._closed = False
        self._started = 0.0
        self._thread = threading.Thread(target=self._open, name=f"{self.name}-open", daemon=True)

    def _open(self) -> None:
        try:
            self.source.open()
        except EdgeLiquidError as e:
            self.error = e
        else:
            with self._lock:
                if self._closed:  # the run ended while we were opening
                    self.source.close()
                    return
                self._opened.set()
        finally:
            self._done.set()

    def open(self) -> None:
        self._started = time.monotonic()
        self._thread.start()
        self._done.wait(self.grace_s)
        if self.error is not None:
            raise self.error

    @property
    def finished(self) -> bool:
        if self._opened.is_set():
            return self.source.finished
        if self.error is None and time.monotonic() - self._started > self.timeout_s:
            self.error = EdgeLiquidError(f"{self.name} did not open within {self.timeout_s:g} s")
        return self.error is not None

    @finished.setter
    def finished(self, value: bool) -> None:
        pass  # FrameSource.__init__ sets it; here it is derived

    @property
    def lost(self) -> bool:
        return self._opened.is_set() and self.source.lost

    @lost.setter
    def lost(self, value: bool) -> None:
        pass

    def latest(self) -> Frame | None:
        return self.source.latest() if self._opened.is_set() else None

    def command(self, command: np.ndarray) -> None:
        if self._opened.is_set():
            self.source.command(command)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            opened = self._opened.is_set()
        if opened:
            self.source.close()
        elif not self._done.is_set():
            log.warning("%s was still opening; abandoned", self.name)


def _bgr_to_rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _quiet_opencv() -> None:
    """OpenCV's own warnings on a failed open would repeat on every reconnect try; we log ours."""
    cv_logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if cv_logging is not None:
        cv_logging.setLogLevel(cv_logging.LOG_LEVEL_ERROR)


class OpenCVSource(CaptureSource):
    """A camera index, V4L2 device, video file, URL or GStreamer pipeline via cv2.VideoCapture."""

    def __init__(self, target: int | str, clock: Clock | None = None, **kwargs) -> None:
        super().__init__(clock, **kwargs)
        _quiet_opencv()
        self.target = target
        self.name = f"camera {target}" if isinstance(target, int) else str(target)
        self.api = _capture_api(target)
        self.live = not (isinstance(target, str) and Path(target).is_file())
        self._cap: cv2.VideoCapture | None = None

    def _connect(self) -> None:
        cap = cv2.VideoCapture(self.target, self.api)
        if not cap.isOpened():
            cap.release()
            raise EdgeLiquidError(f"cannot open video source {self.name}")
        if self.live:
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # drivers that honour it queue one frame
        elif self.fps is None:
            self.fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
        self._cap = cap

    def _grab(self) -> np.ndarray | None:
        ok, image = self._cap.read() if self._cap is not None else (False, None)
        if not ok or image is None:
            if not self.live:
                raise EndOfStream
            return None
        return _bgr_to_rgb(image)

    def _release(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def _capture_api(target: int | str) -> int:
    if isinstance(target, int):
        return cv2.CAP_ANY
    if "!" in target:
        return cv2.CAP_GSTREAMER
    if target.startswith("/dev/video"):
        return cv2.CAP_V4L2
    return cv2.CAP_ANY


class FolderSource(CaptureSource):
    """The images in a folder, in name order, at `fps`; finished after the last one."""

    live = False

    def __init__(self, folder: str | Path, clock: Clock | None = None, fps: float = 10.0) -> None:
        super().__init__(clock, fps=fps)
        self.folder = Path(folder)
        self.name = f"folder {self.folder}"
        self._paths: list[Path] = []

    def _connect(self) -> None:
        paths = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise EdgeLiquidError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {self.folder}")
        self._paths = paths

    def _grab(self) -> np.ndarray | None:
        while self._paths:
            path = self._paths.pop(0)
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is not None:
                return _bgr_to_rgb(image)
            log.warning("skipping unreadable image %s", path)
        raise EndOfStream
