"""Checkpoints that rebuild their policy from the file alone.

A checkpoint is a dict loadable with `torch.load(..., weights_only=True)`:

    {"format": "edgeliquid-checkpoint", "version": 1,
     "config": dataclasses.asdict(policy.config) (tuples as lists),
     "state_dict": policy.state_dict(), **extra}

`extra` carries training facts (epoch, losses, data summary) and must itself be plain data
(numbers, strings, lists, dicts, tensors) so the safe loader accepts it.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path
from typing import Any

import torch

from edgeliquid.episodes import atomic_write
from edgeliquid.errors import EdgeLiquidError
from edgeliquid.model.baselines import build_policy
from edgeliquid.model.policy import NavPolicyConfig, PolicyBase

FORMAT = "edgeliquid-checkpoint"
VERSION = 1
_RESERVED = ("format", "version", "config", "state_dict")
_PLAIN = (str, int, float, bool, type(None), torch.Tensor)
# Config fields added after version-1 files were written, with the value that rebuilds such a
# file as it was trained (a missing key must not pick up today's default).
# BatchNorm in the conv head, per-frame input normalisation and the motor count came with
# issue 12
_BEFORE_FIELD = {"conv_norm": "none", "input_norm": "fixed", "ncp_motor": 4}


def _check_plain(value: Any, where: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str | int):
                raise ValueError(f"{where}: key {key!r} must be a str or int")
            _check_plain(item, f"{where}[{key!r}]")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
    elif not isinstance(value, _PLAIN):
        raise ValueError(
            f"{where} is a {type(value).__name__}; checkpoints hold only numbers, strings, "
            "lists, dicts and tensors"
        )


def save_checkpoint(path: str | os.PathLike, model: PolicyBase, **extra: Any) -> Path:
    """Write `model` (+ `extra`) to `path` atomically (`edgeliquid.episodes.atomic_write`)."""
    clash = sorted(set(extra) & set(_RESERVED))
    if clash:
        raise ValueError(f"extra keys {clash} are reserved; choose other names")
    _check_plain(extra, "extra")
    config = {
        k: list(v) if isinstance(v, tuple) else v
        for k, v in dataclasses.asdict(model.config).items()
    }
    state_dict = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    ckpt = {"format": FORMAT, "version": VERSION, "config": config, "state_dict": state_dict}
    return atomic_write(path, lambda f: torch.save({**ckpt, **extra}, f))


def _read(path: Path) -> Any:
    if not path.is_file():
        problem = "is a directory" if path.is_dir() else "does not exist"
        raise EdgeLiquidError(f"checkpoint {path} {problem}")
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickles; we judge below
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # garbage makes torch.load raise almost anything
        raise EdgeLiquidError(
            f"checkpoint {path} is not a readable torch file ({type(e).__name__})"
        ) from None


def _check_layout(path: Path, ckpt: Any) -> None:
    where = f"checkpoint {path}"
    if not isinstance(ckpt, dict):
        raise EdgeLiquidError(f"{where} holds a {type(ckpt).__name__}, not an edgeliquid dict")
    if "format" not in ckpt:
        if ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
            raise EdgeLiquidError(
                f"{where} is a plain state_dict without config; save with save_checkpoint"
            )
        raise EdgeLiquidError(f"{where} has no 'format' key: not an edgeliquid checkpoint")
    if ckpt["format"] != FORMAT:
        raise EdgeLiquidError(f"{where} has format {ckpt['format']!r}, expected {FORMAT!r}")
    if ckpt.get("version") != VERSION:
        raise EdgeLiquidError(
            f"{where} has version {ckpt.get('version')!r}; this edgeliquid reads {VERSION}"
        )
    for key in ("config", "state_dict"):
        if not isinstance(ckpt.get(key), dict):
            raise EdgeLiquidError(f"{where} lacks a '{key}' dict")


def _state_dict_problem(model: PolicyBase, state_dict: dict[str, Any]) -> str | None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    if missing or unexpected:
        return f"weights do not fit its config (missing {missing[:3]}, unexpected {unexpected[:3]})"
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor) or value.shape != expected[key].shape:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            return f"weight {key} is {shape}, its config needs {tuple(expected[key].shape)}"
    return None


def load_checkpoint(path: str | os.PathLike) -> tuple[PolicyBase, dict[str, Any]]:
    """(policy in eval mode, the checkpoint dict); EdgeLiquidError for anything else."""
    path = Path(path)
    ckpt = _read(path)
    _check_layout(path, ckpt)
    try:
        config = NavPolicyConfig(**{**_BEFORE_FIELD, **ckpt["config"]})
    except (TypeError, ValueError) as e:
        raise EdgeLiquidError(f"checkpoint {path} has a bad config: {e}") from None
    model = build_policy(config)
    problem = _state_dict_problem(model, ckpt["state_dict"])
    if problem:
        raise EdgeLiquidError(f"checkpoint {path}: {problem}")
    model.load_state_dict(ckpt["state_dict"], strict=True)
    return model.eval(), ckpt
