"""Generated blocks inside hand-written pages: the text between a begin and an end marker is
replaced, everything outside it is kept (compare_archs, cfc_stall, train_tasks)."""

from __future__ import annotations

from pathlib import Path

from edgeliquid.episodes import atomic_write


def replace_block(text: str, block: str, begin: str, end: str, where: str = "the page") -> str:
    """`text` with everything between the markers replaced by `block`; the rest kept."""
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise ValueError(
            f"{where} needs exactly one {begin} line followed by one {end} line around the "
            "generated block"
        )
    head, rest = text.split(begin)
    tail = rest.split(end)[1]
    return f"{head}{begin}\n{block.strip()}\n{end}{tail}"


def write_block(path: Path, block: str, begin: str, end: str) -> None:
    """Rewrite the marked block of the page at `path` (atomically); SystemExit if unmarked."""
    try:
        text = replace_block(path.read_text(), block, begin, end, str(path))
    except (OSError, ValueError) as e:
        raise SystemExit(str(e)) from None
    atomic_write(path, text.encode())
