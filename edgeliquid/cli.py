"""The `edgeliquid` command line.

Each command imports its heavy modules (torch, onnx, the simulator) inside its body, so
`edgeliquid --help` and the on-device commands stay fast and torch-free.
"""

from __future__ import annotations

import functools
import sys
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


@command("info")
def info_command(
    checkpoint: Annotated[
        Path | None,
        typer.Argument(help="Checkpoint .pt to describe.", show_default="the default config"),
    ] = None,
    arch: Annotated[
        str | None,
        typer.Option(help="cfc | lstm | gru | cnn, for the default config.", show_default="cfc"),
    ] = None,
) -> None:
    """Arch, input size, parameters, MFLOP per step and state size of a policy."""
    from edgeliquid.model import (
        ARCHS,
        NavPolicyConfig,
        build_policy,
        load_checkpoint,
        policy_summary,
    )

    if checkpoint is not None and arch is not None:
        raise EdgeLiquidError("--arch is for the default config; a checkpoint has its own arch")
    if checkpoint is not None:
        model, source = load_checkpoint(checkpoint)[0], str(checkpoint)
    elif (arch or "cfc") not in ARCHS:
        raise EdgeLiquidError(f"--arch must be one of {', '.join(ARCHS)}, got {arch!r}")
    else:
        model, source = build_policy(NavPolicyConfig(arch=arch or "cfc")), "default config"
    for key, value in {"source": source, **policy_summary(model)}.items():
        typer.echo(f"{key + ':':<12} {value}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
