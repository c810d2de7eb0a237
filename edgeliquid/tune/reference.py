"""Reference models on a study's front: an exported policy measured exactly as a trial is.

`edgeliquid tune ... --reference models/nav_cfc.onnx` flies the file on the space's eval plan
(its seed, shifts and episodes) and times its step as `trial.step_latency_us` times a trial's,
in the driver once the trials are done (one at a time on this machine, so nothing else runs
beside the timing). front.md and front.png then show where an existing model stands against
the points the search found. A reference is not a trial: it was trained on its own recipe, not
on the space's budget, and it is never `best.onnx`.

Each measurement is kept in RUN_DIR/references/NAME.json with the file's sha256: a rerun of the
study measures only references that are new or changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from edgeliquid.errors import EdgeLiquidError
from edgeliquid.tune.space import SearchSpace
from edgeliquid.tune.trial import step_latency_us, write_json

REFERENCES = "references"


def check_references(models: Sequence[Path]) -> None:
    """Before any trial runs: each reference is a readable exported model with a unique name."""
    from edgeliquid.runtime.engine import OnnxPolicy

    names = [model.stem for model in models]
    for model in models:
        if not model.is_file():
            raise EdgeLiquidError(f"--reference {model}: no such file")
        try:
            OnnxPolicy(model)  # the runtime's checks: signature, metadata, inputs
        except EdgeLiquidError as e:
            raise EdgeLiquidError(f"--reference {model}: {e}") from None
        if names.count(model.stem) > 1:
            raise EdgeLiquidError(f"--reference: two files are named {model.stem}")


def measure(space: SearchSpace, model: Path) -> dict[str, Any]:
    """Success on the space's eval plan and p50 step latency, as `trial.run_trial` reports."""
    from edgeliquid.evaluate import evaluate
    from edgeliquid.runtime.engine import OnnxPolicy

    plan = space.eval
    report = evaluate(str(model), episodes=plan.episodes, seed=plan.seed, shifts=plan.shifts)
    per_shift = {row["shift"]: row["success_rate"] for row in report["results"]}
    meta = OnnxPolicy(model).metadata
    return {
        "id": model.stem,
        "path": str(model),
        "success": sum(per_shift.values()) / len(per_shift),
        "success_per_shift": per_shift,
        "latency_us": step_latency_us(model, space.latency),
        "params": meta.param_count,
        "size_bytes": model.stat().st_size,
        "arch": meta.arch,
    }


def measured(
    run_dir: Path, space: SearchSpace, models: Sequence[Path], echo: Callable[[str], None]
) -> None:
    """Measure each reference not yet measured in this form (by sha256) into RUN_DIR."""
    for model in models:
        digest = hashlib.sha256(model.read_bytes()).hexdigest()
        path = run_dir / REFERENCES / f"{model.stem}.json"
        if path.is_file() and json.loads(path.read_text()).get("sha256") == digest:
            continue
        echo(f"reference {model}: flying the space's eval plan and timing its step")
        point = measure(space, model) | {"sha256": digest}
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, point)
        echo(
            f"reference {point['id']}: success {point['success']:.2f} | "
            f"p50 {point['latency_us']:.0f} µs | {point['params']:,} params"
        )


def load_references(run_dir: Path) -> list[dict[str, Any]]:
    """The measured references in RUN_DIR, by name."""
    folder = run_dir / REFERENCES
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
