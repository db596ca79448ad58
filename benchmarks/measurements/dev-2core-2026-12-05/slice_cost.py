"""Each of MT10's two env-worker slices (toppo.specs.cores.balanced_slices) stepped in a tight
loop in one process, random actions, with the worker's per-step work (reduce_step): the CPU an
env worker would spend per vector step with no messages, no sleeping and no one else on its
core (compare rollout_profile.py's worker CPU).

    PYTHONPATH=. python benchmarks/measurements/dev-2core-2026-12-05/slice_cost.py
"""
from toppo.harness import numerics

numerics.apply()  # the workers' kernels, before numpy loads

import time  # noqa: E402

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

from toppo.algo.envs import _task_names, benchmark_env_fns, reduce_step, train_env_fns  # noqa: E402
from toppo.specs.cores import STEP_COST_US, balanced_slices  # noqa: E402

if __name__ == "__main__":
    base, fns = benchmark_env_fns("MT10", "v2", 0, max_episode_steps=500)
    every = train_env_fns(fns, 0, envs_per_task=1)
    names = _task_names(base)
    slices = balanced_slices([STEP_COST_US[t] for t in names], 2)
    print("slices", slices, [sum(STEP_COST_US[names[i]] for i in range(lo, hi)) for lo, hi in slices])
    rng = np.random.default_rng(0)
    for lo, hi in slices:
        envs = gym.vector.SyncVectorEnv(every[lo:hi], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
        envs.reset()
        actions = rng.uniform(-1, 1, (1100, hi - lo, 4)).astype(np.float32)
        for a in actions[:100]:  # warm-up
            reduce_step(envs.step(a), base.single_observation_space.shape[0])
        c0 = time.process_time()
        for a in actions[100:]:
            reduce_step(envs.step(a), base.single_observation_space.shape[0])
        print(f"slice {lo}-{hi}: {time.process_time() - c0:.3f} ms CPU per step")  # s per 1,000 steps
        envs.close()
