"""The typer app, its `--version` callback, and what every command shares: one-line errors
(`guarded`), validated configs (`config_of`), atomic JSON outputs (`write_json`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
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


def guarded(fn: Callable) -> Callable:
    """A command body whose EdgeLiquidError (or OSError) becomes one `edgeliquid: error:` line."""

    @functools.wraps(fn)
    def wrapper(*a: Any, **kw: Any) -> Any:
        try:
            return fn(*a, **kw)
        except EdgeLiquidError as e:
            raise fail(str(e)) from None
        except OSError as e:  # a full disk, a missing or unreadable path: one line
            where = f": {e.filename}" if e.filename else ""
            raise fail(f"{e.strerror or e}{where}") from None

    return wrapper


def config_of(cls: Callable, **kwargs: Any) -> Any:
    """Build a validated config; its ValueError becomes the one-line user error."""
    try:
        return cls(**kwargs)
    except ValueError as e:
        raise EdgeLiquidError(str(e)) from None


def write_json(path: Path, value: Any) -> None:
    """Write `value` as indented JSON atomically (the folder made if needed); say so."""
    import json

    from edgeliquid.episodes import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, (json.dumps(value, indent=2) + "\n").encode())
    typer.echo(f"wrote {path}")


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
