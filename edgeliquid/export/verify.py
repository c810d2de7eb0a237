"""Does the exported graph compute what torch computes? Checked on real simulator frames.

Two kinds of check, each reported as one line `-[✓] name: max abs diff 3.1e-08 (atol 1e-05)`:

- per output: ONNX Runtime and torch fed the same frame, state and dt at every step of a
  flight (teacher forcing), so a mismatch points at one output;
- rollout: each side feeds its own state back for the whole flight (≥500 steps), because
  small errors compound through the recurrent state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnxruntime as ort
import torch

from edgeliquid.export.graph import ExportOptions, tolerance
from edgeliquid.model.policy import PolicyBase
from edgeliquid.model.torch_policy import TorchPolicy
from edgeliquid.runtime.engine import session_options


@dataclass(frozen=True)
class Check:
    """One compared quantity: its largest absolute difference against a tolerance."""

    name: str
    diff: float
    atol: float

    @property
    def ok(self) -> bool:
        return bool(np.isfinite(self.diff)) and self.diff <= self.atol

    def line(self) -> str:
        mark = "✓" if self.ok else "✗"
        return f"-[{mark}] {self.name}: max abs diff {self.diff:.1e} (atol {self.atol:.0e})"


def sim_flight(policy: PolicyBase, steps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames and dts from the policy itself flying the simulator closed loop (torch)."""
    from edgeliquid.sim.env import NavEnv, NavEnvConfig
    from edgeliquid.sim.rollout import flown_frames

    config = policy.config
    env = NavEnv(NavEnvConfig(height=config.input_height, width=config.input_width))
    flown = list(flown_frames(env, TorchPolicy(policy), steps, seed))
    return np.stack([f.obs for f in flown]), np.array([f.info["dt"] for f in flown], np.float32)


def torch_rollout(policy: PolicyBase, frames: np.ndarray, dts: np.ndarray, fixed: bool):
    """Commands [N,4] and the state *before* each step [N+1,S], torch feeding its own state."""
    state = policy.initial_state(1)
    commands, states = [], [state[0].numpy()]
    with torch.no_grad():
        for frame, dt in zip(frames, dts, strict=True):
            step_dt = policy.config.nominal_dt if fixed else torch.tensor([[dt]])
            command, state = policy.step(torch.from_numpy(frame)[None], state, step_dt)
            commands.append(command[0].numpy())
            states.append(state[0].numpy())
    return np.stack(commands), np.stack(states)


def _feed(options: ExportOptions, images: np.ndarray, state: np.ndarray, dts: np.ndarray):
    feed = {"images" if options.graph == "unrolled" else "image": images, "state": state[None]}
    if options.dt_mode == "input":
        feed["dt"] = dts.reshape(-1, 1).astype(np.float32)
    return feed


def _onnx_rollout(session, options, frames, dts, states):
    """Per chunk (1 frame, or T for unrolled): outputs from torch's states and from own state."""
    chunk = options.steps if options.graph == "unrolled" else 1
    n = len(frames) // chunk * chunk
    forced_cmd, forced_state, own_cmd = [], [], []
    own = states[0]
    for start in range(0, n, chunk):
        images, step_dts = frames[start : start + chunk], dts[start : start + chunk]
        cmd, out = session.run(None, _feed(options, images, states[start], step_dts))
        forced_cmd.append(cmd.reshape(chunk, 4))
        forced_state.append(out.reshape(-1))
        cmd, own_out = session.run(None, _feed(options, images, own, step_dts))
        own_cmd.append(cmd.reshape(chunk, 4))
        own = own_out.reshape(-1)
    return np.concatenate(forced_cmd), np.stack(forced_state), np.concatenate(own_cmd), n


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def verify(
    policy: PolicyBase, model_bytes: bytes, options: ExportOptions, steps: int = 500, seed: int = 0
) -> list[Check]:
    """Compare the ONNX graph with the torch policy over a `steps`-step simulator flight."""
    frames, dts = sim_flight(policy, steps, seed)
    fixed = options.dt_mode == "fixed"
    ref_cmd, ref_states = torch_rollout(policy, frames, dts, fixed)
    session = ort.InferenceSession(
        model_bytes, session_options(), providers=["CPUExecutionProvider"]
    )
    forced_cmd, forced_state, own_cmd, n = _onnx_rollout(session, options, frames, dts, ref_states)
    chunk = options.steps if options.graph == "unrolled" else 1
    names = ("commands", "state_out") if options.graph == "unrolled" else ("command", "state_out")
    atol = tolerance(options, policy.config)
    return [
        Check(names[0], _max_diff(forced_cmd, ref_cmd[:n]), atol),
        Check(names[1], _max_diff(forced_state, ref_states[chunk : n + 1 : chunk]), atol),
        Check(f"rollout {n} steps, state fed back", _max_diff(own_cmd, ref_cmd[:n]), atol),
    ]
