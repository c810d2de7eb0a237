"""A torch policy flown one numpy frame at a time: the acting side of a checkpoint.

`TorchPolicy` wraps a `PolicyBase` (or loads a `*.pt` checkpoint) behind the same interface as
the ONNX engine (`edgeliquid.runtime.engine.StepPolicy`): `reset()`, then `step(frame, dt)` with
a uint8 HxWx3 RGB numpy frame and dt in seconds, returning the float32 command[4]. It owns the
recurrent state and runs without gradients, so `sim.rollout`, `evaluate` and the exporter's
check fly a checkpoint and an exported file the same way.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from edgeliquid.model.policy import PolicyBase


class TorchPolicy:
    """`reset()`, then `step(frame, dt)` per frame; the model is used as given (no `.eval()`)."""

    privileged = False

    def __init__(self, model: PolicyBase, checkpoint: dict | None = None) -> None:
        self.model, self.checkpoint = model, checkpoint
        config = model.config
        self.input_size = (config.input_height, config.input_width)
        self.reset()

    @classmethod
    def load(cls, path: str | os.PathLike) -> TorchPolicy:
        """A training checkpoint (`*.pt`), in eval mode."""
        from edgeliquid.model.checkpoint import load_checkpoint

        model, checkpoint = load_checkpoint(path)
        return cls(model.eval(), checkpoint)

    def reset(self) -> None:
        """Fresh start: the model's zero state."""
        self.state = self.model.initial_state(1)

    def step(self, frame_rgb: np.ndarray, dt: float | None = None) -> np.ndarray:
        """One control step on an RGB frame `dt` seconds after the last (None: nominal)."""
        with torch.no_grad():
            image = torch.from_numpy(np.ascontiguousarray(frame_rgb, np.uint8)).unsqueeze(0)
            timespan = None if dt is None else torch.full((1, 1), float(dt), dtype=torch.float32)
            command, self.state = self.model.step(image, self.state, timespan)
        return command[0].numpy().astype(np.float32)
