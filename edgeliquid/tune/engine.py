"""The study behind `edgeliquid tune`: Ray Tune runs the trials, Optuna's sampler picks them.

Ray Tune (`Tuner`, one trial per Ray worker with `study.cpus_per_trial` CPUs) drives
`trial.run_trial`; `ray.tune.search.optuna.OptunaSearch` samples the space define-by-run
(`SearchSpace.suggest`) and is told both objectives (success ↑, latency ↓: multi-objective
TPE). With no address a local Ray starts in this process and stops with it; with
`ray://HOST:PORT` the same study runs on that cluster (RUN_DIR must then be on storage every
node sees). RUN_DIR:

    study.json       the space as checked, the data folders, the target and the rounds so far
    optuna.journal   the Optuna study every round adds to, so the sampler sees every trial
    ray/round-NNN/   one Ray Tune experiment per command run that had trials left to start
    trials/ID/       each trial's config, seed runs, exported files, log and metrics.json
    front.md, front.png, best.onnx (+ .sha256): `front.py`, rewritten after every run

Rerunning the same command continues the study: the last round is restored
(`Tuner.can_restore` / `Tuner.restore`: its finished trials are kept, its interrupted ones
run again), then, if fewer than `--trials` trials have finished, a new round runs the rest.
A first Ctrl-C (or SIGTERM) stops the run cleanly, keeping what finished.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# A local Ray serves on loopback, not on the machine's network address (Ray's switch for it,
# read when Ray is imported): a laptop's study is nobody else's business. A cluster is joined
# as a Ray Client (ray://), whose driver runs on the cluster: this changes nothing there.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

from ray import tune

from edgeliquid.episodes import atomic_write
from edgeliquid.errors import EdgeLiquidError
from edgeliquid.pool import Stopped
from edgeliquid.tune.front import TRIALS, load_trials, trial_line, write_report
from edgeliquid.tune.reference import check_references, measured
from edgeliquid.tune.space import SearchSpace
from edgeliquid.tune.spacefile import load_space
from edgeliquid.tune.trial import REPORTED, run_trial

Echo = Callable[[str], None]
STUDY = "study.json"
OBJECTIVES = (["success", "latency_us"], ["max", "min"])
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
PROGRESS_POLL_S = 1.0


@dataclass(frozen=True)
class TuneRequest:
    """One `edgeliquid tune` command."""

    space_path: Path
    data: tuple[Path, ...]
    out: Path
    trials: int = 16
    address: str | None = None  # ray://HOST:PORT; None: a local Ray on this machine
    cpus: int | None = None  # the local Ray's CPUs (None: all of them)
    references: tuple[Path, ...] = ()  # exported models measured onto the front (reference.py)


# -- before Ray: everything a user can get wrong ---------------------------------------------


def _data_facts(data: tuple[Path, ...]) -> tuple[list[str], int, int, int]:
    from edgeliquid.training.data import data_dirs, read_manifests

    dirs = data_dirs(list(data))
    manifests = read_manifests(dirs)
    longest = max(e["steps"] for m in manifests for e in m["episodes"])
    height, width = manifests[0]["height"], manifests[0]["width"]
    return [str(d.resolve()) for d in dirs], height, width, longest


def prepare(request: TuneRequest) -> tuple[SearchSpace, dict[str, Any]]:
    """The checked space and the study record; nothing is written if anything is wrong."""
    from edgeliquid.paths import check_out_dir

    if request.address is not None and not request.address.startswith("ray://"):
        raise EdgeLiquidError(f"--address must be ray://HOST:PORT, got {request.address!r}")
    if request.trials < 1 or (request.cpus is not None and request.cpus < 1):
        raise EdgeLiquidError(
            f"--trials and --cpus must be >= 1, got {request.trials}, {request.cpus}"
        )
    out = check_out_dir(request.out, "--out")
    check_references(request.references)
    try:
        space = load_space(request.space_path)
    except OSError as e:
        raise EdgeLiquidError(
            f"cannot read the space file {request.space_path}: {e.strerror}"
        ) from None
    except ValueError as e:
        raise EdgeLiquidError(str(e)) from None
    have = request.cpus or os.cpu_count() or 1
    if request.address is None and space.study.cpus_per_trial > have:
        raise EdgeLiquidError(
            f"{request.space_path}: study.cpus_per_trial {space.study.cpus_per_trial} is more "
            f"than the local Ray's {have} CPUs: no trial could start"
        )
    data, height, width, longest = _data_facts(request.data)
    try:
        space.check_frames(height, width, longest)
    except ValueError as e:
        raise EdgeLiquidError(f"{request.space_path} on {height}x{width} data: {e}") from None
    plain = json.loads(json.dumps(space.to_dict()))  # as study.json holds it: lists, not tuples
    record = {"space_file": str(request.space_path), "space": plain, "data": data}
    return space, _merge(out, record)


def _merge(out: Path, record: dict[str, Any]) -> dict[str, Any]:
    """The stored record of the study in `out`, or a new one; another study's is refused."""
    path = out / STUDY
    if not path.is_file():
        if out.is_dir() and any(out.iterdir()):
            raise EdgeLiquidError(f"--out {out} holds files but no tune study: use an empty folder")
        return {**record, "rounds": []}
    stored = json.loads(path.read_text())
    for key, what in (("space", "search space"), ("data", "data folders")):
        if stored.get(key) != record[key]:
            raise EdgeLiquidError(
                f"--out {out} holds a study with other {what} ({stored.get('space_file')} on "
                f"{', '.join(stored.get('data', []))}): continue it unchanged or use another --out"
            )
    return {**stored, "space_file": record["space_file"]}


def _save(out: Path, record: dict[str, Any]) -> None:
    atomic_write(out / STUDY, (json.dumps(record, indent=2) + "\n").encode())


def finished(out: Path) -> int:
    return len(list((out / TRIALS).glob("*/metrics.json")))


# -- Ray ------------------------------------------------------------------------------------


def _quiet() -> None:
    """One line per trial is ours to print: Ray's tables and Optuna's info lines are off."""
    import optuna

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("ray").setLevel(logging.ERROR)
    logging.getLogger("ray.tune").setLevel(logging.CRITICAL)  # trial errors: our line says it


@contextlib.contextmanager
def connected(address: str | None, cpus: int | None) -> Iterator[None]:
    """Ray joined at `address`, or a local Ray started here (and stopped after); an already
    initialised Ray (a test's, a notebook's) is used as it is."""
    import ray

    _quiet()
    if ray.is_initialized():
        yield
        return
    options: dict[str, Any] = dict(logging_level=logging.ERROR, log_to_driver=False)
    # a stop mid-start would leave Ray's agents running; Ray Client warns before it raises
    with _signals_deferred() as asked, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if address:
                ray.init(address=address, **options)
            else:
                # "local": a new Ray of our own, even where `ray start` left one running
                ray.init(address="local", num_cpus=cpus, include_dashboard=False, **options)
        except ConnectionError as e:
            raise EdgeLiquidError(
                f"cannot reach the Ray cluster at {address} ({e}): is the head's client port "
                "reachable? A cluster with token authentication (Ray's default) also needs "
                "RAY_AUTH_MODE=token here and its token (RAY_AUTH_TOKEN or ~/.ray/auth_token)"
            ) from None
    _quiet()  # ray.init set its loggers again
    try:
        if asked:
            raise Stopped("stopped while Ray was starting; no trial was started")
        yield
    finally:
        ray.shutdown()


@contextlib.contextmanager
def _signals_deferred() -> Iterator[list[int]]:
    """SIGINT/SIGTERM only noted (in the list yielded) until the block ends."""
    asked: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield asked
        return
    previous = {s: signal.signal(s, lambda n, _: asked.append(n)) for s in STOP_SIGNALS}
    try:
        yield asked
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _trainable(point: dict[str, Any], space: SearchSpace, data: list[str], out: str) -> None:
    """One Ray trial: `run_trial` in this worker, its objectives reported to Tune."""
    trial_id = tune.get_context().get_trial_id()
    metrics = run_trial(space, point, [Path(d) for d in data], Path(out) / TRIALS / trial_id)
    tune.report({key: metrics[key] for key in REPORTED})


def _trainable_for(space: SearchSpace, record: dict[str, Any], out: Path) -> Any:
    bound = tune.with_parameters(_trainable, space=space, data=record["data"], out=str(out))
    study = space.study
    return tune.with_resources(bound, {"cpu": study.cpus_per_trial, "gpu": study.gpus_per_trial})


def trial_folder(trial: Any) -> str:
    return f"ray-{trial.trial_id}"  # Ray's own files; ours are in trials/ID


def _new_round(space: SearchSpace, trainable: Any, out: Path, name: str, trials: int) -> Any:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from ray.tune.search.optuna import OptunaSearch

    storage = JournalStorage(JournalFileBackend(str(out / "optuna.journal")))
    # a fresh seed per round: the same one would draw the first round's startup points again
    sampler = optuna.samplers.TPESampler(seed=space.study.seed + finished(out))
    metric, mode = OBJECTIVES
    search = OptunaSearch(
        space.suggest,
        metric=metric,
        mode=mode,
        sampler=sampler,
        study_name="edgeliquid",
        storage=storage,
    )
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=search, num_samples=trials, trial_dirname_creator=trial_folder
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=str(out / "ray"),
            failure_config=tune.FailureConfig(max_failures=0),
            verbose=0,
        ),
    )


@contextlib.contextmanager
def sigterm_as_sigint() -> Iterator[None]:
    """SIGTERM stops the run the way Ctrl-C does (Ray Tune saves its state on SIGINT)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _progress(out: Path, target: int, echo: Echo) -> Iterator[None]:
    """A line per trial as its metrics.json appears (read from RUN_DIR, so it works the same
    for a local Ray and for a cluster's, whose driver runs over there)."""
    seen = {t["id"] for t in load_trials(out)}
    stop = threading.Event()

    def report() -> None:
        for trial in load_trials(out):
            if trial["id"] not in seen:
                seen.add(trial["id"])
                echo(trial_line(trial, len(seen), target))

    def poll() -> None:
        while not stop.wait(PROGRESS_POLL_S):
            report()

    thread = threading.Thread(target=poll, name="tune-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        report()


def _fit(tuner: Any, trials: int, out: Path, target: int, echo: Echo) -> None:
    """Run the experiment; Stopped if it ended before all its `trials` were done (Ray marks
    the trials a Ctrl-C left unstarted TERMINATED, so the trials' own records decide)."""
    with sigterm_as_sigint(), _progress(out, target, echo):
        grid = tuner.fit()
    for result in grid:
        if result.error is not None and not _recorded(out, Path(result.path).name):
            echo(f"trial {Path(result.path).name}: its process died: {type(result.error).__name__}")
    done = sum(r.error is not None or _recorded(out, Path(r.path).name) for r in grid)
    if done < trials:
        _report_so_far(out)
        raise Stopped(
            f"stopped: {finished(out)} of {target} trials finished in {out}; rerun the same "
            "command to continue"
        )


def _recorded(out: Path, ray_folder: str) -> bool:
    """The trial in Ray's folder `ray-ID` (`trial_folder`) wrote its metrics.json."""
    return (out / TRIALS / ray_folder.removeprefix("ray-") / "metrics.json").is_file()


def _report_so_far(out: Path) -> None:
    record = json.loads((out / STUDY).read_text())
    if finished(out):
        write_report(out, record)


def run_study(request: TuneRequest, echo: Echo = print) -> dict[str, Any] | None:
    """Continue (or start) the study in `request.out` until `request.trials` trials have
    finished; write the report; return the best trial (None if no trial succeeded)."""
    space, record = prepare(request)
    out = request.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    record["target"] = request.trials
    _save(out, record)
    echo(f"tune: {finished(out)} of {request.trials} trials already finished in {out}")
    with connected(request.address, request.cpus):
        trainable = _trainable_for(space, record, out)
        rounds = record["rounds"]
        if rounds and tune.Tuner.can_restore(str(out / "ray" / rounds[-1]["name"])):
            path = str(out / "ray" / rounds[-1]["name"])
            tuner = tune.Tuner.restore(path, trainable)
            _fit(tuner, rounds[-1]["trials"], out, request.trials, echo)
        left = request.trials - finished(out)
        if left > 0:
            rounds.append({"name": f"round-{len(rounds) + 1:03d}", "trials": left})
            _save(out, record)
            tuner = _new_round(space, trainable, out, rounds[-1]["name"], left)
            _fit(tuner, left, out, request.trials, echo)
    if not finished(out):
        return None
    measured(out, space, request.references, echo)  # after Ray: nothing runs beside the timing
    return write_report(out, record)
