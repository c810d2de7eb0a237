"""Demonstrations for behaviour cloning: expert flights in NavEnv, written as episode files.

The drone executes the expert's command plus smooth Ornstein-Uhlenbeck noise, so it drifts off
the expert's path and the data shows how to recover; the label stored with each frame is the
expert's *clean* command for that frame. Episode i depends on (seed, i) only, so the data is the
same for any number of workers. A `collect` that was interrupted resumes when rerun with the
same settings: finished episode files are kept, temp-file leftovers are removed, the rest is
recorded, and the manifest is marked complete only at the end. numpy + OpenCV only.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeliquid import episodes, pool
from edgeliquid.errors import EdgeLiquidError
from edgeliquid.paths import check_out_dir
from edgeliquid.pool import Stopped, stop_on_signals

STATE_EXTRA = ("distance", "bearing")  # appended to sim.STATE_FIELDS in Episode.states
NOISE_FADE_M = 8.0  # m: nearer the target the noise shrinks linearly, down to 20%


@dataclass(frozen=True)
class CollectConfig:
    """What to record; every field except `episodes` and `workers` must match on resume."""

    episodes: int
    seed: int = 0
    shift: str = "none"
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
    workers: int = 1

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
        self.env_config()  # validates size, shift and dt_jitter

    def env_config(self) -> Any:
        from edgeliquid.sim import NavEnvConfig

        return NavEnvConfig(
            height=self.height,
            width=self.width,
            shift=self.shift,
            dt_jitter=self.dt_jitter,
            end_on_success=self.hover_s == 0,
            randomize=self.randomize,
        )

    def settings(self) -> dict[str, Any]:
        """The manifest fields a resumed run must agree with."""
        return {
            "height": self.height,
            "width": self.width,
            "nominal_dt": self.env_config().dt,
            "shift": self.shift,
            "seed": self.seed,
            "dt_jitter": self.dt_jitter,
            "action_noise": self.action_noise,
            "noise_tau": self.noise_tau,
            "hover_s": self.hover_s,
            "randomize": self.randomize,
        }


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


def record_episode(config: CollectConfig, index: int) -> episodes.Episode:
    """One expert flight with noisy execution; labels are the clean commands."""
    from edgeliquid.sim import COMMAND_LIMITS, NavEnv
    from edgeliquid.sim.env import STATE_FIELDS, episode_seed
    from edgeliquid.sim.expert import ExpertPolicy

    env, expert = NavEnv(config.env_config()), ExpertPolicy()
    seed = episode_seed(config.seed, index, "collect")
    scale = np.array(COMMAND_LIMITS) * config.action_noise
    noise = OrnsteinUhlenbeck(scale, config.noise_tau, np.random.default_rng([seed, 7]))
    rows, info = _fly(env, expert, noise, seed, config.hover_s)
    frames, commands, dts, states = zip(*rows, strict=True)
    meta = {
        "index": index,
        "episode_seed": seed,
        "shift": config.shift,
        "outcome": info["outcome"],
        "time_s": info["time"],
        "final_distance_m": info["distance"],
        "state_fields": [*STATE_FIELDS, *STATE_EXTRA],
    }
    if env.appearance is not None:
        meta["appearance"] = env.appearance.as_dict()
    return episodes.Episode(
        frames=np.stack(frames),
        commands=np.stack(commands).astype(np.float32),
        dt=np.array(dts, np.float32),
        states=np.array(states, np.float32),
        meta=meta,
    )


def _fly(env: Any, expert: Any, noise: OrnsteinUhlenbeck, seed: int, hover_s: float):
    """(frame, clean command, dt, state) per step, the last frame included, and final info.

    The flight ends at an outcome, or `hover_s` after the expert first arrived (a success).
    """
    from edgeliquid.sim.rollout import rollout

    def noisy(command: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        fade = min(max(info["distance"] / NOISE_FADE_M, 0.2), 1.0)  # let the expert stop
        return command + fade * noise.sample(info["dt"]).astype(np.float32)

    rows, arrived_at = [], None
    for frame in rollout(env, expert, seed, execute=noisy):
        info = frame.info
        state = [*info["state"], info["distance"], info["bearing"]]
        rows.append((frame.obs, frame.command, info["dt"], state))
        if arrived_at is None and info["arrived"]:
            arrived_at = info["time"]
        hovered = arrived_at is not None and info["time"] >= arrived_at + hover_s - 1e-9
        if hovered or (arrived_at is not None and info["outcome"] == "timeout"):
            return rows, {**info, "outcome": "success"}
    return rows, info


def _entry(index: int, meta: dict[str, Any]) -> dict[str, Any]:
    name = episodes.episode_path(".", index).name
    return {"index": index, "file": name, "steps": meta["steps"], "outcome": meta["outcome"]}


def _record_and_save(job: tuple[Path, CollectConfig, int]) -> dict[str, Any]:
    out, config, index = job
    episode = record_episode(config, index)
    episodes.save_episode(out, index, episode)
    return _entry(index, {**episode.meta, "steps": episode.steps})


def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)  # one core per worker


def check_out(out: str | Path, config: CollectConfig) -> Path:
    """Refuse, before recording, an `out` that is no folder, or holds a collect with other
    settings or episode files that are not ours; returns `out` as a Path."""
    out = check_out_dir(out, "--out")
    settings = config.settings()
    if (out / episodes.MANIFEST).exists():
        manifest = episodes.read_manifest(out)
        changed = [k for k, v in settings.items() if manifest.get(k) != v]
        if changed:
            diffs = ", ".join(f"{k} {manifest.get(k)!r} vs {settings[k]!r}" for k in changed)
            raise EdgeLiquidError(
                f"{out} holds a collect with other settings ({diffs}): "
                "use another --out or the same settings"
            )
    elif episodes.list_episodes(out):
        raise EdgeLiquidError(f"{out} holds episode files but no {episodes.MANIFEST}: not ours")
    return out


def _resume(out: Path, config: CollectConfig) -> tuple[dict[str, Any], dict[int, dict]]:
    """The manifest to continue and the episodes already on disk (checked readable);
    `out` has passed `check_out`."""
    manifest = episodes.new_manifest(**config.settings(), requested_episodes=config.episodes)
    for name in ("episode_*.npz", episodes.MANIFEST):
        episodes.remove_leftovers(out, name)
    done = {}
    for path in episodes.list_episodes(out):
        index = episodes.episode_index(path)
        if index < config.episodes:
            try:
                done[index] = _entry(index, episodes.episode_meta(path))
            except EdgeLiquidError:
                path.unlink()  # cannot happen with atomic writes; recorded again below
    return manifest, done


def collect(
    out: str | Path, config: CollectConfig, progress: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Record `config.episodes` episodes into `out` (resuming), return the final manifest.

    `progress(n)` is called with the number of episodes that just became complete.
    """
    out = check_out(out, config)
    out.mkdir(parents=True, exist_ok=True)
    manifest, done = _resume(out, config)
    manifest["episodes"] = [done[i] for i in sorted(done)]
    episodes.write_manifest(out, manifest)
    if progress and done:
        progress(len(done))
    todo = [(out, config, i) for i in range(config.episodes) if i not in done]
    with stop_on_signals(), contextlib.closing(_run(todo, config.workers)) as results:
        try:
            for entry in results:
                done[entry["index"]] = entry
                if progress:
                    progress(1)
        except Stopped as e:
            kept = len(episodes.list_episodes(out))
            raise Stopped(
                f"{e}: {kept} of {config.episodes} episodes are in {out}; "
                "rerun the same command to resume"
            ) from None
    manifest["episodes"] = [done[i] for i in sorted(done)]
    manifest["complete"] = True
    episodes.write_manifest(out, manifest)
    return manifest


def _run(jobs: list, workers: int) -> Any:
    """Results of `_record_and_save` as they finish, in this process or in a pool."""
    if workers == 1 or len(jobs) <= 1:
        yield from map(_record_and_save, jobs)
        return
    processes = min(workers, len(jobs))
    yield from pool.imap(_record_and_save, jobs, processes, _init_worker, ordered=False)
