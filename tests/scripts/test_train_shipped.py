"""scripts/train_shipped.py's DAgger stage (which model flies, what trains on what, the budget) and
scripts/dagger_seeds.py's table of it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
sys.path.insert(0, str(SCRIPTS))

import train_shipped  # noqa: E402


def _value(command: list[str], option: str) -> str:
    return command[command.index(option) + 1]


def test_the_dagger_round_flies_the_base_and_fine_tunes_it_on_both_folders(tmp_path):
    a = train_shipped.parse(["--run", str(tmp_path / "r"), "--data", str(tmp_path / "d")])
    cmds = train_shipped.commands(a)
    base = tmp_path / "r" / "base"
    assert _value(cmds["train_base"], "--out") == str(base)
    assert _value(cmds["train_base"], "--max-minutes") == "15"
    flights = cmds["dagger_collect"]
    assert _value(flights, "--policy") == str(base / "best.pt")
    assert _value(flights, "--out") == str(tmp_path / "r" / "dagger")
    assert _value(flights, "--seed") == "4" != _value(cmds["collect"], "--seed")
    assert _value(flights, "--decoy-mix") == "domes"
    finetune = cmds["train"]
    assert finetune[2:4] == [str(tmp_path / "d"), str(tmp_path / "r" / "dagger")]
    assert _value(finetune, "--init") == str(base / "best.pt")
    assert (_value(finetune, "--epochs"), _value(finetune, "--lr")) == ("3", "0.001")
    assert _value(finetune, "--out") == str(tmp_path / "r")
    assert "--max-minutes" not in finetune  # added when it runs: what the budget has left


def test_without_dagger_the_base_is_the_run():
    a = train_shipped.parse(["--no-dagger", "--run", "runs/x"])
    cmds = train_shipped.commands(a)
    assert _value(cmds["train_base"], "--out") == "runs/x"
    assert "dagger_collect" not in cmds and "train" not in cmds


def _spent(run: Path, base_s: float, collect_s: float) -> None:
    (run / "base").mkdir(parents=True)
    (run / "base" / "metrics.json").write_text(json.dumps({"wall_seconds": base_s}))
    (run / "dagger_collect.json").write_text(json.dumps({"seconds": collect_s}))


def test_the_fine_tune_gets_what_the_budget_has_left(tmp_path, monkeypatch):
    ran: list[list[str]] = []
    monkeypatch.setattr(train_shipped, "run", ran.append)
    a = train_shipped.parse(["--run", str(tmp_path / "r")])
    _spent(a.run, base_s=480.0, collect_s=60.0)
    train_shipped.train_with_dagger(a, train_shipped.commands(a))
    assert len(ran) == 1 and _value(ran[0], "--init") == str(a.run / "base" / "best.pt")
    assert _value(ran[0], "--max-minutes") == "6.00"  # 15 - 8 - 1


def test_no_fine_tune_when_the_budget_is_spent(tmp_path, monkeypatch):
    ran: list[list[str]] = []
    monkeypatch.setattr(train_shipped, "run", ran.append)
    a = train_shipped.parse(["--run", str(tmp_path / "r")])
    _spent(a.run, base_s=870.0, collect_s=60.0)
    with pytest.raises(SystemExit, match="no time left to fine-tune"):
        train_shipped.train_with_dagger(a, train_shipped.commands(a))
    assert ran == []


def test_dagger_seeds_refuses_unfinished_runs_and_tabulates_the_stages(tmp_path):
    import dagger_seeds

    with pytest.raises(SystemExit, match=r"not finished train_shipped\.py runs"):
        dagger_seeds.main([str(tmp_path / "data"), str(tmp_path / "r")])
    row = {
        "seed": 3,
        "base_loss": 0.174,
        "loss": 0.225,
        "ratio_to_best": 1.22,
        "none_success": 1.0,
        "none_ci95": [0.96, 1.0],
        "base_flight_success": 0.83,
        "stage_seconds": [502.3, 117.0, 175.2],
        "minutes": 13.24,
        "selection_777": {"worst": 0.88, "worst_shift": "occlusion", "mean": 0.968},
    }
    line = dagger_seeds.table([row]).splitlines()[-1]
    assert line == (
        "| 3 | 0.174 → 0.225 | 1.22 | 1.00 [0.96, 1.00] | 0.83 | 13.2 (8.4 + 1.9 + 2.9) "
        "| 0.88 (occlusion), 0.968 |"
    )
