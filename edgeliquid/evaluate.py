"""Closed-loop evaluation: fly any policy in NavEnv on tasks under shifts and score it.

A policy is a `runtime.engine.StepPolicy` (`reset()`, `step(frame, dt) -> command[4]`): a
checkpoint as `model.TorchPolicy`, an exported file as the runtime's `OnnxPolicy`, or your own
object; `expert` is `sim.expert.ExpertPolicy`, which reads the simulator's true state instead
of the frame. Each episode is one `sim.rollout`. Episode i of a run flies the scene of
`episode_seed(seed, i, "eval")` on each task (`sim.tasks`): the same scene under every shift,
so results pair up across shifts, and not the scene `collect` records with the same seed and
index. Episodes spread over worker processes and come back in order, so a seed gives the same
table for any number of workers.

`evaluate(...)` returns the JSON of the design, one row per task and shift (task-major):
`{"model", "seed", "episodes", "tasks", "results": [{"task", "shift", "episodes",
"success_rate", "success_ci95", "collision_rate", "out_of_bounds_rate", "timeout_rate",
"mean_final_distance_m", "std_final_distance_m", "mean_time_s"}, ...]}`.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeliquid import pool
from edgeliquid.errors import EdgeLiquidError
from edgeliquid.pool import Stopped, stop_on_signals

if TYPE_CHECKING:
    from edgeliquid.runtime.engine import StepPolicy
    from edgeliquid.sim.expert import ExpertPolicy


PolicySource = str | os.PathLike | Callable[[], "StepPolicy | ExpertPolicy"]


def load_policy(model: str | os.PathLike) -> Any:
    """`expert`, a `*.pt` checkpoint or an `*.onnx` file; anything else is an EdgeLiquidError."""
    if str(model) == "expert":
        from edgeliquid.sim.expert import ExpertPolicy

        return ExpertPolicy()
    path = Path(model)
    if path.suffix not in (".pt", ".onnx"):
        raise EdgeLiquidError(
            f"cannot evaluate {str(model)!r}: expected 'expert', a .pt checkpoint or an .onnx file"
        )
    if not path.is_file():
        raise EdgeLiquidError(f"no such model file: {path}")
    if path.suffix == ".pt":
        from edgeliquid.model.torch_policy import TorchPolicy

        return TorchPolicy.load(path)
    from edgeliquid.runtime.engine import OnnxPolicy

    return OnnxPolicy(path)


def input_size(policy: Any, default: tuple[int, int] = (72, 128)) -> tuple[int, int]:
    """The frame size a policy takes (`input_size` or ONNX metadata), else `default`."""
    size = getattr(policy, "input_size", None)
    if size is None and hasattr(policy, "metadata"):
        size = (policy.metadata.input_height, policy.metadata.input_width)
    return (int(size[0]), int(size[1])) if size is not None else default


@dataclass(frozen=True)
class EpisodeResult:
    task: str
    shift: str
    index: int
    outcome: str
    final_distance_m: float
    time_s: float
    steps: int


def run_episode(env: Any, policy: Any, seed: int, index: int = 0) -> EpisodeResult:
    """Fly one episode to its end; the policy is reset first."""
    from edgeliquid.sim.rollout import rollout

    steps = 0
    for frame in rollout(env, policy, seed):
        steps += frame.flown is not None  # the terminal frame is not flown
    info = frame.info
    cfg = env.config
    return EpisodeResult(
        cfg.task, cfg.shift, index, info["outcome"], info["distance"], info["time"], steps
    )


Job = tuple[str, str, int, int]  # task, shift, seed, episode index


class _Runner:
    """One policy and one env per task and shift, reused across episodes (in a worker or here)."""

    def __init__(self, source: PolicySource, size: tuple[int, int] | None) -> None:
        self.policy = source() if callable(source) else load_policy(source)
        self.size = size or input_size(self.policy)
        self.envs: dict[tuple[str, str], Any] = {}

    def __call__(self, job: Job) -> EpisodeResult:
        from edgeliquid.sim import NavEnv, NavEnvConfig
        from edgeliquid.sim.env import episode_seed

        task, shift, seed, index = job
        if (task, shift) not in self.envs:
            height, width = self.size
            config = NavEnvConfig(height=height, width=width, shift=shift, task=task)
            self.envs[task, shift] = NavEnv(config)
        seed_i = episode_seed(seed, index, "eval")
        return run_episode(self.envs[task, shift], self.policy, seed_i, index)


_WORKER: _Runner | None = None


def _init_worker(source: PolicySource, size: tuple[int, int]) -> None:
    global _WORKER
    import cv2

    cv2.setNumThreads(1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    _WORKER = _Runner(source, size)


def _work(job: Job) -> EpisodeResult:
    if _WORKER is None:
        raise RuntimeError("worker used before _init_worker")
    return _WORKER(job)


def _results(
    source: PolicySource, jobs: list, workers: int, size: tuple[int, int] | None
) -> Generator[EpisodeResult, None, None]:
    runner = _Runner(source, size)  # also checks the model loads before any worker starts
    if workers == 1 or len(jobs) <= 1:
        with torch_single_thread():
            yield from map(runner, jobs)
        return
    processes = min(workers, len(jobs))
    chunk = max(1, len(jobs) // (4 * processes))
    initargs = (source, runner.size)
    yield from pool.imap(_work, jobs, processes, _init_worker, initargs, chunksize=chunk)


@contextlib.contextmanager
def torch_single_thread() -> Iterator[None]:
    """One torch thread while flying here (a ~20k-parameter step is fastest on one; extra
    threads only contend), restored afterwards for the caller (e.g. the trainer)."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a success rate (sensible at 0% and 100%)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(centre - half, 0.0), min(centre + half, 1.0))


def summarize(shift: str, results: Sequence[EpisodeResult], task: str = "reach") -> dict[str, Any]:
    """One row of the report."""
    n = len(results)
    outcomes = [r.outcome for r in results]
    distances = np.array([r.final_distance_m for r in results])
    low, high = wilson_interval(outcomes.count("success"), n)
    return {
        "task": task,
        "shift": shift,
        "episodes": n,
        "success_rate": outcomes.count("success") / n,
        "success_ci95": [round(low, 4), round(high, 4)],
        "collision_rate": outcomes.count("collision") / n,
        "out_of_bounds_rate": outcomes.count("out_of_bounds") / n,
        "timeout_rate": outcomes.count("timeout") / n,
        "mean_final_distance_m": float(distances.mean()),
        "std_final_distance_m": float(distances.std()),
        "mean_time_s": float(np.mean([r.time_s for r in results])),
    }


def evaluate(
    model: PolicySource,
    *,
    episodes: int,
    seed: int,
    shifts: Sequence[str] = ("none",),
    tasks: Sequence[str] = ("reach",),
    workers: int = 1,
    size: tuple[int, int] | None = None,
    name: str | None = None,
    progress: Callable[[int], None] | None = None,
    keep_episodes: bool = False,
) -> dict[str, Any]:
    """Fly `episodes` episodes per task and shift and return the report (see module doc).

    `model` is `expert`, a path, or a zero-argument factory returning a policy (it must be
    picklable when `workers` > 1). `size` overrides the frame size the policy asks for.
    """
    _check_arguments(episodes, seed, shifts, tasks, workers)
    cells = [(task, shift) for task in tasks for shift in shifts]
    jobs = [(task, shift, seed, i) for task, shift in cells for i in range(episodes)]
    collected: dict[tuple[str, str], list[EpisodeResult]] = {cell: [] for cell in cells}
    with stop_on_signals(), contextlib.closing(_results(model, jobs, workers, size)) as results:
        try:
            for result in results:
                collected[result.task, result.shift].append(result)
                if progress:
                    progress(1)
        except Stopped as e:
            flown = sum(map(len, collected.values()))
            raise Stopped(f"{e} after {flown} of {len(jobs)} episodes; no report") from None
    if name is None:
        name = getattr(model, "__name__", "policy") if callable(model) else str(model)
    report = {
        "model": name,
        "seed": seed,
        "episodes": episodes,
        "tasks": list(tasks),
        "results": [summarize(shift, collected[task, shift], task) for task, shift in cells],
    }
    if keep_episodes:
        report["episode_results"] = [asdict(r) for cell in cells for r in collected[cell]]
    return report


def _check_arguments(
    episodes: int, seed: int, shifts: Sequence[str], tasks: Sequence[str], workers: int
) -> None:
    from edgeliquid.sim.shifts import parse_shift
    from edgeliquid.sim.tasks import check_task

    if episodes < 1 or workers < 1 or seed < 0:
        raise ValueError(
            f"need episodes >= 1, workers >= 1, seed >= 0; got {episodes}, {workers}, {seed}"
        )
    for shift in shifts:
        parse_shift(shift)  # ValueError naming the valid shifts
    for task in tasks:
        check_task(task)  # ValueError naming the valid tasks
    if not shifts or not tasks:
        raise ValueError("need at least one shift and one task")


def format_table(report: dict[str, Any]) -> str:
    """The report as a fixed-width table for the terminal."""
    lines = [
        f"{'task':<11}{'shift':<22}{'episodes':>9}{'success':>9}{'95% CI':>16}{'collision':>11}"
        f"{'final m':>9}{'time s':>8}"
    ]
    for row in report["results"]:
        low, high = row["success_ci95"]
        lines.append(
            f"{row.get('task', 'reach'):<11}{row['shift']:<22}{row['episodes']:>9d}"
            f"{row['success_rate']:>9.3f}"
            f"{f'[{low:.2f}, {high:.2f}]':>16}{row['collision_rate']:>11.3f}"
            f"{row['mean_final_distance_m']:>9.2f}{row['mean_time_s']:>8.1f}"
        )
    return "\n".join(lines)


evaluate_model = evaluate  # the name edgeliquid/export/quantize.py calls
