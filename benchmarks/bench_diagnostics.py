"""Cost of the per-task gradient diagnostics against one PPO update, as a ratio.

    python benchmarks/bench_diagnostics.py [--benchmark MT50] [--variants mtppo toppo]

On a synthetic rollout of the benchmark's shape (K tasks x ``rollout_steps_per_task``
samples), times one diagnostics pass (``toppo.algo.diagnostics``: the sample, the gradient
diagnostics of both sides, and the critic's fit before and after) against ``--steps`` minibatch steps,
and prints the diagnostics' share of a full update (``num_epochs`` x ``num_minibatches``
steps). Issue 8 asks for under 5%. One torch thread, CPU.
"""

from __future__ import annotations

import argparse
import itertools
import time

import torch

from toppo.algo import diagnostics
from toppo.algo.learner import Learner
from toppo.specs.registry import BENCHMARKS
from toppo.specs.variants import resolve


def measure(variant: str, benchmark: str, steps: int) -> str:
    cfg = resolve(variant, {"benchmark": benchmark})
    K, M = cfg.num_tasks, cfg.rollout_steps_per_task
    obs_dim = 39 + K
    learner = Learner(cfg, obs_dim, 4, torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    roll = {"obs": torch.randn(K, M, obs_dim, generator=g),
            "task": torch.arange(K)[:, None].expand(K, M),
            "action": torch.randn(K, M, 4, generator=g), "logp": torch.randn(K, M, generator=g) - 3,
            "adv": torch.randn(K, M, generator=g), "ret": torch.randn(K, M, generator=g) * 10,
            "value": torch.randn(K, M, generator=g)}
    data = learner.prepare_batch(roll)
    t = time.perf_counter()
    sample, _ = diagnostics.before_update(learner, data, 0)
    diagnostics.after_update(learner, sample)
    diag = time.perf_counter() - t
    mbs = list(itertools.islice(learner.minibatches(data), steps))
    t = time.perf_counter()
    for j, mb in enumerate(mbs):
        learner.minibatch_step(mb, f"minibatch {j}")
    step = (time.perf_counter() - t) / len(mbs)
    update = step * cfg.num_epochs * cfg.num_minibatches
    return (f"{benchmark} {variant}: diagnostics {diag:.2f} s, minibatch step {1000 * step:.0f} ms, "
            f"update ~{update:.0f} s -> diagnostics / update = {diag / update:.4f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--benchmark", default="MT50", choices=list(BENCHMARKS))
    p.add_argument("--variants", nargs="+", default=["mtppo", "toppo"])
    p.add_argument("--steps", type=int, default=3, help="minibatch steps timed")
    args = p.parse_args()
    torch.set_num_threads(1)
    for v in args.variants:
        print(measure(v, args.benchmark, args.steps), flush=True)


if __name__ == "__main__":
    main()
