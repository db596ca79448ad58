"""Where one MT10 rollout step's time goes: timers around the trainer's calls (actor.sample,
step_async, step_wait, the rest of the loop) and the CPU time of the trainer and of each env
worker (from /proc), per vector step.

    PYTHONPATH=. python benchmarks/measurements/dev-2core-2026-12-05/rollout_profile.py WORKERS [ROUNDS]
"""
import os
import sys
import tempfile
import time
from pathlib import Path

from toppo.harness import numerics

numerics.apply()
from toppo.specs.variants import resolve  # noqa: E402
from toppo.trainer import Trainer  # noqa: E402


def cpu_s(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def main():
    workers = int(sys.argv[1])
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    cfg = resolve("toppo", {"benchmark": "MT10", "device": "cpu", "torch_threads": 1,
                            "rollout_steps_per_task": 1000, "eval_every_steps": 10**12,
                            "env_workers": workers, "eval_mode": "inline",
                            "eval_envs_per_task": 1, "eval_episodes": 1})
    with tempfile.TemporaryDirectory() as d:
        tr = Trainer(cfg, Path(d))
        try:
            tr.collect_rollout()
            envs = tr.envs
            T = {"sample": 0.0, "async": 0.0, "wait": 0.0}
            A = []  # each step_async's duration
            actor = tr.learner.actor

            def timed(name, f):
                def g(*a, **k):
                    t0 = time.perf_counter()
                    r = f(*a, **k)
                    T[name] += time.perf_counter() - t0
                    if name == "async":
                        A.append(time.perf_counter() - t0)
                    return r
                return g
            actor.sample = timed("sample", actor.sample)
            envs.step_async = timed("async", envs.step_async)
            envs.step_wait = timed("wait", envs.step_wait)
            pids = [p.pid for p in getattr(envs, "_procs", [])]
            n = cfg.rollout_steps_per_task
            for _ in range(reps):
                for k in T:
                    T[k] = 0.0
                A.clear()
                c0, m0 = [cpu_s(p) for p in pids], time.process_time()
                t0 = time.perf_counter()
                tr.collect_rollout()
                wall = time.perf_counter() - t0
                c1, m1 = [cpu_s(p) for p in pids], time.process_time()
                ms = lambda x: f"{x / n * 1e3:.2f}"  # noqa: E731
                print(f"workers {workers}: {cfg.steps_per_update / wall:.0f} env steps/s; per vector "
                      f"step {ms(wall)} ms: sample {ms(T['sample'])}, async {ms(T['async'])}, "
                      f"wait {ms(T['wait'])}, rest {ms(wall - sum(T.values()))}; trainer CPU "
                      f"{ms(m1 - m0)} ms (both threads); worker CPU "
                      + ", ".join(ms(b - a) for a, b in zip(c0, c1)) + f" ms; step_async over 0.3 ms in {sum(a > 3e-4 for a in A)} of {len(A)} steps;"
                      f" load {os.getloadavg()[0]:.2f}",
                      flush=True)
        finally:
            tr.close()


if __name__ == "__main__":
    main()
