"""metaworld's own code against toppo.algo.metaworld_fast, on the trainer's rollout (issue 30).

Builds the trainer of ``python -m toppo.train --variant ref_mt10 --benchmark MT10
--reward-version v2 --seed 7`` (native numerics, one torch thread, envs in the trainer's
process), runs one warm-up rollout of STEPS steps per task, then ROUNDS pairs of timed
rollouts, one with metaworld's own code (``metaworld_fast.uninstall()``) and one with the
replacements, the order alternating from pair to pair, all in this process. Timed: the whole
``collect_rollout`` and every env's ``step``/``reset`` (metaworld with its wrappers), by the
main thread's CPU clock and by the wall clock; the 1-minute load average at each start.
Per vector step = one step of the 10 envs; a 100,000-step update is 10,000 of them.

    taskset -c 1 python benchmarks/measurements/metaworld-fast-2026-12-07/ab_rollout.py [STEPS] [ROUNDS]
"""
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "rollout-profile-2026-12-07"))
from rollout_split import Trainer, acc, clock, resolve, timed  # noqa: E402  (native numerics)

from toppo.algo import metaworld_fast  # noqa: E402


def main() -> None:
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    cfg = resolve("ref_mt10", {"seed": 7, "torch_threads": 1, "rollout_steps_per_task": steps,
                               "total_steps": 10 * steps * (2 * rounds + 1), "env_workers": 0,
                               "eval_every_steps": 10**12, "eval_mode": "inline"})
    with tempfile.TemporaryDirectory() as tmp:
        tr = Trainer(cfg, Path(tmp))
        for e in tr.envs.single_envs():
            e.step, e.reset = timed("env", e.step), timed("env", e.reset)
        tr.collect_rollout()  # warm-up
        print(f"{'code':10s} {'load':>5s} {'rollout CPU':>12s} {'wall':>8s} {'env CPU':>9s} "
              f"{'rest CPU':>9s}   us per vector step; x10,000 = s per 100k-step update", flush=True)
        totals: dict[str, list[float]] = {"metaworld": [], "fast": []}
        for r in range(rounds):
            order = ("metaworld", "fast") if r % 2 == 0 else ("fast", "metaworld")
            for code in order:
                (metaworld_fast.install if code == "fast" else metaworld_fast.uninstall)()
                load = os.getloadavg()[0]
                acc.clear()
                t0, w0 = clock(), time.perf_counter()
                tr.collect_rollout()
                cpu, wall = clock() - t0, time.perf_counter() - w0
                per = 1e6 / steps
                totals[code].append(cpu * per)
                print(f"{code:10s} {load:5.2f} {cpu * per:12.0f} {wall * per:8.0f} "
                      f"{acc['env'] * per:9.0f} {(cpu - acc['env']) * per:9.0f}", flush=True)
        metaworld_fast.install()
        mean = {k: sum(v) / len(v) for k, v in totals.items()}
        cut = mean["metaworld"] - mean["fast"]
        print(f"mean rollout CPU per vector step: metaworld {mean['metaworld']:.0f} us, fast "
              f"{mean['fast']:.0f} us: {cut:.0f} us less, {cut / 100:.1f} s of CPU per "
              f"100,000-step update ({mean['metaworld'] / mean['fast']:.2f}x the rollout's speed)")
        tr.close()


if __name__ == "__main__":
    main()
