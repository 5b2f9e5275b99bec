"""Keep freed memory in the training process instead of handing it back to the kernel (glibc malloc).

On the CPU PyTorch allocates through malloc. glibc serves blocks above its mmap threshold (which it
adapts up to 32 MB) with a fresh ``mmap`` and unmaps them on ``free``, and it trims the heap's top when
more than its trim threshold is free there. A training step frees and reallocates the same activations
every step, so the kernel zero-fills and page-faults them in again each time. Measured
(results/README.md, benchmarks/page_faults.py, profile_train.py): Xception-65 at 256x512, batch 8, one
thread, 38.0 s a step, most of it in the kernel; with both thresholds raised, 17.4 s. jemalloc or tcmalloc
help only when preloaded before the process starts (and told to keep pages); ``mallopt`` works from
inside the process, so sosd calls it.
"""
from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h>
MMAP_THRESHOLD = 1 << 30  # blocks up to 1 GiB come from the heap and go back to it
TRIM_THRESHOLD = 2 ** 31 - 1  # never give the heap's free top back


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process. False where the C library is not glibc
    (macOS, Windows, musl): nothing is changed there. The resident memory then stays at its peak."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
