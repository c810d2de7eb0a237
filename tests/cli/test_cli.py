"""CLI layer: version, help, and the rule that the runtime never pulls in torch."""

import subprocess
import sys

from typer.testing import CliRunner

from edgeliquid import __version__
from edgeliquid.cli import app

runner = CliRunner()


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"edgeliquid {__version__}"


def test_help_lists_commands():
    """Every command, in pipeline order (demo, collect, train, eval, export, run, tune, ...)."""
    result = runner.invoke(app, ["--help"], terminal_width=120)
    assert result.exit_code == 0
    names = ["demo", "collect", "train", "eval", "export", "run", "tune", "bench", "info", "sim"]
    listed = [line.split()[1] for line in result.output.splitlines() if line.startswith("│ ")]
    assert [name for name in listed if name in names] == names
    registered = [c.name for c in app.registered_commands] + [g.name for g in app.registered_groups]
    assert registered == names  # nothing registered that the help (and this list) misses
    sim = runner.invoke(app, ["sim", "--help"], terminal_width=120).output
    assert "preview" in sim and "bench" in sim


def test_runtime_imports_no_torch():
    code = "import edgeliquid.runtime, edgeliquid.cli, sys; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
