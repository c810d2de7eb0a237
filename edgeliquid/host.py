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


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_KEEP_BYTES = 2**31 - 1  # the largest value mallopt takes (an int)


def keep_freed_memory() -> bool:
    """Ask glibc malloc to serve large blocks from its heap and keep them when freed.

    By default glibc maps every block over 32 MB afresh and unmaps it on free, so a training
    step's large activations (a batch of 1024 camera frames is ~110 MB as float32) page-fault
    on every step: on the 2-core reference machine that was half of the training time. With
    the blocks kept, the next step reuses them (the effect PyTorch's CPU tuning guide gets from
    jemalloc/tcmalloc, with no extra dependency). The process keeps its peak memory until it
    exits. Returns False where there is no glibc (musl, macOS, Windows): nothing changes.
    """
    import ctypes

    if platform.system() != "Linux":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter is linked with
    except (OSError, AttributeError):
        return False
    keep = mallopt(_M_MMAP_THRESHOLD, _KEEP_BYTES) == 1
    return keep and mallopt(_M_TRIM_THRESHOLD, _KEEP_BYTES) == 1
