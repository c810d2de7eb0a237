#!/usr/bin/env python3
"""The four checks of scripts/arm64_smoke.sh, one result line each (PASS / FAIL / INFO).

    run WORK SECONDS CMD  [1/4, host] run the daemon command CMD (arm64 Python under qemu),
                          check its JSON lines and exit status; keep wall time and peak RSS
    device WORK           [2/4 and 3/4, arm64] time the daemon's imports, replay the golden
                          frames through the shipped model against the stored x86 commands,
                          and check that the device install has none of the training stack
    report WORK           [4/4, host] import time, ms/step, peak RSS: reported, never gated

Stdlib only at module level: `run` and `report` need no numpy. Exit status 1 if a check failed.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden" / "nav_cfc.npz"
MODEL = REPO / "models" / "nav_cfc.onnx"
# Measured: 2.4e-7 (2 ulp at the commands' ~1 m/s scale; NEON vs AVX kernels sum in another order).
# 1e-5 m/s or rad/s is 40x that and still far below anything a flight controller acts on.
TOLERANCE = 1e-5
COMMAND_FIELDS = ("seq", "t", "forward", "right", "down", "yaw_rate", "status", "reason")


def _line(verdict: str, n: int, what: str, text: str) -> None:
    print(f"{verdict} {n}/4 {what}: {text}", flush=True)


def _training_stack() -> list[str]:
    """The modules the runtime must never reach: pyproject's TID253 list (torch, onnx, ray...)."""
    import tomllib

    tool = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]
    return list(tool["ruff"]["lint"]["flake8-tidy-imports"]["banned-module-level-imports"])


# -- 1/4: the daemon, on the host side of qemu ---------------------------------------------------


def check_run(work: Path, cmd: list[str], timeout: float) -> bool:
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        _line("FAIL", 1, "run", f"no exit within {timeout:.0f} s: {' '.join(cmd[-8:])}")
        return False
    wall = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    run = {"wall_s": wall, "rss_mb": rss_mb, "p50_ms": float("nan")}
    (work / "run.json").write_text(json.dumps(run))
    (work / "run.stdout").write_text(proc.stdout)
    (work / "run.stderr").write_text(proc.stderr)
    problem = _run_problem(proc)
    if problem:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        _line("FAIL", 1, "run", f"{problem} (stderr: {tail or 'empty'}; output in {work})")
        return False
    messages = [json.loads(line) for line in proc.stdout.splitlines()]
    flown = [m for m in messages if m["status"] in ("ok", "degraded")]
    run["p50_ms"] = statistics.median(m["latency_ms"] for m in flown)
    (work / "run.json").write_text(json.dumps(run))
    kinds = Counter(f"{m['status']} {m['reason']}".strip() for m in messages)
    last = messages[-1]
    _line(
        "PASS",
        1,
        "run",
        f"{len(messages)} commands, {len(flown)} from policy steps "
        f"(last forward {flown[-1]['forward']:.2f} m/s, "
        f"yaw_rate {flown[-1]['yaw_rate']:.2f} rad/s; "
        f"{', '.join(f'{n} {k}' for k, n in kinds.most_common())}), "
        f"final {last['status']} ({last['reason']}), exit 0",
    )
    return True


def _run_problem(proc: subprocess.CompletedProcess) -> str:
    """Why the daemon's run does not pass, or '' if it does."""
    if proc.returncode != 0:
        return f"exit status {proc.returncode}"
    try:
        messages = [json.loads(line) for line in proc.stdout.splitlines()]
    except json.JSONDecodeError as e:
        return f"a stdout line is not JSON ({e})"
    if not messages:
        return "no commands on stdout"
    if any(any(k not in m for k in COMMAND_FIELDS) for m in messages):
        return f"a command lacks one of {', '.join(COMMAND_FIELDS)}"
    if not any(m["status"] in ("ok", "degraded") for m in messages):
        reasons = sorted({m["reason"] for m in messages})
        return f"no policy step came back in budget (holds only: {', '.join(reasons)})"
    last = messages[-1]
    if (last["status"], last["reason"]) != ("hold", "shutdown"):
        return f"the last command is {last['status']}/{last['reason']}, not the shutdown hold"
    if any(last[k] != 0.0 for k in ("forward", "right", "down", "yaw_rate")):
        return "the final hold is not all zeros"
    return ""


# -- 2/4 and 3/4: on arm64 -------------------------------------------------------------------------


def check_device(work: Path) -> bool:
    t0 = time.perf_counter()
    import edgeliquid.cli  # what `edgeliquid run` loads before it opens the model
    import edgeliquid.runtime.service  # noqa: F401  (numpy, OpenCV, onnxruntime)

    import_s = time.perf_counter() - t0
    golden_ok, step_ms = _check_golden()
    clean = _check_no_training_stack()
    (work / "device.json").write_text(json.dumps({"import_s": import_s, "step_ms": step_ms}))
    return golden_ok and clean


def _check_golden() -> tuple[bool, float]:
    import numpy as np
    import onnxruntime

    from edgeliquid.runtime.engine import OnnxPolicy

    golden = np.load(GOLDEN)
    policy = OnnxPolicy(MODEL)
    policy.reset()
    commands, times = [], []
    for frame, dt in zip(golden["frames"], golden["dt"], strict=True):
        t0 = time.perf_counter()
        commands.append(policy.step(frame, float(dt)))
        times.append(time.perf_counter() - t0)
    diff = float(np.abs(np.stack(commands) - golden["commands"]).max())
    state_diff = float(np.abs(policy.state - golden["state"]).max())
    step_ms = statistics.median(times[1:]) * 1e3  # the first step also translates ORT's code
    ok = diff <= TOLERANCE and state_diff <= TOLERANCE and bool(np.isfinite(diff))
    _line(
        "PASS" if ok else "FAIL",
        2,
        "golden",
        f"{len(commands)} frames through {MODEL.name} on onnxruntime {onnxruntime.__version__}: "
        f"max abs diff vs the x86 commands {diff:.2g} (state {state_diff:.2g}), "
        f"tolerance {TOLERANCE:g}",
    )
    return ok, step_ms


def _check_no_training_stack() -> bool:
    import importlib.metadata
    import importlib.util
    import platform

    banned = _training_stack()
    found = [name for name in banned if importlib.util.find_spec(name) is not None]
    loaded = [name for name in banned if name in sys.modules]
    dists = sorted(
        {d.metadata["Name"].lower() for d in importlib.metadata.distributions()} - {"edgeliquid"}
    )
    installed = [name for name in banned if name in dists]
    ok = platform.machine() == "aarch64" and not (found or loaded or installed)
    if ok:
        text = f"{len(dists)} distributions ({', '.join(dists)}); none of {', '.join(banned)}"
    else:
        text = (
            f"machine {platform.machine()}; importable {found}, imported {loaded}, "
            f"installed {installed}"
        )
    _line("PASS" if ok else "FAIL", 3, "device install", text)
    return ok


# -- 4/4 ------------------------------------------------------------------------------------------


def report(work: Path) -> bool:
    run = json.loads((work / "run.json").read_text())
    device = json.loads((work / "device.json").read_text())
    _line(
        "INFO",
        4,
        "footprint (emulated, not gated)",
        f"daemon imports {device['import_s']:.1f} s, policy step {device['step_ms']:.0f} ms "
        f"(replay median; daemon p50 {run['p50_ms']:.0f} ms), daemon peak RSS "
        f"{run['rss_mb']:.0f} MB (qemu's included), daemon wall {run['wall_s']:.1f} s",
    )
    return True


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("run", "device", "report"):
        print(__doc__, file=sys.stderr)
        return 2
    work = Path(argv[1])
    if argv[0] == "run":
        if len(argv) < 4:
            print("usage: arm64_checks.py run WORK SECONDS CMD...", file=sys.stderr)
            return 2
        ok = check_run(work, argv[3:], float(argv[2]))
    elif argv[0] == "device":
        sys.path.insert(0, str(REPO))
        ok = check_device(work)
    else:
        ok = report(work)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
