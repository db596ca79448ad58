"""One learner alone in its process: the median CPU and system milliseconds of N paper-size MT10
minibatch steps (a synthetic rollout of 10,000 steps per task), with glibc's malloc defaults or
with toppo.harness.heap.keep_freed_memory() (as the trainer now runs), and a hash of the
parameters after them (the same bits either way). From the repository root:

    python benchmarks/measurements/update-cost-2026-12-07/minibatch_heap.py {mtppo,vmap,fused} N {default,keep}
"""
import hashlib
import json
import resource
import statistics
import sys
import time

sys.path.insert(0, "benchmarks")
import bench_trainer as bt  # noqa: E402  (sets the numerics mode before torch loads)
import torch  # noqa: E402

from toppo.harness.heap import keep_freed_memory  # noqa: E402

VARIANTS = {"mtppo": ("mtppo", {}), "fused": ("toppo", {"per_task_grad_impl": "fused"}), "vmap": ("toppo", {})}


def main(variant: str, steps: int, mode: str) -> None:
    if mode == "keep":
        assert keep_freed_memory()
    torch.set_num_threads(1)
    name, overrides = VARIANTS[variant]
    cfg = bt.resolve(name, {"benchmark": "MT10", "device": "cpu", **overrides})
    K, M = cfg.num_tasks, cfg.rollout_steps_per_task
    torch.manual_seed(0)
    learner = bt.Learner(cfg, obs_dim=39 + K, act_dim=4, device=torch.device("cpu"))
    rollout = {**bt.synthetic_batch(K, M, 39 + K, 4, torch.device("cpu")),
               "ret": torch.randn(K, M), "value": torch.randn(K, M)}
    batches = learner.minibatches(learner.prepare_batch(rollout))
    for warm in ("warm-up", "warm-up 2"):
        learner.minibatch_step(next(batches), warm)
    cpu, system = [], []
    for i in range(steps):
        mb = next(batches)
        before, t0 = resource.getrusage(resource.RUSAGE_SELF), time.process_time()
        learner.minibatch_step(mb, f"step {i}")
        cpu.append(time.process_time() - t0)
        system.append(resource.getrusage(resource.RUSAGE_SELF).ru_stime - before.ru_stime)
    h = hashlib.sha256()
    for side in learner.sides.values():
        for p in side.parameters():
            h.update(p.detach().numpy().tobytes())
    print(variant, mode, json.dumps({"ms": round(1000 * statistics.median(cpu), 1),
                                     "sys_ms": round(1000 * statistics.median(system), 1),
                                     "hash": h.hexdigest()[:12]}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
