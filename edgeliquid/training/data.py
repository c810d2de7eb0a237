"""Training data from one or several `edgeliquid collect` folders (a DAgger round adds one).

`load_episodes(dirs)` reads every manifest first, refuses folders that disagree on frame size
or nominal dt (or the same folder twice), then loads the episodes in folder order with a data
summary for metrics.json and the model card.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgeliquid.contract import NOMINAL_DT
from edgeliquid.episodes import load_dataset, read_manifest
from edgeliquid.errors import EdgeLiquidError

DATA_KEYS = (
    "seed", "shift", "task", "dt_jitter", "action_noise", "hover_s", "randomize", "glare_ahead",
    "decoys", "decoy_mix",
)  # fmt: skip
POLICY_KEYS = ("policy", "policy_sha256", "beta", "beta_per")  # a DAgger folder's flyer


def data_dirs(data: Path | str | Sequence[Path | str]) -> list[Path]:
    """One folder or several, as Paths; the same folder twice is refused (double weight)."""
    dirs = [Path(data)] if isinstance(data, str | os.PathLike) else [Path(d) for d in data]
    if not dirs:
        raise EdgeLiquidError("no data folder given")
    seen: dict[Path, Path] = {}
    for d in dirs:
        if d.resolve() in seen:
            raise EdgeLiquidError(f"data folder {d} is given twice (as {seen[d.resolve()]} too)")
        seen[d.resolve()] = d
    return dirs


def read_manifests(dirs: list[Path]) -> list[dict[str, Any]]:
    """Every folder's manifest, checked to agree on frame size and nominal dt."""
    manifests = []
    for d in dirs:
        if not d.is_dir():
            raise EdgeLiquidError(f"no such data folder: {d}")
        manifests.append(read_manifest(d))
    shapes = [(m["height"], m["width"], m.get("nominal_dt", NOMINAL_DT)) for m in manifests]
    for d, shape in zip(dirs, shapes, strict=True):
        if shape != shapes[0]:
            (h0, w0, dt0), (h, w, dt) = shapes[0], shape
            raise EdgeLiquidError(
                f"data folders disagree: {dirs[0]} holds {h0}x{w0} frames at nominal dt {dt0} s, "
                f"{d} {h}x{w} at {dt} s: collect every folder at one frame size and rate"
            )
    return manifests


def load_episodes(dirs: list[Path]) -> tuple[list, dict[str, Any], list[int]]:
    """Episodes of every folder in order, a data summary for the metrics and the model card
    (each folder's, under `folders` when there are several), and each folder's count."""
    manifests = read_manifests(dirs)
    folders: list[list] = []
    summaries: list[dict[str, Any]] = []
    for d, manifest in zip(dirs, manifests, strict=True):
        episodes = load_dataset(d, require_finite=True)  # one NaN label: a NaN model
        frames = int(sum(len(ep.commands) for ep in episodes))
        summary: dict[str, Any] = {"dir": str(d), "episodes": len(episodes), "frames": frames}
        summary |= {k: manifest[k] for k in DATA_KEYS if k in manifest}
        summary |= {k: manifest[k] for k in POLICY_KEYS if manifest.get(k) is not None}
        folders.append(episodes)
        summaries.append(summary)
    if len(summaries) == 1:
        data = {**summaries[0], "dirs": [summaries[0]["dir"]]}
    else:
        data = {
            "dirs": [s["dir"] for s in summaries],
            "episodes": sum(s["episodes"] for s in summaries),
            "frames": sum(s["frames"] for s in summaries),
            "folders": summaries,
        }
    return [ep for f in folders for ep in f], data, [len(f) for f in folders]
