"""What machine this is, for reports (stdlib only: usable without torch or numpy)."""

from __future__ import annotations

import contextlib
import platform
from pathlib import Path


def cpu_name() -> str:
    """/proc/cpuinfo's model name (x86), Model line (Raspberry Pi) or the platform's guess."""
    with contextlib.suppress(OSError):
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        for key in ("model name", "Model", "Hardware"):
            for line in lines:
                if line.split(":")[0].strip() == key:
                    return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"
