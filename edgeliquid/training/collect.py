"""Demonstrations for behaviour cloning: many recorded flights (`training.flight`) written as
episode files in one folder.

Episode i depends on (seed, i) only, so the data is the same for any number of workers. A
`collect` that was interrupted resumes when rerun with the same settings: finished episode
files are kept, temp-file leftovers are removed, the rest is recorded, and the manifest is
marked complete only at the end. With `policy` set (DAgger) the manifest records the policy's
path, sha256 and beta; a resume with another policy file is refused.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeliquid import episodes, pool
from edgeliquid.errors import EdgeLiquidError
from edgeliquid.paths import check_out_dir
from edgeliquid.pool import Stopped, stop_on_signals
from edgeliquid.training.flight import LEGACY, CollectConfig, load_learner, record_episode

__all__ = ["CollectConfig", "check_out", "collect", "load_learner", "record_episode"]


def _entry(index: int, meta: dict[str, Any]) -> dict[str, Any]:
    name = episodes.episode_path(".", index).name
    return {"index": index, "file": name, "steps": meta["steps"], "outcome": meta["outcome"]}


_LEARNER: Any = None  # a worker process's flying policy, loaded once by _init_worker


def _record_and_save(job: tuple[Path, CollectConfig, int], learner: Any = None) -> dict[str, Any]:
    out, config, index = job
    episode = record_episode(config, index, _LEARNER if learner is None else learner)
    episodes.save_episode(out, index, episode)
    return _entry(index, {**episode.meta, "steps": episode.steps})


def _init_worker(config: CollectConfig) -> None:
    global _LEARNER
    import cv2

    cv2.setNumThreads(1)  # one core per worker
    if config.policy is not None:
        _LEARNER = load_learner(config)
        torch = sys.modules.get("torch")  # loaded by a .pt policy; one thread for a ~20k net
        if torch is not None:
            torch.set_num_threads(1)


def check_out(out: str | Path, config: CollectConfig) -> Path:
    """Refuse, before recording, an `out` that is no folder, or holds a collect with other
    settings or episode files that are not ours; returns `out` as a Path."""
    out = check_out_dir(out, "--out")
    settings = config.settings()
    if (out / episodes.MANIFEST).exists():
        manifest = episodes.read_manifest(out)
        recorded = {k: manifest.get(k, LEGACY.get(k)) for k in settings}
        changed = [k for k, v in settings.items() if recorded[k] != v]
        if changed:
            diffs = ", ".join(f"{k} {recorded[k]!r} vs {settings[k]!r}" for k in changed)
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
    if config.policy is not None:
        manifest["policy"] = config.policy  # for the reader; resume compares the sha256
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
    out: str | Path,
    config: CollectConfig,
    progress: Callable[[int], None] | None = None,
    learner: Any = None,
) -> dict[str, Any]:
    """Record `config.episodes` episodes into `out` (resuming), return the final manifest.

    `progress(n)` is called with the number of episodes that just became complete. `learner`:
    `config.policy` already loaded (`load_learner`); None loads it here, before any worker.
    """
    out = check_out(out, config)
    if config.policy is not None and learner is None:
        learner = load_learner(config)
    out.mkdir(parents=True, exist_ok=True)
    manifest, done = _resume(out, config)
    manifest["episodes"] = [done[i] for i in sorted(done)]
    episodes.write_manifest(out, manifest)
    if progress and done:
        progress(len(done))
    todo = [(out, config, i) for i in range(config.episodes) if i not in done]
    with stop_on_signals(), contextlib.closing(_run(todo, config, learner)) as results:
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


def _run(jobs: list, config: CollectConfig, learner: Any) -> Any:
    """Results of `_record_and_save` as they finish, in this process or in a pool."""
    from edgeliquid.evaluate import torch_single_thread

    if config.workers == 1 or len(jobs) <= 1:
        with torch_single_thread():
            yield from map(functools.partial(_record_and_save, learner=learner), jobs)
        return
    processes = min(config.workers, len(jobs))
    yield from pool.imap(_record_and_save, jobs, processes, _init_worker, (config,), ordered=False)
