"""Episodes on disk: one compressed `episode_NNNNNN.npz` per episode plus a `manifest.json`.

numpy only (the daemon's flight recorder and the trainer use it too). Every file is written
with `atomic_write`: to a fresh temp file in the same folder, flushed to disk, then renamed
over the final name, so a reader or a resumed `collect` never sees half a file under a final
name. An episode holds, per step t:
`frames[t]` (uint8 H×W×3 RGB), `commands[t]` (float32 [4], the label for frame t: the expert's
clean command in collected data), `dt[t]` (seconds since the previous frame; nominal for the
first), `states[t]` (float32 [K], named by `meta["state_fields"]`), and a JSON `meta` dict.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from edgeliquid.contract import NOMINAL_DT
from edgeliquid.errors import EdgeLiquidError

FORMAT = "edgeliquid-episodes"
VERSION = 1
MANIFEST = "manifest.json"
TMP_SUFFIX = ".tmp"  # atomic_write's temp files: `.<name>.<random>.tmp`
ARRAY_KEYS = ("frames", "commands", "dt", "states")
_EPISODE_NAME = re.compile(r"^episode_(\d{6,})\.npz$")
_READ_ERRORS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error)


@dataclass
class Episode:
    """One flight: frames with their command labels, frame intervals and true states."""

    frames: np.ndarray  # uint8 [T, H, W, 3] RGB
    commands: np.ndarray  # float32 [T, 4]: forward, right, down m/s, yaw_rate rad/s
    dt: np.ndarray  # float32 [T]: seconds since the previous frame
    states: np.ndarray  # float32 [T, K]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        f, c, d, s = self.frames, self.commands, self.dt, self.states
        if f.dtype != np.uint8 or f.ndim != 4 or f.shape[-1] != 3:
            raise ValueError(f"frames must be uint8 [T, H, W, 3], got {f.dtype} {f.shape}")
        steps = f.shape[0]
        expected = {"commands": (c, (steps, 4)), "dt": (d, (steps,))}
        for name, (array, shape) in expected.items():
            if array.dtype != np.float32 or array.shape != shape:
                raise ValueError(f"{name} must be float32 {shape}, got {array.dtype} {array.shape}")
        if s.dtype != np.float32 or s.ndim != 2 or s.shape[0] != steps:
            raise ValueError(f"states must be float32 [{steps}, K], got {s.dtype} {s.shape}")

    @property
    def steps(self) -> int:
        return int(self.frames.shape[0])


def episode_path(directory: str | os.PathLike, index: int) -> Path:
    return Path(directory) / f"episode_{index:06d}.npz"


def save_episode(directory: str | os.PathLike, index: int, episode: Episode) -> Path:
    """Write `episode_<index>.npz` atomically (see `atomic_write`); returns its path."""
    path = episode_path(directory, index)
    arrays = {key: getattr(episode, key) for key in ARRAY_KEYS}
    meta = np.array(json.dumps({**episode.meta, "steps": episode.steps}))
    return atomic_write(path, lambda f: np.savez_compressed(f, meta=meta, **arrays))


def atomic_write(path: str | os.PathLike, content: bytes | Callable[[BinaryIO], Any]) -> Path:
    """Write `content` (bytes, or a function that writes to an open binary file) to `path`.

    The temp file comes from `mkstemp` in the target folder (O_EXCL, a random name: a symlink
    planted at a predictable name is never followed), named `.<name>.<random>.tmp` so no
    reader takes it for a finished file. It is flushed and fsynced, then `os.replace`d over
    `path`; on any error (KeyboardInterrupt included) it is removed and `path` is untouched.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), _file_mode())  # mkstemp's 0600 → what open() would give
            if isinstance(content, bytes | bytearray | memoryview):
                f.write(content)
            else:
                content(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


@functools.cache
def _file_mode() -> int:
    """0o666 less the process umask (read once: os.umask can only be read by setting it)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def remove_leftovers(directory: str | os.PathLike, name_glob: str = "*") -> None:
    """Delete temp files an interrupted `atomic_write` of `name_glob` files left behind
    (and the `<name>.tmp` that edgeliquid 0.1.0 wrote to a predictable name)."""
    directory = Path(directory)
    for pattern in (f".{name_glob}.*{TMP_SUFFIX}", f"{name_glob}{TMP_SUFFIX}"):
        for leftover in directory.glob(pattern):
            leftover.unlink(missing_ok=True)  # a planted symlink goes, never its target


def load_episode(path: str | os.PathLike) -> Episode:
    """Read one episode; unreadable, truncated or foreign files raise EdgeLiquidError."""
    arrays, meta = _read(Path(path), ARRAY_KEYS)
    try:
        return Episode(**arrays, meta=meta)
    except ValueError as e:
        raise EdgeLiquidError(f"{path}: bad episode arrays ({e})") from None


def episode_meta(path: str | os.PathLike) -> dict[str, Any]:
    """Only the `meta` dict of an episode file (cheap: reads one small zip member)."""
    return _read(Path(path), ())[1]


def _read(path: Path, keys: tuple[str, ...]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays `keys` and the meta dict of an episode file, checked for all members."""
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as npz:
            missing = [k for k in (*ARRAY_KEYS, "meta") if k not in npz.files]
            if missing:
                raise EdgeLiquidError(
                    f"{path}: not an edgeliquid episode (no {', '.join(missing)})"
                )
            return {key: npz[key] for key in keys}, json.loads(str(npz["meta"][()]))
    except FileNotFoundError:
        raise EdgeLiquidError(f"{path}: no such episode file") from None
    except _READ_ERRORS as e:
        raise EdgeLiquidError(f"{path}: corrupt or truncated episode file ({e})") from None


def list_episodes(directory: str | os.PathLike) -> list[Path]:
    """The complete episode files in `directory`, by index (temp-file leftovers excluded)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if _EPISODE_NAME.match(p.name)]
    return sorted(found, key=episode_index)


def episode_index(path: str | os.PathLike) -> int:
    """The index in an `episode_NNNNNN.npz` name."""
    match = _EPISODE_NAME.match(Path(path).name)
    if match is None:
        raise ValueError(f"not an episode file name: {path}")
    return int(match.group(1))


def new_manifest(
    *, height: int, width: int, nominal_dt: float, shift: str, seed: int, **settings: Any
) -> dict[str, Any]:
    """A manifest with no episodes yet; `settings` (e.g. dt_jitter, action_noise) are kept."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "height": height,
        "width": width,
        "nominal_dt": nominal_dt,
        "shift": shift,
        "seed": seed,
        **settings,
        "complete": False,
        "episodes": [],
    }


def write_manifest(directory: str | os.PathLike, manifest: dict[str, Any]) -> Path:
    """Write `manifest.json` atomically."""
    path = Path(directory) / MANIFEST
    return atomic_write(path, json.dumps(manifest, indent=1).encode())


def read_manifest(directory: str | os.PathLike) -> dict[str, Any]:
    """The folder's manifest, checked for format and version."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise EdgeLiquidError(
            f"{directory} has no {MANIFEST}: not an episode folder "
            "(make one with edgeliquid collect)"
        )
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise EdgeLiquidError(f"{path}: unreadable manifest ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise EdgeLiquidError(f"{path}: not an edgeliquid episode manifest")
    if manifest.get("version") != VERSION:
        raise EdgeLiquidError(
            f"{path}: manifest version {manifest.get('version')!r}, this edgeliquid reads {VERSION}"
        )
    problem = _manifest_problem(manifest)
    if problem:
        raise EdgeLiquidError(f"{path}: bad manifest: {problem}")
    return manifest


def _manifest_problem(manifest: dict[str, Any]) -> str | None:
    """What is wrong with the fields readers rely on (None: nothing)."""
    for key, high in (("height", 1080), ("width", 1920)):
        value = manifest.get(key)
        if type(value) is not int or not 16 <= value <= high:
            return f"{key} must be an integer in 16..{high}, got {value!r}"
    dt = manifest.get("nominal_dt", NOMINAL_DT)
    if type(dt) not in (int, float) or not 0 < dt <= 10:
        return f"nominal_dt must be a number of seconds in (0, 10], got {dt!r}"
    entries = manifest.get("episodes", [])
    if not isinstance(entries, list):
        return f"episodes must be a list, got {type(entries).__name__}"
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            return f"episodes[{i}] must be a dict, got {type(entry).__name__}"
        name, index = entry.get("file"), entry.get("index")
        if not isinstance(name, str) or not _EPISODE_NAME.match(name):
            return f"episodes[{i}].file must be an episode_NNNNNN.npz name, got {name!r}"
        if index is not None and index != episode_index(name):
            return f"episodes[{i}].index must be the file's index, got {index!r}"
    return None


def load_dataset(directory: str | os.PathLike, require_finite: bool = False) -> list[Episode]:
    """Every episode the manifest lists, after checking the folder is complete and consistent.

    `require_finite` (training) also refuses non-finite labels, dt or states (`check_finite`);
    a flight recording keeps the raw NaN outputs a policy produced, so it is off by default.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise EdgeLiquidError(f"no such data folder: {directory}")
    manifest = read_manifest(directory)
    entries = manifest.get("episodes") or []
    if not manifest.get("complete", False):
        raise EdgeLiquidError(
            f"collect into {directory} did not finish ({len(entries)} of "
            f"{manifest.get('requested_episodes', '?')} episodes): rerun it to resume"
        )
    if not entries:
        raise EdgeLiquidError(f"{directory} holds no episodes")
    size = (manifest["height"], manifest["width"])
    episodes = []
    for entry in entries:
        path = directory / entry["file"]
        episode = load_episode(path)
        if episode.frames.shape[1:3] != size:
            raise EdgeLiquidError(
                f"{path}: frames are {episode.frames.shape[1:3]}, the manifest says {size}"
            )
        if require_finite:
            check_finite(path, episode)
        episodes.append(episode)
    return episodes


def check_finite(path: str | os.PathLike, episode: Episode) -> None:
    """Refuse labels, frame intervals or states that are not finite (dt must also be > 0):
    one NaN label trains the whole model to NaN. (Frames are uint8: always finite.)"""
    for key in ("commands", "dt", "states"):
        array = getattr(episode, key)
        bad = ~np.isfinite(array) | ((array <= 0) if key == "dt" else False)
        if bad.any():
            step = int(np.argwhere(bad)[0][0])
            value = np.round(array[step].astype(np.float64), 4).tolist()
            raise EdgeLiquidError(
                f"{path}: step {step} has {'a bad' if key == 'dt' else 'a non-finite'} {key} "
                f"value ({value}); fix or drop this episode"
            )
