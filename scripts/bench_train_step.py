#!/usr/bin/env python3
"""One training step of the shipped policy, with and without `host.keep_freed_memory`.

    .venv/bin/python scripts/bench_train_step.py --json docs/bench/train_step.json

A step is `trainer.optimizer_step`, what `edgeliquid train` does per batch: 32 windows of 32
frames (72x128, uint8) through the conv head and the CfC, the masked loss, backward, gradient
clipping, Adam. The allocator
setting is process-wide and cannot be undone, so each setting runs in its own child process
(one torch thread, as `train`), the two alternating `--rounds` times; the JSON holds every
step's seconds, the medians and their ratio, all measured in this one run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SETTINGS = ("default", "keep_freed_memory")


def child(setting: str, steps: int, warmup: int) -> list[float]:
    """Seconds of each of `steps` training steps after `warmup` untimed ones."""
    import torch

    from edgeliquid.host import keep_freed_memory
    from edgeliquid.model import NavPolicyConfig, build_policy
    from edgeliquid.training.trainer import optimizer_step

    if setting == "keep_freed_memory" and not keep_freed_memory():
        raise SystemExit("keep_freed_memory is not available here (glibc only)")
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build_policy(NavPolicyConfig(input_norm="frame", input_height=72, input_width=128))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    frames = torch.randint(0, 256, (32, 32, 72, 128, 3), dtype=torch.uint8)
    batch = (frames, torch.randn(32, 32, 4), torch.full((32, 32), 0.1), torch.ones(32, 32) > 0)
    model.train()
    seconds = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        optimizer_step(model, optimizer, batch, grad_clip=1.0)
        if i >= warmup:
            seconds.append(time.perf_counter() - start)
    return seconds


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", type=Path, required=True, help="where the results go")
    p.add_argument("--rounds", type=int, default=3, help="child processes per setting")
    p.add_argument("--steps", type=int, default=8, help="timed steps per child")
    p.add_argument("--child", choices=SETTINGS, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        print(json.dumps(child(a.child, a.steps, warmup=2)))
        return
    if a.json.is_dir():
        raise SystemExit(f"--json {a.json} is a folder, not a file")
    samples: dict[str, list[float]] = {s: [] for s in SETTINGS}
    for r in range(a.rounds):
        for setting in SETTINGS:
            command = [sys.executable, __file__, "--json", "-", "--child", setting]
            out = subprocess.run(
                [*command, "--steps", str(a.steps)], capture_output=True, text=True, check=True
            )
            samples[setting] += json.loads(out.stdout)
            so_far = statistics.median(samples[setting])
            print(f"round {r + 1}/{a.rounds} {setting}: median so far {so_far:.3f} s")
    medians = {s: statistics.median(v) for s, v in samples.items()}
    from edgeliquid.episodes import atomic_write
    from edgeliquid.host import cpu_name

    report = {
        "what": "one training step: 32 windows x 32 frames (72x128), forward, backward, Adam",
        "command": "scripts/bench_train_step.py " + " ".join(argv),
        "machine": cpu_name(),
        "torch_threads": 1,
        "median_seconds": medians,
        "speedup": medians["default"] / medians["keep_freed_memory"],
        "seconds": samples,
    }
    atomic_write(a.json, (json.dumps(report, indent=1) + "\n").encode())
    print(
        f"median step {medians['default']:.3f} s -> {medians['keep_freed_memory']:.3f} s "
        f"({report['speedup']:.2f}x); wrote {a.json}"
    )


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main(sys.argv[1:])
