"""`python -m edgeliquid.cli`."""

from edgeliquid.cli import app

app()
