"""The flight recorder (`run --record DIR`): what the policy saw and said, as episode files.

Every policy step is kept: the frame as the graph took it (already resized), the dt it was
given, the recurrent state before the step and the raw command it returned (before clamping),
plus the time stamp and the step's status in the episode's `meta`. Chunks of `chunk_steps`
steps are written with `edgeliquid.episodes.save_episode` and listed in a `manifest.json` kept
complete after every chunk, so `edgeliquid train DIR` can fine-tune on real flights (a crash
loses at most the chunk in memory); a second flight into the same folder is appended.
`replay()` feeds a recording back through an .onnx model and gets the same commands bit for
bit (the stored states make every step reproducible, resets included).

Files are written on a background thread so a slow SD card never stalls the control loop; if
the writer falls `max_pending` chunks behind, the newest chunk is dropped with a warning.
At start-up the folder is locked (`flock` on `.record.lock`, so a second run into it is
refused instead of both losing a flight) and checked writable with a probe file, so a folder
that cannot take episodes stops the run before it flies rather than at shutdown.
"""

from __future__ import annotations

import fcntl
import logging
import os
import queue
import tempfile
import threading
from pathlib import Path

import numpy as np

from edgeliquid import episodes
from edgeliquid.errors import EdgeLiquidError

log = logging.getLogger(__name__)
LOCK_NAME = ".record.lock"  # flock'ed while a run records into the folder


class FlightRecorder:
    """Collects policy steps and writes them as episodes `episode_000000.npz`, ... in `folder`."""

    def __init__(self, folder: str | Path, policy, chunk_steps: int = 300, max_pending: int = 2):
        if chunk_steps < 1:
            raise ValueError(f"chunk_steps must be ≥ 1, got {chunk_steps}")
        self.folder = Path(folder)
        self.chunk_steps = chunk_steps
        meta = policy.metadata
        self.meta = {
            "source": "flight",
            "model": Path(getattr(policy, "path", "model")).name,
            "model_sha256": meta.sha256,
            "nominal_dt": meta.nominal_dt,
            "commands": "raw policy output before clamping",
            "states": "policy recurrent state before each step",
        }
        height, width = policy.input_size
        self.meta["state_fields"] = [f"h{i}" for i in range(meta.state_size)]
        self.manifest = episodes.new_manifest(
            height=height, width=width, nominal_dt=meta.nominal_dt, shift="flight", seed=0
        ) | {"source": "flight", "complete": True}
        self.written = 0  # chunks handed to the writer
        self.dropped = 0
        self._rows: list[tuple] = []
        self._queue: queue.Queue = queue.Queue(maxsize=max_pending)
        self._writer = threading.Thread(target=self._write_loop, name="recorder", daemon=True)
        self._lock_fd: int | None = None

    def __enter__(self) -> FlightRecorder:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._probe()
            self._lock()
        except OSError as e:
            self._unlock()
            raise EdgeLiquidError(f"cannot record into {self.folder}: {e.strerror}") from None
        try:
            if (self.folder / episodes.MANIFEST).is_file():
                self._continue(episodes.read_manifest(self.folder))
        except BaseException:
            self._unlock()
            raise
        self._writer.start()
        return self

    def _probe(self) -> None:
        """Create and remove a file: a folder that cannot take episodes fails here, not later."""
        fd, name = tempfile.mkstemp(prefix=".probe-", dir=self.folder)
        os.close(fd)
        os.unlink(name)

    def _lock(self) -> None:
        fd = os.open(self.folder / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise EdgeLiquidError(
                f"{self.folder} is being recorded into by another run: record into another folder"
            ) from None
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing drops the flock
            self._lock_fd = None

    def _continue(self, old: dict) -> None:
        """Append to an earlier recording of the same frame size."""
        size = (self.manifest["height"], self.manifest["width"])
        if (old.get("height"), old.get("width")) != size or old.get("source") != "flight":
            raise EdgeLiquidError(
                f"{self.folder} holds other episodes ({old.get('height')}x{old.get('width')}, "
                f"source {old.get('source')!r}): record into a new folder"
            )
        self.manifest["episodes"] = list(old.get("episodes", []))
        self.written = 1 + max((e["index"] for e in self.manifest["episodes"]), default=-1)

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, image, dt: float, state_before, command, stamp: float, status: str = "") -> None:
        """One policy step (called from the control loop: cheap, never blocks)."""
        self._rows.append((image, dt, state_before, command, stamp, status))
        if len(self._rows) >= self.chunk_steps:
            self._hand_over()

    def close(self) -> None:
        """Write what is left and wait for the writer."""
        if self._rows:
            self._hand_over(block=True)
        if self._writer.is_alive():
            self._queue.put(None)
            self._writer.join(timeout=30.0)
        self._unlock()

    def _hand_over(self, block: bool = False) -> None:
        rows, self._rows = self._rows, []
        try:
            self._queue.put((self.written, rows), block=block)
        except queue.Full:
            self.dropped += 1
            log.warning("recorder is behind: dropped %d steps (chunk %d)", len(rows), self.written)
        self.written += 1

    def _episode(self, rows: list[tuple]):
        images, dts, states, commands, stamps, statuses = zip(*rows, strict=True)
        meta = self.meta | {"stamps": [float(s) for s in stamps], "status": list(statuses)}
        return episodes.Episode(
            frames=np.stack(images).astype(np.uint8),
            commands=np.stack(commands).astype(np.float32),
            dt=np.asarray(dts, np.float32),
            states=np.stack(states).astype(np.float32),
            meta=meta,
        )

    def _write_loop(self) -> None:
        while (item := self._queue.get()) is not None:
            index, rows = item
            try:
                path = episodes.save_episode(self.folder, index, self._episode(rows))
                entry = {"index": index, "file": path.name, "steps": len(rows)}
                self.manifest["episodes"].append(entry | {"outcome": "flight"})
                episodes.write_manifest(self.folder, self.manifest)
            except (OSError, ValueError, EdgeLiquidError) as e:
                log.warning("recorder could not write chunk %d: %s", index, e)


def replay(episode, policy) -> np.ndarray:
    """Feed a recorded episode through `policy`; returns its commands (float32 [T, 4])."""
    commands = []
    for frame, dt, state in zip(episode.frames, episode.dt, episode.states, strict=True):
        policy.set_state(state)
        commands.append(policy.step(frame, float(dt)))
    return np.stack(commands).astype(np.float32)
