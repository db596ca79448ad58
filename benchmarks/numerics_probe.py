"""Which CPU-kernel settings change a trainer's numbers: one real PPO update, fingerprinted.

    TOPPO_NUMERICS=native ATEN_CPU_CAPABILITY=default python benchmarks/numerics_probe.py
    python benchmarks/numerics_probe.py --sweep          # every setting below, one process each

One process builds a real trainer (MT10, V2 rewards, the [400, 400, 400] networks, 200 env
steps per task, 2 epochs x 4 minibatches, gradient diagnostics on, one torch thread) and
runs its first update. It prints the CPU kernels torch chose, a hash of the rollout (obs and
rewards: the env stepping, which follows the policy's sampled actions), a hash of the
update's metrics (timing columns aside), the first metrics with every digit, and the
update's wall time. ``--sweep`` runs it once per environment setting of ``SETTINGS`` (under
the native mode, so the setting is what the process sees) and prints which agree.
Results and machine: docs/reproducibility.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# (label, extra environment); each runs in a fresh process with TOPPO_NUMERICS=native
SETTINGS: list[tuple[str, dict[str, str]]] = [
    ("as installed", {}),
    ("ATEN_CPU_CAPABILITY=default", {"ATEN_CPU_CAPABILITY": "default"}),
    ("ATEN_CPU_CAPABILITY=avx2", {"ATEN_CPU_CAPABILITY": "avx2"}),
    ("MKL_CBWR=COMPATIBLE", {"MKL_CBWR": "COMPATIBLE"}),
    ("MKL_CBWR=AVX2", {"MKL_CBWR": "AVX2"}),
    ("MKL_CBWR=COMPATIBLE,STRICT", {"MKL_CBWR": "COMPATIBLE,STRICT"}),
    ("ONEDNN_MAX_CPU_ISA=SSE41", {"ONEDNN_MAX_CPU_ISA": "SSE41"}),
    ("deterministic algorithms", {"PROBE_DETERMINISTIC": "1"}),
    ("2 torch threads", {"PROBE_THREADS": "2"}),
    ("MKL_CBWR=COMPATIBLE + ATEN default", {"MKL_CBWR": "COMPATIBLE", "ATEN_CPU_CAPABILITY": "default"}),
    ("portable mode", {"TOPPO_NUMERICS": "portable"}),
    ("portable mode, user ATEN avx2", {"TOPPO_NUMERICS": "portable", "ATEN_CPU_CAPABILITY": "avx2"}),
    ("portable mode, user MKL_CBWR=AVX2", {"TOPPO_NUMERICS": "portable", "MKL_CBWR": "AVX2"}),
    # what a CPU without FMA/AVX2 would run outside torch: glibc's libm and numpy's loops
    ("portable mode, glibc libm without FMA", {"TOPPO_NUMERICS": "portable",
                                               "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2,-FMA"}),
    ("portable mode, numpy without AVX2", {"TOPPO_NUMERICS": "portable",
                                           "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4"}),
]


# one update of a CPU-study cell's shape (config/cpu.yaml), for the mode's cost
STUDY = {
    "MT50": {"rollout_steps_per_task": 200, "num_epochs": 4, "num_minibatches": 4,
             "diagnostics_samples": 200},
    "MT10": {"rollout_steps_per_task": 2500, "num_epochs": 8, "num_minibatches": 8,
             "diagnostics_samples": 256},
}


def probe(variant: str, updates: int, study: str | None = None) -> dict:
    from toppo.harness import numerics

    numerics.apply()
    import numpy as np
    import torch

    from toppo.specs.logschema import TIMING_COLUMNS
    from toppo.specs.variants import resolve
    from toppo.trainer import Trainer

    if os.environ.get("PROBE_DETERMINISTIC"):
        torch.use_deterministic_algorithms(True)
    shape = STUDY[study] if study else {"rollout_steps_per_task": 200, "num_epochs": 2,
                                        "num_minibatches": 4, "diagnostics_samples": 100}
    benchmark = study or "MT10"
    steps = shape["rollout_steps_per_task"] * (50 if benchmark == "MT50" else 10) * updates
    cfg = resolve(variant, {"benchmark": benchmark, "reward_version": "v2", "seed": 0,
                            "device": "cpu", "torch_threads": int(os.environ.get("PROBE_THREADS", "1")),
                            "total_steps": steps, **shape, "eval_mode": "inline",
                            "eval_every_steps": 10**9, "eval_episodes": 1, "eval_envs_per_task": 1})
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp), variant)
        rollout = hashlib.sha256()
        collect = trainer.collect_rollout

        def hashed_collect():
            roll = collect()
            rollout.update(roll["obs"].numpy().tobytes())
            rollout.update(roll["ret"].numpy().tobytes())
            return roll

        trainer.collect_rollout = hashed_collect
        seconds, cpu_seconds, rows = [], [], []
        for _ in range(updates):
            t0, c0 = time.perf_counter(), time.process_time()
            rows.append(trainer.train_one_update())
            seconds.append(time.perf_counter() - t0)
            cpu_seconds.append(time.process_time() - c0)  # this process's CPU time: less
            # sensitive than wall time to other jobs on a shared machine
        trainer.close()
    metrics = [{k: float(v) for k, v in sorted(r.items()) if k not in TIMING_COLUMNS} for r in rows]
    return {
        "capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "rollout_sha": rollout.hexdigest()[:16],
        "metrics_sha": hashlib.sha256(json.dumps(metrics).encode()).hexdigest()[:16],
        "policy_loss": repr(metrics[0]["policy_loss"]),
        "value_abs_err_before": repr(metrics[0]["value_abs_err_before"]),
        "critic_gradnorm_max": repr(metrics[0]["critic_gradnorm_max"]),
        "update_s": [round(s, 2) for s in seconds],
        "update_cpu_s": [round(s, 2) for s in cpu_seconds],
        "learn_s": [round(r["update_time_s"] - r["rollout_time_s"], 2) for r in rows],
        "np_sum": repr(float(np.random.default_rng(0).standard_normal(100_003).sum())),
    }


def sweep(variant: str, updates: int, only: list[str]) -> None:
    base = None
    for label, extra in SETTINGS:
        if only and label != SETTINGS[0][0] and not any(o in label for o in only):
            continue
        env = {**os.environ, "TOPPO_NUMERICS": "native", **extra, "PYTHONPATH": str(ROOT)}
        out = subprocess.run([sys.executable, __file__, "--variant", variant, "--updates",
                              str(updates)], env=env, capture_output=True, text=True, check=True)
        res = json.loads(out.stdout.strip().splitlines()[-1])
        base = base or res
        same = "same" if res["metrics_sha"] == base["metrics_sha"] else "DIFFERS"
        print(f"{label:40s} {res['capability']:8s} rollout {res['rollout_sha']} metrics "
              f"{res['metrics_sha']} ({same}) policy_loss {res['policy_loss']} "
              f"value_abs_err_before {res['value_abs_err_before']} update {res['update_s']} s "
              f"learn {res['learn_s']} s", flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default="toppo")
    ap.add_argument("--updates", type=int, default=1)
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("--study", choices=sorted(STUDY), help="a CPU-study cell's update shape")
    ap.add_argument("--only", nargs="*", default=[], metavar="TEXT",
                    help="--sweep: only the settings whose label contains TEXT (and the first)")
    args = ap.parse_args()
    if args.sweep:
        sweep(args.variant, args.updates, args.only)
    else:
        print(json.dumps(probe(args.variant, args.updates, args.study)))
