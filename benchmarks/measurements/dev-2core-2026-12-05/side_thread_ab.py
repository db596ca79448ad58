"""The rollout's critic on a side thread (toppo.algo.rollout) against inline (a synchronous
executor in its place), interleaved in one process: one trainer with the envs in-process and
one with 2 env workers, then rounds that time one rollout of each in each mode.

    PYTHONPATH=. python benchmarks/measurements/dev-2core-2026-12-05/side_thread_ab.py MT10 1000 6
"""
from toppo.harness import numerics

numerics.apply()  # the trainer's kernels, before torch loads

import contextlib  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from concurrent.futures import Future, ThreadPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import toppo.algo.rollout as rollout  # noqa: E402
from toppo.specs.variants import resolve  # noqa: E402
from toppo.trainer import Trainer  # noqa: E402


class Inline:
    """ThreadPoolExecutor's interface, running each call at once on the caller's thread."""

    def __init__(self, *args, **kwargs):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def submit(self, fn, *args):
        future = Future()
        future.set_result(fn(*args))
        return future


if __name__ == "__main__":
    bench, steps, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    counts = [0, 2]
    with contextlib.ExitStack() as stack:
        trainers = {}
        for workers in counts:
            cfg = resolve("toppo", {"benchmark": bench, "device": "cpu", "torch_threads": 1,
                                    "rollout_steps_per_task": steps, "eval_every_steps": 10**12,
                                    "env_workers": workers, "eval_mode": "inline",
                                    "eval_envs_per_task": 1, "eval_episodes": 1})
            trainer = Trainer(cfg, Path(stack.enter_context(tempfile.TemporaryDirectory())))
            stack.callback(trainer.close)
            trainer.collect_rollout()  # warm-up
            trainers[workers] = trainer
        rates = {(mode, w): [] for mode in ("inline", "thread") for w in counts}
        for _ in range(reps):
            for mode, executor in (("inline", Inline), ("thread", ThreadPoolExecutor)):
                rollout.ThreadPoolExecutor = executor
                for workers, trainer in trainers.items():
                    t0 = time.perf_counter()
                    trainer.collect_rollout()
                    rates[(mode, workers)].append(trainer.cfg.steps_per_update
                                                  / (time.perf_counter() - t0))
    base = rates[("inline", 0)]
    for key, values in rates.items():
        ratio = statistics.median(a / b for a, b in zip(values, base))
        print(key, f"median {statistics.median(values):.0f} range {min(values):.0f}-"
              f"{max(values):.0f} x inline-in-process {ratio:.3f}", flush=True)
    print(open("/proc/loadavg").read())
