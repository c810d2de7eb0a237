"""One exception type for problems the user can fix (bad file, bad argument, missing camera).

The CLI prints these as a single `edgeliquid: error: ...` line and exits non-zero; anything
else is a bug and keeps its traceback.
"""


class EdgeLiquidError(Exception):
    """A user-facing error whose message names the problem in one line."""
