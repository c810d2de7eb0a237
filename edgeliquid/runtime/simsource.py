"""The simulator as a frame source: a NavEnv flown closed loop by the commands the daemon sends.

Real-time mode runs the environment in a capture thread, like a camera: each step takes the
newest command, and its frame is published `info["dt"]` seconds after the previous one (so the
`lowfps`, `highfps` and `jitter` shifts reach the daemon as real timing). Fast mode has no
thread and no pacing: every command the daemon sends steps the environment once (when the
next frame is asked for), and frames are stamped with the daemon's (virtual) clock — for soak
tests and quick closed-loop runs. When an episode ends the next one starts with the next seed;
the daemon just keeps flying.
Imports the simulator (numpy + OpenCV), never torch.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeliquid.contract import HOLD
from edgeliquid.errors import EdgeLiquidError
from edgeliquid.runtime.sources import Clock, FrameSource

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimSourceConfig:
    """Which simulated world to fly and how fast."""

    shift: str = "none"  # a NavEnv shift name, e.g. "winter" or "winter+noise"
    task: str = "reach"  # a NavEnv task: reach, range, follow, chain, reacquire
    seed: int = 0  # the first episode's seed; each new episode adds one
    height: int | None = None  # camera size; None: the simulator's default
    width: int | None = None
    fast: bool = False  # no real-time pacing: one env step per command

    def __post_init__(self) -> None:
        for name in ("height", "width"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be a positive number of pixels, got {value}")


def _make_env(config: SimSourceConfig):
    from edgeliquid.sim.env import NavEnv, NavEnvConfig

    given = (("height", config.height), ("width", config.width))
    sizes: dict[str, Any] = {k: v for k, v in given if v}
    try:
        return NavEnv(NavEnvConfig(shift=config.shift, task=config.task, **sizes))
    except ValueError as e:
        raise EdgeLiquidError(f"bad simulator settings: {e}") from None


class SimSource(FrameSource):
    """NavEnv frames; `command()` feeds the daemon's commands back into the simulation."""

    def __init__(self, config: SimSourceConfig | None = None, clock: Clock | None = None) -> None:
        super().__init__(clock)
        self.config = config or SimSourceConfig()
        task = "" if self.config.task == "reach" else f",task={self.config.task}"
        self.name = f"sim:{self.config.shift}{task}"
        self.episodes = 0  # episodes started so far
        self.last_info: dict = {}
        self._env: Any = None  # the NavEnv once open
        self._command = np.asarray(HOLD, np.float32)
        self._stepped = True  # fast mode: no command since the last env step
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def open(self) -> None:
        self._env = _make_env(self.config)
        self._publish(self._new_episode())
        if not self.config.fast:
            self._thread = threading.Thread(target=self._run, name="sim-capture", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        if self._env is not None and hasattr(self._env, "close"):
            self._env.close()

    def command(self, command: np.ndarray) -> None:
        self._command = np.asarray(command, np.float32).copy()
        self._stepped = False

    def latest(self):
        """Fast mode steps here, once per command, so the frame is stamped when it is read."""
        if self.config.fast and not self._stepped:
            self._stepped = True
            self._publish(self._advance()[0])
        return super().latest()

    def _new_episode(self) -> np.ndarray:
        obs, info = self._env.reset(seed=self.config.seed + self.episodes)
        self.episodes += 1
        self.last_info = info
        return obs

    def _advance(self) -> tuple[np.ndarray, float]:
        """One env step with the newest command: the next frame and its dt in seconds."""
        obs, _reward, terminated, truncated, info = self._env.step(self._command)
        self.last_info = info
        dt = float(info["dt"])
        if terminated or truncated:
            log.debug("sim episode %d ended: %s", self.episodes, info)
            obs = self._new_episode()
        return obs, dt

    def _run(self) -> None:
        """Publish each frame dt seconds after the previous one, as a camera would."""
        deadline = time.monotonic()
        while not self._stop.is_set():
            obs, dt = self._advance()
            deadline = max(deadline + dt, time.monotonic() - 1.0)  # no burst after a stall
            if self._stop.wait(max(0.0, deadline - time.monotonic())):
                return
            self._publish(obs)
