"""The `edgeliquid` command line.

Each command imports its heavy modules (torch, onnx, the simulator) inside its body, so
`edgeliquid --help` and the on-device commands stay fast and torch-free.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from edgeliquid import __version__
from edgeliquid.errors import EdgeLiquidError

app = typer.Typer(
    help="Compact liquid (CfC) navigation policies: simulate, train, export, fly.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one error line to stderr and return the Exit to raise."""
    typer.echo(f"edgeliquid: error: {message}", err=True)
    return typer.Exit(code)


def command(*args: Any, **kwargs: Any) -> Callable:
    """`app.command` that turns EdgeLiquidError (and a few OS errors) into one clear line."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*a: Any, **kw: Any) -> Any:
            try:
                return fn(*a, **kw)
            except EdgeLiquidError as e:
                raise fail(str(e)) from None
            except (FileNotFoundError, IsADirectoryError, PermissionError) as e:
                raise fail(f"{e.strerror}: {e.filename}") from None

        return app.command(*args, **kwargs)(wrapper)

    return decorate


def _version(value: bool) -> None:
    if value:
        typer.echo(f"edgeliquid {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Compact liquid (CfC) navigation policies: simulate, train, export, fly."""


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
