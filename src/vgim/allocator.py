"""glibc ``malloc`` settings for CPU training and for measuring memory.

PyTorch allocates CPU tensors with ``malloc``. glibc serves every block of 32 MiB or more (and, by
default, smaller blocks too until its dynamic threshold has grown) with its own ``mmap`` and returns it to
the kernel on ``free``. A training step allocates and frees the same large activations and gradients
every step, so each step the kernel maps fresh pages and zeroes them again (BENCHMARKS.md, "Allocator",
measures what that costs). :func:`keep_freed_memory` makes glibc serve large
blocks from its heap and keep freed memory for reuse, as PyTorch's CUDA caching allocator does on a GPU.
The process's resident memory then stays at its peak instead of falling between steps.

:func:`fix_mmap_threshold` does the opposite, for measuring: every block above a small size gets its own
mapping and is unmapped on ``free``, so the resident set size follows the live data.

Both are no-ops (returning False) where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform

__all__ = ["KEEP_FREED_MEMORY_ENV", "fix_mmap_threshold", "is_glibc", "keep_freed_memory"]

# glibc <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4

KEEP_FREED_MEMORY_ENV = "VGIM_KEEP_FREED_MEMORY"  # "0" turns keep_freed_memory off


def is_glibc() -> bool:
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if not is_glibc():
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def _mallopt(param: int, value: int) -> bool:
    libc = _libc()
    if libc is None:
        return False
    return bool(libc.mallopt(param, value))


def keep_freed_memory() -> bool:
    """Serve large blocks from the heap and never give freed heap memory back (this process, from now on).

    Returns True when the settings took effect. Set the environment variable ``VGIM_KEEP_FREED_MEMORY=0``
    to keep glibc's defaults. Measured effect: BENCHMARKS.md ("Allocator").
    """
    if os.environ.get(KEEP_FREED_MEMORY_ENV, "1") == "0":
        return False
    # no mmap for any block (glibc still falls back to mmap if the heap cannot grow), and no trimming below 2 GiB
    return _mallopt(M_MMAP_MAX, 0) and _mallopt(M_TRIM_THRESHOLD, 2**31 - 1)  # (mallopt takes a C int)


def fix_mmap_threshold(nbytes: int = 128 * 1024) -> bool:
    """Make glibc serve every allocation >= ``nbytes`` with its own ``mmap`` and unmap it on free.

    By default glibc raises this threshold (up to 32 MiB) whenever a mapped block is freed, after which
    blocks of that size come from the heap and stay resident after ``free``; the RSS peak then depends on
    fragmentation and allocation order more than on what is alive. Fixing it makes RSS follow live data.
    """
    return _mallopt(M_MMAP_THRESHOLD, nbytes)
