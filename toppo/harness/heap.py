"""glibc's malloc told to keep the memory a process frees (a no-op off glibc).

Each minibatch step allocates and frees the same large tensors: TOPPO's per-task gradient
matrices (K x P: 13.7 MB a side at MT10), activations and their gradients. By default glibc
serves allocations above its mmap threshold (adaptive, up to 32 MiB) with fresh mappings and
returns a freed heap top above 128 KiB to the kernel, so every step faults the same pages
back in: measured on one core, 17-48 ms of system time per paper-size TOPPO minibatch step
(vmap, fused) against 4 ms for MT-PPO's (benchmarks/measurements/update-cost-2026-12-07/).
``keep_freed_memory()`` fixes both thresholds, as ``MALLOC_MMAP_THRESHOLD_`` and
``MALLOC_TRIM_THRESHOLD_`` would at process start: allocations up to 256 MiB come from the
heap, and freed memory stays there for the next step (up to 1 GiB beyond what is in use).
The process's peak memory is what its largest step needs, as before; it is kept instead of
given back between steps.

Addresses do not change results under the portable numerics (``MKL_CBWR=...,STRICT``:
whatever the alignment), and ``verify`` reproduces the committed records with it.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
TRIM_THRESHOLD = 1 << 30
MMAP_THRESHOLD = 256 << 20


def keep_freed_memory() -> bool:
    """Set glibc's thresholds (see the module); False where this is not glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)) and bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
