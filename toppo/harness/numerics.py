"""The numerics mode: which CPU kernels torch may pick, and a description of the machine.

torch's CPU math picks its kernels by CPU: MKL's code path (its BLAS, our matmuls), ATen's
vectorised kernels (AVX2 or AVX-512), oneDNN's ISA, and the split of work over threads, so
the same run on two CPUs can differ from the first update. Two modes (docs/reproducibility.md):

* ``portable``: every knob below is fixed before torch loads, overriding whatever the user's
  environment says, so a run gives the same bits on x86-64 CPUs with AVX2 and FMA (same
  packages and glibc, same ``torch_threads``; glibc's libm picks its FMA variants by CPU,
  which no environment variable read at run time can change: the docs say what was
  measured). Costs time on an update (measured there). The recorded studies run it: their
  workflow configs say ``numerics: portable``.
* ``native`` (the default): torch's own choice for this CPU, and whatever the environment sets.

Which mode a process asks for is decided in one place, ``toppo.specs.numerics_mode.mode``:
the trainer's ``--numerics`` flag, else the environment variable ``TOPPO_NUMERICS``, else
``native``. The workflow passes its config's ``numerics`` key to every training job as the
flag, and ``verify`` passes the record's own mode (``numerics_mode.recorded_mode``).

The mode must be in place before torch is imported, in every process that computes: the
trainer (``toppo.train`` reads its flag with ``numerics_mode.requested`` and calls
:func:`apply` before its ``import torch``), the eval workers (spawned: they inherit ``os.environ``, where
:func:`apply` wrote the mode, and call :func:`apply` again before theirs) and any other
worker. It is an execution setting, not part of the config hash (the committed record stays
the same config); the manifest records it (:func:`describe`) and ``verify`` compares it.

This module must not import torch at module level.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import os
import platform
import sys
from collections.abc import Iterator
from typing import Any

from toppo.specs.numerics_mode import FLAG, MODE_VAR, NumericsError, mode

# Set (overriding the environment) before torch and numpy load, in portable mode. Which of them change
# results is measured in docs/reproducibility.md; all are fixed, since a knob that does not
# matter on this CPU may matter on another.
PORTABLE_ENV: dict[str, str] = {
    "MKL_CBWR": "COMPATIBLE,STRICT",  # MKL's SSE2 code path on every x86 CPU; STRICT: whatever the alignment
    "ATEN_CPU_CAPABILITY": "default",  # ATen's non-vectorised kernels (no AVX2/AVX-512 dispatch)
    "ONEDNN_MAX_CPU_ISA": "SSE41",  # oneDNN's lowest ISA (fp32 matmuls do not use it: MKL does)
    "DNNL_MAX_CPU_ISA": "SSE41",  # the same, under oneDNN's older name
    "MKL_DYNAMIC": "FALSE",  # MKL uses the thread count it is given (CNR needs a fixed count)
    # numpy's OpenBLAS picks its kernels by CPU too, and the env stepping goes through them
    # (metaworld's np.linalg.norm of vectors: ddot): its SSE3 kernels, which every x86-64 runs
    "OPENBLAS_CORETYPE": "Prescott",
}
# The capability torch reports under PORTABLE_ENV (torch.backends.cpu.get_cpu_capability())
PORTABLE_CAPABILITY = "DEFAULT"
# What describe() records of the environment: the knobs, thread counts, numpy's and glibc's
# dispatch (GLIBC_TUNABLES counts only when set before the process started)
RECORDED_ENV = (MODE_VAR, *PORTABLE_ENV, "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                "NPY_DISABLE_CPU_FEATURES", "GLIBC_TUNABLES")
# Libraries that read PORTABLE_ENV when they load: the mode is too late once one is loaded
LOADS_KERNELS = ("torch", "numpy")

_decided: str | None = None  # the mode apply() put in place in this process
_late = False  # portable was asked for, but torch or numpy was loaded when apply() ran


def apply(flag: str | None = None) -> str:
    """Put the mode :func:`mode` picks (``flag``: the value of ``--numerics``) in place in
    this process's environment, which every process it starts inherits, and return it; the
    first call decides, later ones return the same (a later ``flag`` that asks for another
    mode is a NumericsError: this process's kernels are chosen already).

    Call it before torch and numpy are imported. Called later (already imported by the caller,
    e.g. in a notebook or a test), this process keeps the kernels it has: the mode is
    ``native`` here, :func:`describe` says portable was asked for, and the environment is left
    as it is (other processes started from here choose for themselves; the workers that must
    compute as this one does are started under :func:`for_workers`)."""
    global _decided, _late
    if _decided is None:
        _decided = mode(flag)
        if _decided == "portable" and any(m in sys.modules for m in LOADS_KERNELS):
            _decided, _late = "native", True
            return _decided
        if _decided == "portable":
            os.environ.update(PORTABLE_ENV)
        os.environ[MODE_VAR] = _decided
    elif flag is not None and mode(flag) != _decided:
        raise NumericsError(f"{FLAG} {mode(flag)}: this process runs {in_effect()} already "
                            f"(its mode was decided before {FLAG} was read)")
    return _decided


@contextlib.contextmanager
def for_workers() -> Iterator[None]:
    """While worker processes are started that must compute as this one does (they inherit
    the environment): ``TOPPO_NUMERICS`` says this process's mode, ``native`` when it was
    applied too late."""
    saved = os.environ.get(MODE_VAR)
    os.environ[MODE_VAR] = apply()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(MODE_VAR, None)
        else:
            os.environ[MODE_VAR] = saved


def threads(asked: int) -> int:
    """The torch thread count to run with: ``asked`` (``torch_threads``), or in portable mode
    1 for 0 (torch's default is the machine's core count, and the split of work over threads
    changes sums); 0 in native mode: torch's default."""
    return asked if asked > 0 or current() != "portable" else 1


def current() -> str:
    """This process's mode: what :func:`apply` decided, else what :func:`mode` would pick
    without a flag (``TOPPO_NUMERICS``, else native)."""
    return _decided or mode()


def configure_torch(requested_threads: int) -> None:
    """After torch loads: the thread count (:func:`threads`; 0 in native mode leaves torch's
    default) and, in portable mode, deterministic algorithms (no CPU kernel of ours changes
    with it, measured; it guards against one that would: warn, not fail)."""
    import torch

    n = threads(requested_threads)
    if n > 0:
        torch.set_num_threads(n)
    if current() == "portable":
        # what torch.use_deterministic_algorithms(True, warn_only=True) sets, without its
        # import of torch._inductor's config (inductor and dynamo: 1.1 s of every process's
        # start on the 2-core machine); nothing here compiles with torch.compile
        torch.set_deterministic_debug_mode("warn")


def check() -> None:
    """Raise NumericsError unless this process runs with the kernels its mode asks for: in
    portable mode, :func:`apply` ran before torch loaded and torch reports the portable CPU
    capability."""
    if current() != "portable":
        return
    import torch

    got = torch.backends.cpu.get_cpu_capability()
    if _decided != "portable" or got != PORTABLE_CAPABILITY:
        raise NumericsError(
            f"{MODE_VAR}=portable is not in effect in this process (torch's CPU capability "
            f"{got}, expected {PORTABLE_CAPABILITY}): call toppo.harness.numerics.apply() before torch "
            f"is imported, or run native ({FLAG} native, or {MODE_VAR}=native)")


def in_effect() -> str:
    """The mode this process runs with, saying so when portable was asked for too late."""
    if _late:
        return "native (portable asked for, but torch or numpy was imported before toppo.harness.numerics.apply())"
    check()
    return current()


# ---------------------------------------------------------------------- the machine
def cpu_info() -> dict[str, Any]:
    """CPU model, vendor, flags and logical CPU count (Linux /proc/cpuinfo; platform elsewhere)."""
    info: dict[str, Any] = {"model": platform.processor() or platform.machine(), "vendor": None,
                            "flags": [], "logical_cpus": os.cpu_count()}
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return info
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "model name":
            info["model"] = value
        elif key == "vendor_id":
            info["vendor"] = value
        elif key in ("flags", "Features") and not info["flags"]:
            info["flags"] = sorted(value.split())
        elif key in ("cpu family", "model", "stepping") and f"cpu_{key.replace(' ', '_')}" not in info:
            info[f"cpu_{key.replace(' ', '_')}"] = value
    return info


def packages_hash() -> str:
    """sha256 (16 hex digits) of every installed distribution's name==version, sorted."""
    names = sorted({f"{d.metadata['Name'].lower()}=={d.version}"
                    for d in importlib.metadata.distributions() if d.metadata["Name"]})
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]


def describe() -> dict[str, Any]:
    """The machine and the numerics this process runs with, for the run's manifest."""
    import numpy as np
    import torch

    return {
        "numerics": in_effect(),
        "environment": {k: os.environ.get(k) for k in RECORDED_ENV},
        "cpu": cpu_info(),
        "platform": platform.platform(),
        "libc": " ".join(platform.libc_ver()),  # glibc's libm: exp, log, sin... (see the docs)
        "python": sys.version.split()[0],
        "torch": {
            "version": torch.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "num_threads": torch.get_num_threads(),
            "num_interop_threads": torch.get_num_interop_threads(),
            "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "mkl": torch.backends.mkl.is_available(),
            "mkldnn": torch.backends.mkldnn.is_available(),
            "build": torch.__config__.show().strip().splitlines(),
        },
        "numpy": {"version": np.__version__, "simd": _numpy_simd()},
        "packages_sha256": packages_hash(),
    }


def _numpy_simd() -> dict[str, list[str]]:
    """The SIMD extensions numpy was built for (baseline) and dispatches to on this CPU."""
    try:
        from numpy._core._multiarray_umath import (
            __cpu_baseline__,
            __cpu_dispatch__,
            __cpu_features__,
        )
    except ImportError:
        return {}
    return {"baseline": list(__cpu_baseline__),
            "dispatched": [f for f in __cpu_dispatch__ if __cpu_features__.get(f)]}
