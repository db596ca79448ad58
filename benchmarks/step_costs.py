"""Microseconds per env step of every Meta-World task, one process: the source of
``toppo.specs.cores.STEP_COST_US``, which cuts the env workers' slices to about equal stepping time.

For each task of MT50 (the benchmark's own env, seed 0, V2 rewards): ``--steps`` steps of
uniform random actions, then ``--steps`` steps of its scripted expert (``metaworld.policies``),
resetting at the time limit. Prints ``task random_us expert_us mean_us`` per line; the table
holds the mean rounded to 10 us. Only ratios matter (the slices change no result).

    PYTHONPATH=. python benchmarks/step_costs.py --steps 500
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from metaworld.policies import ENV_POLICY_MAP

from toppo.algo.envs import _task_names, benchmark_env_fns


def step_us(env, act, steps: int) -> float:
    obs, _ = env.reset()
    spent = 0.0
    for _ in range(steps):
        a = act(obs)
        t0 = time.perf_counter()
        obs, _, terminated, truncated, _ = env.step(a)
        spent += time.perf_counter() - t0
        if terminated or truncated:
            obs, _ = env.reset()
    return spent / steps * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=500, help="steps per task and action source")
    args = p.parse_args()
    base, _ = benchmark_env_fns("MT50", "v2", 0, 500)
    rng = np.random.default_rng(0)
    for env, name in zip(base.envs, _task_names(base)):
        expert = ENV_POLICY_MAP[name]()
        rand = step_us(env, lambda obs: rng.uniform(-1, 1, 4), args.steps)
        scripted = step_us(env, lambda obs: np.clip(expert.get_action(obs[:39]), -1, 1), args.steps)
        print(f"{name} {rand:.0f} {scripted:.0f} {round((rand + scripted) / 2 / 10) * 10}", flush=True)
    base.close()


if __name__ == "__main__":
    main()
