"""Per-core raw env stepping of the two training backends on MT10 and MT50: metaworld's
Python envs as the trainer builds them (``toppo.algo.envs.make_train_envs``, synchronous) and
EnvPool's native Meta-World through ``toppo.algo.envpool_envs.EnvPoolTrainEnvs`` (one pool per
task, one EnvPool thread per pool), random actions, episodes of 500 steps with their
resets. The whole process is pinned to one core (``os.sched_setaffinity``, inherited by
EnvPool's threads), so the numbers are per core.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_envpool.py [--seconds 10] [--core 0] \
        [--e2e-updates 2] [--no-e2e]

Also printed: one EnvPool pool of 10 envs of one task stepped directly (the issue's
7,900 steps/s measurement), and the adapter's EnvPool stepping with several env copies per
task. Then (``--e2e``, on by default) the trainer end to end: ``Trainer.train_one_update``
(rollout with the MT-PPO networks, then the PPO update) of the committed CPU study's MT10
``mtppo`` cell (config/cpu.yaml: 25,000 env steps per update, 8 epochs of 8 minibatches),
built with ``env_backend=metaworld`` and ``envpool``, on the same pinned core, alternating;
evaluation is left out (it runs on metaworld's envs with either backend). The machine's load
is printed before and after: on a shared machine the numbers are only as good as the core
they got.

Env workers: ``env_backend=envpool`` steps its envs in the trainer's process on EnvPool's
own C++ threads, so it is not combined with ``env_workers`` (refused above 0; ``auto`` gives
0). Its parallelism is the pools' threads: with 2 or more cores left after evaluation
workers the K pools step at once (``toppo.specs.cores.envpool_parallel_pools``), one core per pool
at most; this benchmark pins one core, so it measures the per-core gain.
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
    n, t0, c0 = 0, time.perf_counter(), _cpu_s()
    while True:
        for i in range(50):
            step(acts[i % 64])
        n += 50
        dt = time.perf_counter() - t0
        if dt >= seconds:
            _rate.per_cpu_s = n * n_envs / (_cpu_s() - c0)  # all threads' CPU time
            return n * n_envs / dt


def _cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def bench_metaworld(benchmark: str, seconds: float) -> float:
    from toppo.algo.envs import make_train_envs
    envs, _ = make_train_envs(benchmark, "v2", 0, envs_per_task=1, async_envs=False,
                              max_episode_steps=500)
    try:
        envs.reset()
        return _rate(envs.step, envs.num_envs, seconds, (envs.num_envs, 4))
    finally:
        envs.close()


def bench_envpool(benchmark: str, seconds: float, envs_per_task: int) -> float:
    from toppo.algo.envpool_envs import EnvPoolTrainEnvs
    envs = EnvPoolTrainEnvs(benchmark, "v2", 0, envs_per_task=envs_per_task, num_threads=1,
                            allow_drifting_goals=True)  # MT50: speed only
    try:
        envs.reset()
        return _rate(envs.step, envs.num_envs, seconds, (envs.num_envs, 4))
    finally:
        envs.close()


def rollout_rate(backend: str, seconds: float) -> float:
    """Env steps/s of the trainer's rollout loop (``Trainer.collect_rollout``'s per-step work:
    MT-PPO actor sample and critic value on the batch, one torch thread, then the env step)
    on MT10 with config/cpu.yaml's MT10 settings, on either backend."""
    import torch

    from toppo.algo.learner import Learner
    from toppo.specs.variants import resolve
    torch.set_num_threads(1)
    cfg = resolve("mtppo", {"benchmark": "MT10", "device": "cpu", "torch_threads": 1,
                            "num_epochs": 8, "rollout_steps_per_task": 2500,
                            "num_minibatches": 8})
    if backend == "metaworld":
        from toppo.algo.envs import make_train_envs
        envs, _ = make_train_envs("MT10", "v2", 0, envs_per_task=1, async_envs=False,
                                  max_episode_steps=500)

        def step(a):  # noqa: ANN001, ANN202
            return envs.step(a)[0]
    else:
        from toppo.algo.envpool_envs import EnvPoolTrainEnvs
        envs = EnvPoolTrainEnvs("MT10", "v2", 0)

        def step(a):  # noqa: ANN001, ANN202
            return envs.step(a).obs
    learner = Learner(cfg, 49, 4, torch.device("cpu"))
    task = torch.as_tensor(envs.task_ids)
    try:
        obs = torch.as_tensor(envs.reset())
        n, t0 = 0, time.perf_counter()
        with torch.no_grad():
            while time.perf_counter() - t0 < seconds:
                for _ in range(50):
                    _, _, action = learner.actor.sample(obs, task)
                    learner.value(obs, task)
                    obs = torch.as_tensor(step(action.numpy()))
                n += 50
        return n * envs.num_envs / (time.perf_counter() - t0)
    finally:
        envs.close()


def trainer_updates(backend: str, updates: int) -> dict[str, float]:
    """``updates`` PPO updates of the CPU study's MT10 mtppo seed-0 cell (config/cpu.yaml,
    resolved as the workflow resolves it) with ``env_backend=backend``, one torch thread, one
    core, no evaluation: seconds per update in total and in the rollout, env seconds."""
    import dataclasses
    import tempfile
    from pathlib import Path

    from toppo.specs.grid import Grid, load_config
    from toppo.trainer import Trainer
    repo = Path(__file__).resolve().parents[1]
    cell = ("MT10", "v2", "mtppo", 0)
    cfg = Grid(load_config([repo / "config" / "cpu.yaml"])).train_config(cell)
    cfg = dataclasses.replace(cfg, env_backend=backend, torch_threads=1, cores=1, env_workers=0,
                              eval_mode="inline", total_steps=cfg.steps_per_update * updates
                              ).validate()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp), "mtppo")
        try:
            env0, cpu0 = trainer.envs.busy_s, _cpu_s()
            rows = [trainer.train_one_update() for _ in range(updates)]
            env_s, cpu_s = trainer.envs.busy_s - env0, _cpu_s() - cpu0
        finally:
            trainer.close()
    return {"update_s": sum(r["update_time_s"] for r in rows) / updates,
            "rollout_s": sum(r["rollout_time_s"] for r in rows) / updates,
            "env_s": env_s / updates, "cpu_s": cpu_s / updates, "steps": cfg.steps_per_update}


def bench_one_pool(task: str, num_envs: int, seconds: float) -> float:
    import envpool

    from toppo.algo.envpool_envs import envpool_task_id
    pool = envpool.make_gymnasium(envpool_task_id(task), num_envs=num_envs, num_threads=1,
                                  partially_observable=False, seed=0)
    try:
        pool.reset()
        return _rate(pool.step, num_envs, seconds, (num_envs, 4))
    finally:
        pool.close()


def _study_update_seconds() -> tuple[float, float]:
    """Mean rollout and update seconds per update of the committed CPU study's MT10 mtppo
    cells (results/runs/cpu/MT10-v2/mtppo/seed*/train_metrics.csv)."""
    import csv
    from pathlib import Path
    root = Path(__file__).resolve().parents[1] / "results/runs/cpu/MT10-v2/mtppo"
    rows = [r for seed in range(3)
            for r in csv.DictReader(open(root / f"seed{seed}/train_metrics.csv"))]
    return (sum(float(r["rollout_time_s"]) for r in rows) / len(rows),
            sum(float(r["update_time_s"]) for r in rows) / len(rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="timed stepping per measurement")
    ap.add_argument("--core", type=int, default=0, help="the one core to run on")
    ap.add_argument("--one-pool", action=argparse.BooleanOptionalAction, default=True,
                    help="also one pool of 10 reach-v3 envs stepped directly")
    ap.add_argument("--benchmarks", default="MT10,MT50")
    ap.add_argument("--copies", default="1,4", help="EnvPool env copies per task to measure")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-raw", action="store_true", help="only the rollout loop")
    ap.add_argument("--rollout", action="store_true",
                    help="also the rollout loop alone on MT10 and a projected end-to-end ratio")
    ap.add_argument("--e2e", action=argparse.BooleanOptionalAction, default=True,
                    help="the trainer end to end (rollout and PPO update) on both backends")
    ap.add_argument("--e2e-updates", type=int, default=2, help="updates per end-to-end run")
    args = ap.parse_args()
    os.sched_setaffinity(0, {args.core})
    from datetime import UTC, datetime

    import envpool
    import metaworld  # noqa: F401
    import mujoco

    from toppo.harness.io import git_commit
    print(f"{datetime.now(UTC).isoformat(timespec='seconds')}, commit {git_commit()}, "
          f"{os.uname().nodename}")
    print(f"pinned to core {args.core} of {os.cpu_count()}; envpool {envpool.__version__} "
          f"(MuJoCo 3.6.0), python mujoco {mujoco.__version__}; load average before: "
          f"{_loadavg()}")
    ratios: dict[tuple[str, int], list[float]] = {}
    for rep in range(0 if args.skip_raw else args.repeats):  # alternating, so a change of load hits both backends
        if args.one_pool:
            one = bench_one_pool("reach-v3", 10, args.seconds)
            print(f"[{rep}] one EnvPool pool, reach-v3 x 10 envs, direct pool.step: {one:,.0f} "
                  "env steps/s")
        for bench in args.benchmarks.split(","):
            mw = bench_metaworld(bench, args.seconds)
            print(f"[{rep}] {bench} metaworld (make_train_envs, sync, 1 env per task): "
                  f"{mw:,.0f} env steps/s ({_rate.per_cpu_s:,.0f} per CPU-second)", flush=True)
            for c in (int(x) for x in args.copies.split(",")):
                ep = bench_envpool(bench, args.seconds, c)
                ratios.setdefault((bench, c), []).append(ep / mw)
                print(f"[{rep}] {bench} envpool (EnvPoolTrainEnvs, {c} env(s) per task, 1 thread "
                      f"per pool): {ep:,.0f} env steps/s = {ep / mw:.2f}x metaworld "
                      f"({_rate.per_cpu_s:,.0f} per CPU-second)", flush=True)
    if args.rollout:
        # the committed CPU study's MT10 mtppo cells (this machine, 25,000 env steps per
        # update): seconds per update in the rollout and in total; the rollout part is
        # scaled by the speedup measured here, the rest (learning) is the same on both
        roll_s, update_s = _study_update_seconds()
        for rep in range(args.repeats):
            mw = rollout_rate("metaworld", args.seconds)
            ep = rollout_rate("envpool", args.seconds)
            s = ep / mw
            projected = roll_s / s + (update_s - roll_s)
            print(f"[{rep}] MT10 rollout loop with the MT-PPO networks (1 torch thread): "
                  f"metaworld {mw:,.0f}, envpool {ep:,.0f} env steps/s = {s:.2f}x; the "
                  f"study's update ({roll_s:.2f} s rollout + {update_s - roll_s:.2f} s other) "
                  f"would take {projected:.2f} s: {update_s / projected:.2f}x end to end "
                  "(projected)", flush=True)
    e2e: list[float] = []
    for rep in range(args.repeats if args.e2e else 0):
        t = {b: trainer_updates(b, args.e2e_updates) for b in ("metaworld", "envpool")}
        mw, ep = t["metaworld"], t["envpool"]
        e2e.append(mw["update_s"] / ep["update_s"])
        for b, r in t.items():
            print(f"[{rep}] trainer end to end, MT10 mtppo (config/cpu.yaml), {b}: "
                  f"{r['update_s']:.2f} s per update of {r['steps']:,} env steps "
                  f"({r['steps'] / r['update_s']:,.0f} env steps/s; rollout {r['rollout_s']:.2f} s "
                  f"of which env stepping {r['env_s']:.2f} s; learning "
                  f"{r['update_s'] - r['rollout_s']:.2f} s; {r['cpu_s']:.2f} CPU-s per update)",
                  flush=True)
        print(f"[{rep}] trainer end to end: envpool {e2e[-1]:.2f}x metaworld "
              f"(rollout alone {mw['rollout_s'] / ep['rollout_s']:.2f}x; per CPU-second "
              f"{mw['cpu_s'] / ep['cpu_s']:.2f}x)", flush=True)
    if e2e:
        print(f"trainer end to end (rollout + update, no evaluation), envpool / metaworld, "
              f"median of {len(e2e)}: {np.median(e2e):.2f}x (range {min(e2e):.2f} to "
              f"{max(e2e):.2f})")
    for (bench, c), r in ratios.items():
        print(f"{bench}, {c} env(s) per task: envpool / metaworld per core, median of "
              f"{len(r)}: {np.median(r):.2f}x (range {min(r):.2f} to {max(r):.2f})")
    print(f"load average after: {_loadavg()}")


if __name__ == "__main__":
    main()
