#!/usr/bin/env python3
"""The benchmark as a script: `python scripts/benchmark.py [MODEL] --json out.json --plot cdf.png`.

The same as `edgeliquid bench` (see `edgeliquid bench --help`; code: edgeliquid/bench/),
runnable from a checkout without installing the package.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edgeliquid.cli import app

if __name__ == "__main__":
    sys.exit(app(["bench", *sys.argv[1:]], prog_name="benchmark.py"))
