"""The one closed-loop rollout: `env.reset` → the policy acts → `env.step`, until an outcome.

`rollout(env, policy, seed)` yields one `Frame` per camera frame: the observation, its `info`
and the policy's command for it. The last frame yielded is the terminal one (`frame.done`):
its command is computed, so a recorder has a label for it, but never flown. While a frame is
in the caller's hands the env still stands at that frame (the step is taken when the caller
asks for the next one), so `env` can be read alongside, and breaking out of the loop early
(a step budget, a hover criterion, a time into the flight) leaves that command unflown.

A policy is anything with `reset()` and either `step(frame, dt) -> command[4]` (numpy in, numpy
out: `edgeliquid.runtime.engine.StepPolicy`, e.g. the ONNX engine or `model.TorchPolicy`) or,
when it has `privileged = True`, `act(env) -> command[4]` reading the simulator's true state
(`sim.expert.ExpertPolicy`). `execute(command, info)` maps the policy's command to the one
flown (collect adds exploration noise, the demo clamps to the limits); without it the command
is flown as is. numpy only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

Execute = Callable[[np.ndarray, dict[str, Any]], np.ndarray]


@dataclass(frozen=True)
class Frame:
    """One camera frame of a rollout and what was decided on it."""

    obs: np.ndarray  # uint8 HxWx3 RGB, as the policy saw it
    info: dict[str, Any]  # the env's info for this frame (dt, time, state, distance, outcome…)
    command: np.ndarray  # the policy's command for this frame
    flown: np.ndarray | None  # float32, what env.step got; None on the terminal frame

    @property
    def done(self) -> bool:
        """The terminal frame: the episode has its outcome, nothing more is flown."""
        return self.info["outcome"] is not None


def act(policy: Any, env: Any, obs: np.ndarray, info: dict[str, Any]) -> np.ndarray:
    """The policy's command for this frame: `act(env)` if privileged, else `step(obs, dt)`."""
    if getattr(policy, "privileged", False):
        return policy.act(env)
    return policy.step(obs, info["dt"])


def rollout(env: Any, policy: Any, seed: int, execute: Execute | None = None) -> Iterator[Frame]:
    """Fly one episode of `env` seeded `seed` (the policy reset first), one `Frame` per frame."""
    obs, info = env.reset(seed=seed)
    policy.reset()
    while True:
        command = act(policy, env, obs, info)
        if info["outcome"] is not None:
            yield Frame(obs, info, command, None)
            return
        flown = np.asarray(command if execute is None else execute(command, info), np.float32)
        yield Frame(obs, info, command, flown)
        obs, _, _, _, info = env.step(flown)


def flown_frames(env: Any, policy: Any, count: int, seed: int = 0) -> Iterator[Frame]:
    """`count` flown frames of back-to-back episodes (terminal frames left out), the next
    episode seeded `seed` + the frames so far: replay frames for checks and benchmarks."""
    done = 0
    while done < count:
        for frame in rollout(env, policy, seed + done):
            if frame.done:
                break
            yield frame
            done += 1
            if done == count:
                return
