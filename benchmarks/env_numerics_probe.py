"""Does stepping the Meta-World envs (MuJoCo, numpy) depend on the CPU's instruction sets?

    python benchmarks/env_numerics_probe.py            # every setting below, one process each
    python benchmarks/env_numerics_probe.py --one      # this process's environment only

No torch: each process builds MT50 with V2 rewards (seed 0, the trainer's goals), steps every
task for ``--steps`` steps with actions from a fixed numpy generator (two episodes with the
default 1,000: a reset by truncation included), and hashes the observations, rewards,
terminations and success flags. The settings switch what one machine can switch: numpy's
SIMD dispatch (``NPY_DISABLE_CPU_FEATURES``), OpenBLAS's kernels (``OPENBLAS_CORETYPE``, numpy's
BLAS: np.dot, np.linalg.norm of vectors) and glibc's libm variants (``GLIBC_TUNABLES``:
exp, log, sin, cos, pow have FMA/AVX2 versions picked at load time). Results and what stays
unknown: docs/reproducibility.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SETTINGS: list[tuple[str, dict[str, str]]] = [
    ("as installed", {}),
    ("numpy: no AVX2/FMA/AVX512 dispatch", {"NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4"}),
    ("OpenBLAS: Prescott kernels (SSE3)", {"OPENBLAS_CORETYPE": "Prescott"}),
    ("OpenBLAS: Sandybridge kernels (AVX)", {"OPENBLAS_CORETYPE": "Sandybridge"}),
    ("OpenBLAS: SkylakeX kernels (AVX-512)", {"OPENBLAS_CORETYPE": "SkylakeX"}),
    ("glibc: no AVX2/FMA libm", {"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2,-FMA"}),
    # the portable mode's OpenBLAS setting, on what a CPU without AVX2/FMA would run otherwise
    ("Prescott + numpy and glibc without AVX2/FMA", {
        "OPENBLAS_CORETYPE": "Prescott", "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4",
        "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2,-FMA"}),
]
BASELINE_OF = {"Prescott + numpy and glibc without AVX2/FMA": "OpenBLAS: Prescott kernels (SSE3)"}


def one(steps: int) -> str:
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from toppo.algo.envs import benchmark_env_fns

    vec, _ = benchmark_env_fns("MT50", "v2", 0, 500)
    t0 = time.process_time()
    rng = np.random.default_rng(0)
    h = hashlib.sha256()
    obs, _ = vec.reset(seed=0)
    h.update(obs.tobytes())
    for _ in range(steps):
        action = rng.uniform(-1, 1, size=(vec.num_envs, 4)).astype(np.float32)
        obs, reward, term, trunc, info = vec.step(action)
        for x in (obs, reward, term, trunc, np.asarray(info.get("success", ()), dtype=np.float64)):
            h.update(np.ascontiguousarray(x).tobytes())
    vec.close()
    return f"{h.hexdigest()[:16]} {time.process_time() - t0:.1f}"


def sweep(steps: int, only: list[str]) -> None:
    """One process per setting: its hash, whether it matches 'as installed' (or the setting
    named in BASELINE_OF), and the stepping's CPU time."""
    digests: dict[str, str] = {}
    for label, extra in SETTINGS:
        if only and label != SETTINGS[0][0] and not any(o in label for o in only):
            continue
        out = subprocess.run([sys.executable, __file__, "--one", "--steps", str(steps)],
                             env={**os.environ, **extra}, capture_output=True, text=True)
        if out.returncode < 0:
            print(f"{label:45s} cannot run here ({signal.Signals(-out.returncode).name})", flush=True)
            continue
        digest, cpu_s = out.stdout.strip().splitlines()[-1].split()
        digests[label] = digest
        ref = BASELINE_OF.get(label, SETTINGS[0][0])
        same = "same as " + ref if digests.get(ref) == digest else "DIFFERS from " + ref
        print(f"{label:45s} {digest} {same}; stepping {cpu_s} s CPU", flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--one", action="store_true")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--only", nargs="*", default=[], metavar="TEXT",
                    help="only the settings whose label contains TEXT (and the first)")
    args = ap.parse_args()
    if args.one:
        print(one(args.steps))
    else:
        sweep(args.steps, args.only)
