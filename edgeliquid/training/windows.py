"""Training windows cut from recorded episodes, and the batches (tensors) made from them.

Behaviour cloning trains on fixed-length windows of consecutive steps: the recurrent state
starts at zero at each window's first step and is carried through the window (truncated
backpropagation through time). Windows start every `seq_shift` steps; the last window of an
episode is aligned to its end so no step is dropped, and an episode shorter than `seq_len`
becomes one window padded at the end, with a mask that keeps the padding out of the loss.

The split between training and validation is by episode, never by window: overlapping windows
of one flight on both sides would make the validation loss look better than it is. Episodes
from several data folders (DAgger rounds) are split folder by folder, each as it would be
alone, so adding a folder never moves an episode of another across the split.

Windowing is numpy; only `to_tensors` and `prefetched` touch torch.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from edgeliquid.contract import COMMAND_SIZE


class EpisodeLike(Protocol):
    """What windows need from an episode (`edgeliquid.episodes.Episode` fits)."""

    frames: np.ndarray  # uint8 [T, H, W, 3]
    commands: np.ndarray  # float32 [T, 4]
    dt: np.ndarray  # float32 [T], seconds since the previous frame


@dataclass(frozen=True)
class Batch:
    """A stack of windows, padded to one length; `mask` is False on padding."""

    frames: np.ndarray  # uint8 [B, L, H, W, 3]
    commands: np.ndarray  # float32 [B, L, 4]
    dt: np.ndarray  # float32 [B, L]
    mask: np.ndarray  # bool [B, L]


def make_windows(lengths: list[int], seq_len: int, seq_shift: int) -> np.ndarray:
    """Rows (episode, start, length) covering every step of every episode.

    >>> make_windows([10, 3], seq_len=4, seq_shift=4).tolist()
    [[0, 0, 4], [0, 4, 4], [0, 6, 4], [1, 0, 3]]
    """
    if seq_len < 1 or seq_shift < 1:
        raise ValueError(f"seq_len and seq_shift must be >= 1, got {seq_len} and {seq_shift}")
    rows = []
    for episode, length in enumerate(lengths):
        if length <= 0:
            continue
        if length <= seq_len:
            rows.append((episode, 0, length))
            continue
        starts = list(range(0, length - seq_len + 1, seq_shift))
        if starts[-1] + seq_len < length:
            starts.append(length - seq_len)
        rows.extend((episode, start, seq_len) for start in starts)
    return np.asarray(rows, dtype=np.int64).reshape(-1, 3)


def split_episodes(count: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Shuffle episode indices with `seed`; hold out `val_fraction` of them (at least one).

    With `val_fraction == 0` or a single episode there is no validation set.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    order = np.random.default_rng(seed).permutation(count).tolist()
    if val_fraction == 0.0 or count < 2:
        return sorted(order), []
    n_val = min(max(1, round(count * val_fraction)), count - 1)
    return sorted(order[n_val:]), sorted(order[:n_val])


def split_folders(
    sizes: Sequence[int], val_fraction: float, seed: int
) -> tuple[list[int], list[int]]:
    """`split_episodes` of each folder's episodes (folder k holds the `sizes[k]` episodes
    after those of the folders before it), joined: one folder is exactly `split_episodes`."""
    train_ids: list[int] = []
    val_ids: list[int] = []
    offset = 0
    for size in sizes:
        train, val = split_episodes(size, val_fraction, seed)
        train_ids += [offset + i for i in train]
        val_ids += [offset + i for i in val]
        offset += size
    return train_ids, val_ids


def gather(episodes: list[EpisodeLike], rows: np.ndarray, seq_len: int, nominal_dt: float) -> Batch:
    """Copy the windows in `rows` into one padded batch (padding dt = nominal, mask False)."""
    first = episodes[int(rows[0, 0])].frames
    batch = len(rows)
    frames = np.zeros((batch, seq_len, *first.shape[1:]), dtype=np.uint8)
    commands = np.zeros((batch, seq_len, COMMAND_SIZE), dtype=np.float32)
    dt = np.full((batch, seq_len), nominal_dt, dtype=np.float32)
    mask = np.zeros((batch, seq_len), dtype=bool)
    for i, (episode, start, length) in enumerate(rows.tolist()):
        ep = episodes[episode]
        frames[i, :length] = ep.frames[start : start + length]
        commands[i, :length] = ep.commands[start : start + length]
        dt[i, :length] = ep.dt[start : start + length]
        mask[i, :length] = True
    return Batch(frames, commands, dt, mask)


def command_statistics(
    episodes: list[EpisodeLike], min_std: float = 1e-2
) -> tuple[np.ndarray, np.ndarray]:
    """Per-command mean and std over all steps; std floored so a constant label stays finite."""
    stacked = np.concatenate([np.asarray(ep.commands, dtype=np.float64) for ep in episodes])
    mean = stacked.mean(axis=0)
    std = np.maximum(stacked.std(axis=0), min_std)
    return mean.astype(np.float32), std.astype(np.float32)


@dataclass(frozen=True)
class WindowSet:
    """Windows over a list of episodes, served as padded batches."""

    episodes: list[EpisodeLike]
    rows: np.ndarray  # [N, 3] (episode, start, length), from make_windows
    seq_len: int
    nominal_dt: float  # dt written into padding

    def __len__(self) -> int:
        return len(self.rows)

    def batches(self, batch_size: int, rng: np.random.Generator | None = None) -> Iterator[Batch]:
        """Batches of `batch_size` windows: shuffled by `rng`, or in order when it is None."""
        order = np.arange(len(self.rows)) if rng is None else rng.permutation(len(self.rows))
        for start in range(0, len(order), batch_size):
            rows = self.rows[np.sort(order[start : start + batch_size])]
            yield gather(self.episodes, rows, self.seq_len, self.nominal_dt)


def split_windows(
    episodes: list[EpisodeLike],
    seq_len: int,
    seq_shift: int,
    val_fraction: float,
    seed: int,
    nominal_dt: float,
    folder_sizes: Sequence[int] | None = None,
) -> tuple[WindowSet, WindowSet]:
    """Training and validation windows, split by episode within each data folder
    (`split_folders`; `folder_sizes` None: all episodes come from one folder)."""
    sizes = [len(episodes)] if folder_sizes is None else folder_sizes
    if sum(sizes) != len(episodes):
        raise ValueError(f"folder sizes {list(sizes)} do not add up to {len(episodes)} episodes")
    _, val_ids = split_folders(sizes, val_fraction, seed)
    rows = make_windows([len(ep.commands) for ep in episodes], seq_len, seq_shift)
    is_val = np.isin(rows[:, 0], val_ids)
    return (
        WindowSet(episodes, rows[~is_val], seq_len, nominal_dt),
        WindowSet(episodes, rows[is_val], seq_len, nominal_dt),
    )


Tensors = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def to_tensors(batch: Batch, device: Any = "cpu", augmenter: Any = None) -> Tensors:
    """(frames uint8, commands, dt, mask) on `device`; frames through `augmenter` if given."""
    frames = torch.from_numpy(batch.frames)
    frames = augmenter(frames) if augmenter is not None else frames.to(device)
    commands, dt, mask = (
        torch.from_numpy(a).to(device) for a in (batch.commands, batch.dt, batch.mask)
    )
    return frames, commands, dt, mask


def prefetched(
    batches: Iterator[Batch], device: Any = "cpu", augmenter: Any = None
) -> Iterator[Tensors]:
    """`to_tensors` of each batch, computed on a second thread while the caller trains on
    the previous one: the model's small recurrent ops run fastest on one intra-op thread,
    so the machine's other core prepares (gathers and augments) the next batch."""
    prepare = functools.partial(to_tensors, device=device, augmenter=augmenter)
    first = next(batches, None)
    if first is None:
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(prepare, first)
        for batch in batches:
            ready, pending = pending.result(), pool.submit(prepare, batch)
            yield ready
        yield pending.result()
