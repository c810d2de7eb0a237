"""The `edgeliquid` command line: `app`, with the commands in pipeline order.

One module per command group under `edgeliquid/cli/`; each imports its heavy modules (torch,
onnx, the simulator) inside the command body, so `--help` and `run` stay fast and torch-free.
"""

from __future__ import annotations

import sys

from edgeliquid.runtime import stopping  # stdlib only

if sys.argv[1:2] == ["run"]:  # `run` owns SIGTERM/SIGINT/SIGHUP before typer's imports too
    stopping.catch_early()

from edgeliquid.cli import bench, collect, demo, evaluate, export, run, sim, train, tune
from edgeliquid.cli.app import app

PIPELINE = (  # (name, command): the order `edgeliquid --help` lists them
    ("demo", demo.demo_command),
    ("collect", collect.collect_command),
    ("train", train.train_command),
    ("eval", evaluate.eval_command),
    ("export", export.export_command),
    ("run", run.run_command),
    ("tune", tune.tune_command),
    ("bench", bench.bench_command),
    ("info", train.info_command),
)
for _name, _command in PIPELINE:
    app.command(_name)(_command)
app.add_typer(sim.sim_app, name="sim")

__all__ = ["PIPELINE", "app"]
