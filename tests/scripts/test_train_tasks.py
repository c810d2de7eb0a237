"""scripts/train_tasks.py's table and the marked-block writer the scripts share."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
sys.path.insert(0, str(SCRIPTS))

import marked  # noqa: E402
import train_tasks  # noqa: E402


def _report(rates: dict[str, float]) -> dict:
    rows = [
        {"task": t, "shift": "none", "success_rate": r, "success_ci95": [r - 0.1, r]}
        for t, r in rates.items()
    ]
    rows.append({"task": "reach", "shift": "dusk", "success_rate": 0.0, "success_ci95": [0, 0]})
    return {"results": rows}


def test_table_has_a_row_per_task_and_a_column_per_arch():
    reports = {"cfc": _report({"reach": 0.9, "follow": 0.5}), "lstm": _report({"reach": 1.0})}
    lines = train_tasks.table(reports).splitlines()
    assert lines[0] == "| task | cfc | lstm |" and len(lines) == 2 + len(train_tasks.TASKS)
    reach = next(line for line in lines if line.startswith("| `reach`"))
    assert "0.90 [0.80, 0.90]" in reach and "1.00 [0.90, 1.00]" in reach  # shift none only
    follow = next(line for line in lines if line.startswith("| `follow`"))
    assert follow.endswith("| – |")  # lstm has no follow row: shown as missing, not as 0


def test_marked_block_is_replaced_and_the_prose_kept(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("intro\n<!-- a -->\nold\n<!-- b -->\noutro\n")
    marked.write_block(page, "new\n", "<!-- a -->", "<!-- b -->")
    assert page.read_text() == "intro\n<!-- a -->\nnew\n<!-- b -->\noutro\n"
    page.write_text("no markers\n")
    with pytest.raises(SystemExit, match="needs exactly one"):
        marked.write_block(page, "new", "<!-- a -->", "<!-- b -->")
    assert page.read_text() == "no markers\n"  # untouched
