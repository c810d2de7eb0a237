"""One recorded flight for behaviour cloning: what a collect records (`CollectConfig`) and how
one episode of it is flown and labelled (`record_episode`).

The drone executes the expert's command plus smooth Ornstein-Uhlenbeck noise, so it drifts off
the expert's path and the data shows how to recover; the label stored with each frame is the
expert's *clean* command for that frame. Episode i depends on (seed, i) only.

With `policy` set (DAgger, Ross et al. 2011) a trained policy (.pt or .onnx) flies instead,
mixed with the expert by `beta` (the probability, per step or per episode, that the expert's
command is flown), and the expert still labels every visited frame with its clean command. The
noise is added to whichever command is flown. numpy + OpenCV (and the policy's own runtime:
torch for .pt, onnxruntime for .onnx). `training.collect` writes many of them to a folder.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeliquid import episodes
from edgeliquid.errors import EdgeLiquidError

STATE_EXTRA = ("distance", "bearing")  # appended to sim.STATE_FIELDS in Episode.states
LEGACY = {
    "task": "reach",
    "decoys": False,
    "glare_ahead": False,
    "decoy_mix": "v2",
}  # settings a manifest written before they existed stands for
NOISE_FADE_M = 8.0  # m: nearer the target the noise shrinks linearly, down to 20%
BETA_PER = ("step", "episode")  # what one expert-or-policy draw covers


@dataclass(frozen=True)
class CollectConfig:
    """What to record; every field except `episodes` and `workers` must match on resume."""

    episodes: int
    seed: int = 0
    shift: str = "none"
    task: str = "reach"  # sim.tasks: reach, range, follow, chain, reacquire
    dt_jitter: float = 0.0  # training timing variation (see NavEnvConfig.dt_jitter)
    action_noise: float = 0.15  # OU noise std on the executed command, fraction of each limit
    noise_tau: float = 1.0  # s, correlation time of that noise
    # s recorded after the expert arrives (stop + hover, noise still on): without it episodes
    # end at ~0.5 m/s and a learner never sees "target close: stop" (it flew into the target)
    hover_s: float = 2.0
    height: int = 72
    width: int = 128
    # per-episode light and palettes (sim.randomize ranges, which exclude the eval shifts)
    randomize: bool = False
    # with randomize: a strong low sun ahead in half the episodes (sim.randomize.GLARE_AHEAD)
    glare_ahead: bool = False
    # look-alikes of the target to tell it from (sim.decoys; never the eval presets)
    decoys: bool = False
    decoy_mix: str = "v2"  # with decoys: a name in sim.decoys.DECOY_MIXES
    workers: int = 1
    policy: str | None = None  # DAgger: the model file that flies (None: the expert flies)
    beta: float = 0.0  # DAgger's beta: probability the expert's command is flown instead
    beta_per: str = "step"  # "step": one draw per step (Ross et al.); "episode": one per flight

    def __post_init__(self) -> None:
        if self.episodes < 1 or self.workers < 1 or self.seed < 0:
            raise ValueError(
                f"episodes and workers must be >= 1 and seed >= 0, got {self.episodes}, "
                f"{self.workers}, {self.seed}"
            )
        if not 0 <= self.action_noise <= 1 or self.noise_tau <= 0:
            raise ValueError(f"action_noise must be in [0, 1], got {self.action_noise}")
        if not 0 <= self.hover_s <= 10:
            raise ValueError(f"hover_s must be in [0, 10] s, got {self.hover_s}")
        if not 0 <= self.beta <= 1 or self.beta_per not in BETA_PER:
            raise ValueError(
                f"beta must be in [0, 1] and beta_per one of {', '.join(BETA_PER)}, "
                f"got {self.beta}, {self.beta_per!r}"
            )
        if self.policy is None and self.beta != 0:
            raise ValueError(f"beta {self.beta} mixes the expert with a policy: give --policy")
        self.env_config()  # validates size, shift and dt_jitter

    def env_config(self) -> Any:
        from edgeliquid.sim import NavEnvConfig

        return NavEnvConfig(
            height=self.height,
            width=self.width,
            shift=self.shift,
            task=self.task,
            dt_jitter=self.dt_jitter,
            end_on_success=self.hover_s == 0,
            randomize=self.randomize,
            glare_ahead=self.glare_ahead,
            decoys=self.decoys,
            decoy_mix=self.decoy_mix,
        )

    def settings(self) -> dict[str, Any]:
        """The manifest fields a resumed run must agree with."""
        return {
            "height": self.height,
            "width": self.width,
            "nominal_dt": self.env_config().dt,
            "shift": self.shift,
            "task": self.task,
            "seed": self.seed,
            "dt_jitter": self.dt_jitter,
            "action_noise": self.action_noise,
            "noise_tau": self.noise_tau,
            "hover_s": self.hover_s,
            "randomize": self.randomize,
            "glare_ahead": self.glare_ahead,
            "decoys": self.decoys,
            "decoy_mix": self.decoy_mix,
            **self.policy_settings(),
        }

    def policy_settings(self) -> dict[str, Any]:
        """The flying policy's fields (all None for an expert collect, as in older manifests)."""
        if self.policy is None:
            return {"policy_sha256": None, "beta": None, "beta_per": None}
        return {
            "policy_sha256": file_sha256(self.policy),
            "beta": self.beta,
            "beta_per": self.beta_per,
        }


def file_sha256(path: str | Path) -> str:
    """The sha256 of a model file (hex); a missing or unreadable one is an EdgeLiquidError."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError as e:
        raise EdgeLiquidError(f"cannot read --policy {path}: {e.strerror or e}") from None


class OrnsteinUhlenbeck:
    """Mean-reverting noise with stationary std `scale` and correlation time `tau` (exact in dt)."""

    def __init__(self, scale: np.ndarray, tau: float, rng: np.random.Generator) -> None:
        self.scale, self.tau, self.rng = scale, tau, rng
        self.value = np.zeros_like(scale)

    def sample(self, dt: float) -> np.ndarray:
        keep = math.exp(-dt / self.tau)
        shock = self.rng.standard_normal(self.scale.shape)
        self.value = keep * self.value + self.scale * math.sqrt(1 - keep * keep) * shock
        return self.value


class Pilot:
    """The rollout policy of a collect: the expert labels every frame, `learner` (if any) flies.

    Privileged, so `sim.rollout` hands it the env: `act(env)` returns the expert's clean
    command (the label, `Frame.command`) and steps the learner on the same frame and dt (the
    learner sees every frame, also those the expert flies, so its state stays its own).
    `flown(label)` is the command to execute: the learner's, or the label with probability
    `beta` per step or per episode. Without a learner the expert flies: a plain expert collect.
    """

    privileged = True

    def __init__(self, learner: Any, beta: float, per_step: bool, rng: np.random.Generator):
        from edgeliquid.sim.expert import ExpertPolicy

        self.expert, self.learner = ExpertPolicy(), learner
        self.beta, self.per_step, self.rng = beta, per_step, rng
        self.expert_steps = 0  # steps on which the expert's command was flown

    def reset(self) -> None:
        self.expert.reset()
        if self.learner is not None:
            self.learner.reset()
        self._expert_episode = self.beta > 0 and self.rng.random() < self.beta
        self.expert_steps = 0

    def act(self, env: Any) -> np.ndarray:
        label = self.expert.act(env)
        if self.learner is not None:
            self.learned = np.asarray(self.learner.step(env.render(), env.dt), np.float32)
        return label

    def flown(self, label: np.ndarray) -> np.ndarray:
        if self.learner is None or self._expert_turn():
            self.expert_steps += 1
            return label
        return self.learned

    def _expert_turn(self) -> bool:
        if not self.per_step:
            return self._expert_episode
        return self.beta > 0 and bool(self.rng.random() < self.beta)


def record_episode(config: CollectConfig, index: int, learner: Any = None) -> episodes.Episode:
    """One flight with noisy execution, by the expert or by `learner` (a loaded
    `config.policy`, mixed with the expert by `config.beta`); labels are the expert's clean
    commands."""
    from edgeliquid.sim import COMMAND_LIMITS, NavEnv
    from edgeliquid.sim.env import STATE_FIELDS, episode_seed

    if config.policy is not None and learner is None:
        learner = load_learner(config)
    env = NavEnv(config.env_config())
    seed = episode_seed(config.seed, index, "collect")
    scale = np.array(COMMAND_LIMITS) * config.action_noise
    noise = OrnsteinUhlenbeck(scale, config.noise_tau, np.random.default_rng([seed, 7]))
    pilot = Pilot(
        learner, config.beta, config.beta_per == "step", np.random.default_rng([seed, 11])
    )
    rows, info = _fly(env, pilot, noise, seed, config.hover_s)
    frames, commands, dts, states = zip(*rows, strict=True)
    meta = {
        "index": index,
        "episode_seed": seed,
        "shift": config.shift,
        "task": config.task,
        "outcome": info["outcome"],
        "time_s": info["time"],
        "final_distance_m": info["distance"],
        "state_fields": [*STATE_FIELDS, *STATE_EXTRA],
    }
    if env.appearance is not None:
        meta["appearance"] = env.appearance.as_dict()
    if env.decoys is not None:
        meta["decoys"] = env.decoys.as_dict()
    if learner is not None:
        meta["expert_flown_steps"] = pilot.expert_steps
    return episodes.Episode(
        frames=np.stack(frames),
        commands=np.stack(commands).astype(np.float32),
        dt=np.array(dts, np.float32),
        states=np.array(states, np.float32),
        meta=meta,
    )


def _fly(env: Any, pilot: Pilot, noise: OrnsteinUhlenbeck, seed: int, hover_s: float):
    """(frame, clean command, dt, state) per step, the last frame included, and final info.

    The flight ends at an outcome, or `hover_s` after the drone first arrived (a success).
    Arrived is the task's success (`sim.tasks`): on chain only at the last target, so the
    stops at the first two are recorded as flown; on follow never, so a follow flight records
    all its 30 s and ends with the env's verdict on the time in the band.
    """
    from edgeliquid.sim.rollout import rollout

    def noisy(label: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        fade = min(max(info["distance"] / NOISE_FADE_M, 0.2), 1.0)  # let the drone stop
        return pilot.flown(label) + fade * noise.sample(info["dt"]).astype(np.float32)

    rows, arrived_at = [], None
    for frame in rollout(env, pilot, seed, execute=noisy):
        info = frame.info
        state = [*info["state"], info["distance"], info["bearing"]]
        rows.append((frame.obs, frame.command, info["dt"], state))
        if arrived_at is None and info["arrived"]:
            arrived_at = info["time"]
        hovered = arrived_at is not None and info["time"] >= arrived_at + hover_s - 1e-9
        if hovered or (arrived_at is not None and info["outcome"] == "timeout"):
            return rows, {**info, "outcome": "success"}
    return rows, info


def load_learner(config: CollectConfig) -> Any:
    """The policy `config.policy` names, checked to take `config`'s frame size (one
    EdgeLiquidError line for a wrong, missing or corrupt file)."""
    from edgeliquid.evaluate import input_size, load_policy

    path = Path(str(config.policy))
    if path.suffix not in (".pt", ".onnx"):
        raise EdgeLiquidError(f"--policy {path}: expected a .pt checkpoint or an .onnx file")
    try:
        learner = load_policy(path)
    except EdgeLiquidError as e:
        raise EdgeLiquidError(e if str(path) in str(e) else f"--policy {path}: {e}") from None
    size = input_size(learner)
    if size != (config.height, config.width):
        raise EdgeLiquidError(
            f"--policy {path} takes {size[0]}x{size[1]} frames but collect records "
            f"{config.height}x{config.width}: pass --height {size[0]} --width {size[1]}"
        )
    return learner
