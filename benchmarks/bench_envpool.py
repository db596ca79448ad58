"""Per-core raw env stepping of the two training backends on MT10 and MT50: metaworld's
Python envs as the trainer builds them (``toppo.envs.make_train_envs``, synchronous) and
EnvPool's native Meta-World through ``toppo.envpool_envs.EnvPoolTrainEnvs`` (one pool per
task, one EnvPool thread per pool), random actions, episodes of 500 steps with their
resets. The whole process is pinned to one core (``os.sched_setaffinity``, inherited by
EnvPool's threads), so the numbers are per core.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_envpool.py [--seconds 10] [--core 0]

Also printed: one EnvPool pool of 10 envs of one task stepped directly (the issue's
7,900 steps/s measurement), and the adapter's EnvPool stepping with several env copies per
task. The machine's load is printed before and after: on a shared machine the numbers are
only as good as the core they got.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def _loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _rate(step, n_envs: int, seconds: float, act_shape: tuple[int, int]) -> float:
    rng = np.random.default_rng(0)
    acts = rng.uniform(-1, 1, (64, *act_shape)).astype(np.float32)
    for i in range(20):  # warm-up
        step(acts[i % 64])
    n, t0 = 0, time.perf_counter()
    while True:
        for i in range(50):
            step(acts[i % 64])
        n += 50
        dt = time.perf_counter() - t0
        if dt >= seconds:
            return n * n_envs / dt


def bench_metaworld(benchmark: str, seconds: float) -> float:
    from toppo.envs import make_train_envs
    envs, _ = make_train_envs(benchmark, "v2", 0, envs_per_task=1, async_envs=False,
                              max_episode_steps=500)
    try:
        envs.reset()
        return _rate(envs.step, envs.num_envs, seconds, (envs.num_envs, 4))
    finally:
        envs.close()


def bench_envpool(benchmark: str, seconds: float, envs_per_task: int) -> float:
    from toppo.envpool_envs import EnvPoolTrainEnvs
    envs = EnvPoolTrainEnvs(benchmark, "v2", 0, envs_per_task=envs_per_task, num_threads=1,
                            allow_drifting_goals=True)  # MT50: speed only
    try:
        envs.reset()
        return _rate(envs.step, envs.num_envs, seconds, (envs.num_envs, 4))
    finally:
        envs.close()


def bench_one_pool(task: str, num_envs: int, seconds: float) -> float:
    import envpool

    from toppo.envpool_envs import envpool_task_id
    pool = envpool.make_gymnasium(envpool_task_id(task), num_envs=num_envs, num_threads=1,
                                  partially_observable=False, seed=0)
    try:
        pool.reset()
        return _rate(pool.step, num_envs, seconds, (num_envs, 4))
    finally:
        pool.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="timed stepping per measurement")
    ap.add_argument("--core", type=int, default=0, help="the one core to run on")
    ap.add_argument("--benchmarks", default="MT10,MT50")
    ap.add_argument("--copies", default="1,4", help="EnvPool env copies per task to measure")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    os.sched_setaffinity(0, {args.core})
    import envpool
    import metaworld  # noqa: F401
    import mujoco
    print(f"pinned to core {args.core} of {os.cpu_count()}; envpool {envpool.__version__} "
          f"(MuJoCo 3.6.0), python mujoco {mujoco.__version__}; load average before: "
          f"{_loadavg()}")
    ratios: dict[tuple[str, int], list[float]] = {}
    for rep in range(args.repeats):  # alternating, so a change of load hits both backends
        one = bench_one_pool("reach-v3", 10, args.seconds)
        print(f"[{rep}] one EnvPool pool, reach-v3 x 10 envs, direct pool.step: {one:,.0f} "
              "env steps/s")
        for bench in args.benchmarks.split(","):
            mw = bench_metaworld(bench, args.seconds)
            print(f"[{rep}] {bench} metaworld (make_train_envs, sync, 1 env per task): "
                  f"{mw:,.0f} env steps/s", flush=True)
            for c in (int(x) for x in args.copies.split(",")):
                ep = bench_envpool(bench, args.seconds, c)
                ratios.setdefault((bench, c), []).append(ep / mw)
                print(f"[{rep}] {bench} envpool (EnvPoolTrainEnvs, {c} env(s) per task, 1 thread "
                      f"per pool): {ep:,.0f} env steps/s = {ep / mw:.2f}x metaworld", flush=True)
    for (bench, c), r in ratios.items():
        print(f"{bench}, {c} env(s) per task: envpool / metaworld per core, median of "
              f"{len(r)}: {np.median(r):.2f}x (range {min(r):.2f} to {max(r):.2f})")
    print(f"load average after: {_loadavg()}")


if __name__ == "__main__":
    main()
