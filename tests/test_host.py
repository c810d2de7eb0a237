"""host.keep_freed_memory: large blocks come from malloc's heap and stay there once freed."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

# Run in a child: mallopt changes the whole process, and pytest's allocations would blur it.
_PROBE = """
import ctypes
from edgeliquid.host import keep_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
MB = 1 << 20

def mapped_and_free_after_a_64_mb_block():
    block = bytearray(64 * MB)
    mapped = libc.mallinfo2().hblkhd
    del block
    return mapped, libc.mallinfo2().fordblks

before = mapped_and_free_after_a_64_mb_block()
kept = keep_freed_memory()
after = mapped_and_free_after_a_64_mb_block()
print(kept, before[0] >= 64 * MB, before[1] < 64 * MB, after[0] < 64 * MB, after[1] >= 64 * MB)
"""


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)
def test_large_blocks_are_kept_in_the_heap_after_the_call():
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    # before: the block is mapped on its own and unmapped when freed;
    # after: it is carved from the heap and its bytes stay there, free, for the next step
    assert out == ["True"] * 5
