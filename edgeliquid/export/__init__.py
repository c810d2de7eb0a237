"""`edgeliquid export`: checkpoint → verified, self-describing ONNX file.

The flow, each stage printed as it finishes: load the checkpoint, export the prepared graph
(`graph.py`), save it with its metadata into a private temp folder beside OUT, verify it
against torch on simulator frames (`verify.py`), and only then move it (and its `.sha256`) over
OUT; optionally quantize it to int8, judged closed loop (`quantize.py`), the same way. A
failed verification or a refused int8 file removes only the temporaries: an existing OUT
stays as it was.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgeliquid.errors import EdgeLiquidError
from edgeliquid.export.graph import ExportOptions, export_checkpoint, save
from edgeliquid.paths import check_out_file

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


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def int8_path(fp32_path: Path) -> Path:
    """Where `--quantize int8` writes: OUT.int8.onnx beside OUT.onnx."""
    return fp32_path.with_name(fp32_path.stem + ".int8.onnx")


def _is_onnx(path: Path) -> bool:
    """An existing file that parses as an ONNX model (an earlier export we may replace)."""
    import onnx

    try:
        return len(onnx.load(str(path), load_external_data=False).graph.node) > 0
    except Exception:  # not a protobuf, or not a model: whatever onnx raises
        return False


def _is_sidecar(path: Path) -> bool:
    """A `sha256sum` line (an earlier export's sidecar)."""
    try:
        fields = path.read_text()[:300].split()
    except (OSError, UnicodeDecodeError):
        return False
    return len(fields) == 2 and len(fields[0]) == 64


def check_out(out: Path, int8: bool = False) -> None:
    """Refuse, before any work, an OUT (or its sidecar, or OUT.int8.onnx) that cannot be
    written or would replace something other than an earlier export."""
    paths = [out, int8_path(out)] if int8 else [out]
    for path in paths:
        check_out_file(path, "output", (".onnx",), replaces=_is_onnx)
        check_out_file(_sidecar(path), "output sidecar", replaces=_is_sidecar)
    if not out.parent.is_dir():
        raise EdgeLiquidError(f"output folder {out.parent} does not exist")


@contextlib.contextmanager
def _staged(out: Path) -> Iterator[Path]:
    """A path named like `out` in a fresh private folder beside it (mkdtemp: O_EXCL, same
    file system); the folder and whatever is left in it go when the block ends."""
    folder = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        yield folder / out.name
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _commit(staged: Path, out: Path) -> None:
    """Move a checked file over `out`, then its sidecar (which names the same file name)."""
    os.replace(staged, out)
    os.replace(_sidecar(staged), _sidecar(out))


def _kept(out: Path) -> str:
    return f"the existing {out} was kept as it was" if out.exists() else f"{out} was not written"


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


def _verify(policy: PolicyBase, staged: Path, out: Path, options, echo: Echo, steps: int):
    from edgeliquid.export.verify import verify

    start = time.perf_counter()
    checks = verify(policy, staged.read_bytes(), options, steps=steps)
    for check in checks:
        echo("  " + check.line())
    if not all(check.ok for check in checks):
        worst = max(checks, key=lambda c: c.diff)
        raise EdgeLiquidError(
            f"verification failed ({worst.name}: max abs diff {worst.diff:.2e} > atol "
            f"{worst.atol:.0e}); {_kept(out)}"
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
    """Export `checkpoint` to `out`; verify unless `verify_steps` is None. Raises on failure,
    leaving an existing `out` untouched."""
    from edgeliquid.model.checkpoint import load_checkpoint

    check_out(out)
    policy, ckpt = load_checkpoint(checkpoint)
    _start_line(policy, checkpoint, options, echo)
    start = time.perf_counter()
    model, _ = export_checkpoint(policy, ckpt, options)
    checks = ()
    with _staged(out) as staged:
        size = save(model, staged)
        echo(f"ONNX: export success ✅ {time.perf_counter() - start:.1f}s ({size / 1024:.1f} KB)")
        if verify_steps is not None:
            checks = _verify(policy, staged, out, options, echo, verify_steps)
        _commit(staged, out)
    echo(f"ONNX: saved as {out} (sidecar {out.name}.sha256)")
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
    out = int8_path(fp32_path)
    check_out(out)
    policy, _ = load_checkpoint(checkpoint)
    start = time.perf_counter()
    with _staged(out) as staged:
        size = quantize_int8(fp32_path, staged, policy, options, settings.calibration_steps)
        echo(
            f"int8: quantize success ✅ {time.perf_counter() - start:.1f}s "
            f"({size / 1024:.1f} KB vs fp32 {fp32_path.stat().st_size / 1024:.1f} KB)"
        )
        fp32 = closed_loop_success(fp32_path, settings.episodes, settings.seed)
        int8 = closed_loop_success(staged, settings.episodes, settings.seed)
        echo(
            f"  closed loop, {settings.episodes} episodes of 'none' (seed {settings.seed}): "
            f"fp32 success {fp32:.2f}, int8 success {int8:.2f}"
        )
        if fp32 - int8 > settings.max_drop and not force:
            raise EdgeLiquidError(
                f"int8 success {int8:.2f} is more than {settings.max_drop:.2f} below fp32 "
                f"{fp32:.2f}; {_kept(out)} (fp32 kept; --force keeps int8)"
            )
        _commit(staged, out)
    echo(f"int8: saved as {out}")
    return out
