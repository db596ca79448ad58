"""CPU milliseconds of the parts of one TOPPO minibatch step (MT10 paper size: 10 tasks x 312
samples), against plain PPO's forward and backward of each side, in one process, median of
the steps after the first. Run from the repository root:

    python benchmarks/measurements/update-cost-2026-12-07/phases.py MT10 5 --numerics native
"""
import collections
import itertools
import statistics
import sys
import time

from toppo.harness import numerics
from toppo.specs import numerics_mode

numerics.apply(numerics_mode.requested(sys.argv[1:]))

import torch  # noqa: E402

from toppo.algo import combiners, pertask  # noqa: E402
from toppo.algo.learner import Learner  # noqa: E402
from toppo.specs.variants import resolve  # noqa: E402

sys.path.insert(0, "benchmarks")
from bench_trainer import synthetic_batch  # noqa: E402


def make(bench: str, variant: str) -> tuple[Learner, list[dict]]:
    torch.manual_seed(0)
    cfg = resolve(variant, {"benchmark": bench})
    K, M = cfg.num_tasks, cfg.rollout_steps_per_task
    learner = Learner(cfg, obs_dim=39 + K, act_dim=4, device=torch.device("cpu"))
    data = learner.prepare_batch({**synthetic_batch(K, M, 39 + K, 4, torch.device("cpu")),
                                  "ret": torch.randn(K, M), "value": torch.randn(K, M)})
    return learner, [learner.normalize_minibatch(mb)
                     for mb in itertools.islice(learner.minibatches(data), 4)]


torch.set_num_threads(1)
bench, reps = sys.argv[1], int(sys.argv[2])
toppo, batches = make(bench, "toppo")
plain, plain_batches = make(bench, "mtppo")
T = collections.defaultdict(list)
for r in range(reps + 1):
    mb = batches[r % 4]
    for name in ("actor", "critic"):
        module, comb = toppo.sides[name], toppo.combiner[name]
        opts = combiners.options(comb, toppo.cfg, name)
        for impl in ("vmap", "fused"):
            t = time.process_time()
            grads, _ = pertask.per_task_grads(module, toppo.loss_fn(name, 1.0 / toppo.K), mb, impl)
            T[f"{name} per-task gradients, {impl}"].append(time.process_time() - t)
        t = time.process_time()
        _, G = pertask.split_shared(grads, module.per_task_param_names())
        T[f"{name} concatenate G (K, P)"].append(time.process_time() - t)
        t = time.process_time()
        G @ G.T
        T[f"{name} Gram G G^T"].append(time.process_time() - t)
        t = time.process_time()
        combiners.combine(comb, G, **opts)
        T[f"{name} combine ({comb}: Gram, solve, G^T w)"].append(time.process_time() - t)
        t = time.process_time()
        pertask.assign_combined(module, grads, module.per_task_param_names(), comb, **opts)
        T[f"{name} assign_combined (all of the above but gradients)"].append(time.process_time() - t)
    for name in ("actor", "critic"):
        module = plain.sides[name]
        module.zero_grad()
        t = time.process_time()
        loss, _ = plain.loss_fn(name, 1.0)(module, plain_batches[r % 4])
        loss.backward()
        T[f"mtppo {name} forward + backward"].append(time.process_time() - t)
print(f"{bench}, numerics {numerics.in_effect()}, CPU ms, median of {reps} steps")
for k, v in T.items():
    print(f"  {k:55s} {1000 * statistics.median(v[1:]):7.1f}")
