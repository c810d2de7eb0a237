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
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_runtime_imports_no_torch():
    code = "import edgeliquid.runtime, edgeliquid.cli, sys; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
