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
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SETTINGS: list[tuple[str, dict[str, str]]] = [
    ("as installed", {}),
    ("numpy: no AVX2/FMA/AVX512 dispatch", {"NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4"}),
    ("OpenBLAS: Prescott kernels (SSE3)", {"OPENBLAS_CORETYPE": "Prescott"}),
    ("OpenBLAS: SkylakeX kernels (AVX-512)", {"OPENBLAS_CORETYPE": "SkylakeX"}),
    ("glibc: no AVX2/FMA libm", {"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2,-FMA,-AVX"}),
    ("all three", {"NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4", "OPENBLAS_CORETYPE": "Prescott",
                   "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2,-FMA,-AVX"}),
]


def one(steps: int) -> str:
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from toppo.envs import benchmark_env_fns

    vec, _ = benchmark_env_fns("MT50", "v2", 0, 500)
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
    return h.hexdigest()[:16]


def sweep(steps: int) -> None:
    base = None
    for label, extra in SETTINGS:
        env = {**os.environ, **extra}
        out = subprocess.run([sys.executable, __file__, "--one", "--steps", str(steps)], env=env,
                             capture_output=True, text=True, check=True)
        digest = out.stdout.strip().splitlines()[-1]
        base = base or digest
        print(f"{label:40s} {digest} {'same' if digest == base else 'DIFFERS'}", flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--one", action="store_true")
    ap.add_argument("--steps", type=int, default=1000)
    args = ap.parse_args()
    if args.one:
        print(one(args.steps))
    else:
        sweep(args.steps)
