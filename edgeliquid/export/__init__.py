"""`edgeliquid export`: checkpoint → verified, self-describing ONNX file.

The flow, each stage printed as it finishes: load the checkpoint, export the prepared graph
(`graph.py`), save it with its metadata, verify it against torch on simulator frames
(`verify.py`) — deleting the file if any difference exceeds the tolerance — and optionally
quantize it to int8, judged closed loop (`quantize.py`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgeliquid.errors import EdgeLiquidError
from edgeliquid.export.graph import ExportOptions, export_checkpoint, save

if TYPE_CHECKING:
    from edgeliquid.export.quantize import QuantizeOptions
    from edgeliquid.model.policy import PolicyBase

Echo = Callable[[str], None]


@dataclass(frozen=True)
class ExportResult:
    """What `run_export` produced: the kept files and the verification lines."""

    path: Path
    size: int
    checks: tuple = ()


def _versions() -> str:
    import onnx
    import onnxruntime
    import torch

    return (
        f"torch {torch.__version__}, onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}"
    )


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".sha256").unlink(missing_ok=True)


def _check_out(out: Path) -> None:
    if out.suffix != ".onnx":
        raise EdgeLiquidError(f"output {out} must end in .onnx")
    if not out.parent.is_dir():
        raise EdgeLiquidError(f"output folder {out.parent} does not exist")


def _start_line(policy: PolicyBase, checkpoint: Path, options: ExportOptions, echo: Echo) -> None:
    from edgeliquid.model.flops import count_parameters

    config = policy.config
    frames = f"{options.steps}x" if options.graph == "unrolled" else "1x"
    dt = "dt [1,1] input" if options.dt_mode == "input" else f"dt fixed {config.nominal_dt} s"
    echo(
        f"edgeliquid export: {checkpoint} ({config.arch}, {count_parameters(policy):,} params) → "
        f"{options.graph} graph, image {frames}{config.input_height}x{config.input_width}x3 "
        f"uint8, state [1,{policy.state_size}], {dt}"
    )
    echo(f"  {_versions()}, opset {options.opset}")


def _verify_or_remove(
    policy: PolicyBase, out: Path, options: ExportOptions, echo: Echo, steps: int
):
    from edgeliquid.export.verify import verify

    start = time.perf_counter()
    try:
        checks = verify(policy, out.read_bytes(), options, steps=steps)
    except BaseException:  # an unverified file must not be left behind to be flown
        _remove(out)
        raise
    for check in checks:
        echo("  " + check.line())
    if not all(check.ok for check in checks):
        _remove(out)
        worst = max(checks, key=lambda c: c.diff)
        raise EdgeLiquidError(
            f"verification failed ({worst.name}: max abs diff {worst.diff:.2e} > atol "
            f"{options.atol:.0e}); {out} was removed"
        )
    echo(f"ONNX: verified ✅ {time.perf_counter() - start:.1f}s on {steps} simulator steps")
    return tuple(checks)


def run_export(
    checkpoint: Path,
    out: Path,
    options: ExportOptions,
    echo: Echo = print,
    verify_steps: int | None = 500,
) -> ExportResult:
    """Export `checkpoint` to `out`; verify unless `verify_steps` is None. Raises on failure."""
    from edgeliquid.model.checkpoint import load_checkpoint

    _check_out(out)
    policy, ckpt = load_checkpoint(checkpoint)
    _start_line(policy, checkpoint, options, echo)
    start = time.perf_counter()
    model, _ = export_checkpoint(policy, ckpt, options)
    size = save(model, out)
    echo(
        f"ONNX: export success ✅ {time.perf_counter() - start:.1f}s, saved as {out} "
        f"({size / 1024:.1f} KB, sidecar {out.name}.sha256)"
    )
    checks = ()
    if verify_steps is not None:
        checks = _verify_or_remove(policy, out, options, echo, verify_steps)
    return ExportResult(out, size, checks)


def next_steps(path: Path, echo: Echo = print) -> None:
    """The closing block: what to try with the file."""
    echo(
        f"\nExport complete. Next:\n"
        f"  edgeliquid eval {path} --episodes 100 --seed 12345     # closed loop in the simulator\n"
        f"  edgeliquid run {path} --source sim --sink stdout --duration 5\n"
        f"  edgeliquid bench {path}                                # latency on this machine\n"
        f"  scp {path} {path}.sha256 pi@drone:~/  (the runtime checks both before flying)"
    )


def run_quantize(
    checkpoint: Path,
    fp32_path: Path,
    options: ExportOptions,
    force: bool = False,
    echo: Echo = print,
    settings: QuantizeOptions | None = None,
) -> Path | None:
    """int8 copy of `fp32_path`, kept only if closed-loop success holds (or `force`)."""
    from edgeliquid.export.quantize import QuantizeOptions, closed_loop_success, quantize_int8
    from edgeliquid.model.checkpoint import load_checkpoint

    settings = settings or QuantizeOptions()
    policy, _ = load_checkpoint(checkpoint)
    out = fp32_path.with_name(fp32_path.stem + ".int8.onnx")
    start = time.perf_counter()
    size = quantize_int8(fp32_path, out, policy, options, settings.calibration_steps)
    echo(
        f"int8: quantize success ✅ {time.perf_counter() - start:.1f}s, saved as {out} "
        f"({size / 1024:.1f} KB vs fp32 {fp32_path.stat().st_size / 1024:.1f} KB)"
    )
    runs = {p: closed_loop_success(p, settings.episodes, settings.seed) for p in (fp32_path, out)}
    fp32, int8 = runs[fp32_path], runs[out]
    echo(
        f"  closed loop, {settings.episodes} episodes of 'none' (seed {settings.seed}): "
        f"fp32 success {fp32:.2f}, int8 success {int8:.2f}"
    )
    if fp32 - int8 > settings.max_drop and not force:
        _remove(out)
        raise EdgeLiquidError(
            f"int8 success {int8:.2f} is more than {settings.max_drop:.2f} below fp32 "
            f"{fp32:.2f}; {out} was removed (fp32 kept; --force keeps int8)"
        )
    return out
