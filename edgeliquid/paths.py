"""Output paths, checked before any work: one clear line instead of a traceback at the end.

Every command that writes a file or a folder calls `check_out_file` or `check_out_dir` first,
so a path under a file, a folder where a file belongs (or the reverse), a wrong suffix, an
unwritable folder or a file of another kind in the way is refused before minutes of work.
An existing output is replaced only when `replaces(path)` says it is one this command wrote
(a previous eval JSON, an earlier PNG): never a user's other file. stdlib only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from edgeliquid.errors import EdgeLiquidError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def check_out_file(
    path: str | os.PathLike,
    what: str,
    suffixes: Sequence[str] = (),
    replaces: Callable[[Path], bool] | None = None,
) -> Path:
    """`path` as a file to write; EdgeLiquidError (naming `what`, e.g. "--json") otherwise.

    `suffixes`: the allowed endings (any when empty). An existing file is replaced only if
    `replaces(path)` is true; without `replaces` any existing file is refused.
    """
    path = Path(path)
    if suffixes and not path.name.lower().endswith(tuple(suffixes)):
        raise EdgeLiquidError(f"{what} {path} must end in {' or '.join(suffixes)}")
    if path.is_dir():
        raise EdgeLiquidError(f"{what} {path} is a folder; give a file name")
    if path.exists() or path.is_symlink():
        if not path.is_file():
            raise EdgeLiquidError(f"{what} {path} exists and is not a regular file")
        if replaces is None or not replaces(path):
            raise EdgeLiquidError(
                f"{what} {path} exists and is not an earlier output of this command; "
                "not overwriting it (choose another name or remove it)"
            )
    _check_folder(path.parent, what, path)
    return path


def check_out_dir(path: str | os.PathLike, what: str) -> Path:
    """`path` as a folder to write into (it may exist, or be made); EdgeLiquidError otherwise."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise EdgeLiquidError(f"{what} {path} is a file, not a folder")
    _check_folder(path, what, path)
    return path


def _check_folder(folder: Path, what: str, path: Path) -> None:
    """The nearest existing ancestor of `folder` (itself included) must be a writable folder."""
    for existing in (folder, *folder.parents):
        if existing.exists():
            break
        if existing.is_symlink():
            raise EdgeLiquidError(f"{what} {path}: {existing} is a dangling symlink")
    else:
        return
    if not existing.is_dir():
        raise EdgeLiquidError(f"{what} {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise EdgeLiquidError(f"{what} {path}: cannot write into {existing}")


def is_png(path: Path) -> bool:
    """The file starts with the PNG signature (an earlier plot or contact sheet)."""
    try:
        with open(path, "rb") as f:
            return f.read(len(PNG_MAGIC)) == PNG_MAGIC
    except OSError:
        return False


def json_with(*keys: str, **values: Any) -> Callable[[Path], bool]:
    """A `replaces` test: the file is a JSON object holding `keys` and the `values`."""

    def test(path: Path) -> bool:
        try:
            found = json.loads(path.read_text())
        except (OSError, ValueError):
            return False
        if not isinstance(found, dict) or not all(key in found for key in keys):
            return False
        return all(found.get(key) == value for key, value in values.items())

    return test
