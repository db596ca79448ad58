"""Where the CPU time of one ref_mt10 rollout goes, on the trainer's own path (issue 30).

Builds the trainer of ``python -m toppo.train --variant ref_mt10 --benchmark MT10
--reward-version v2 --seed 7`` (native numerics, one torch thread, envs in the trainer's
process), runs one warm-up rollout of STEPS steps per task, then ROUNDS timed rollouts with
timers (the main thread's CPU clock) around: each env's ``step`` (metaworld's env with its
wrappers) and ``reset`` (the same-step autoresets); inside them mujoco's C calls,
metaworld's observation and its reward (``evaluate_state``); the trainer's ``step_async``
and ``step_wait`` (the envs plus the vector-env layer: gymnasium's ``SyncVectorEnv`` and
``reduce_step`` before this change, ``step_envs`` after it, and ``StepBatch.cast``) and
``actor.sample``. "rest" is the rollout's other work (buffers, tensor <-> numpy, episode
bookkeeping, the linear baseline and GAE). Per vector step = one step of the 10 envs.

    taskset -c 1 python benchmarks/measurements/rollout-profile-2026-12-07/rollout_split.py [STEPS] [ROUNDS]
"""
import functools
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from toppo.harness import numerics

numerics.apply("native")
import mujoco  # noqa: E402
from metaworld.sawyer_xyz_env import SawyerXYZEnv  # noqa: E402

from toppo.specs.variants import resolve  # noqa: E402
from toppo.trainer import Trainer  # noqa: E402

clock = time.thread_time
acc: dict[str, float] = defaultdict(float)


def timed(key, fn):
    @functools.wraps(fn)
    def wrapper(*a, **k):
        t0 = clock()
        try:
            return fn(*a, **k)
        finally:
            acc[key] += clock() - t0
    return wrapper


def main() -> None:
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    cfg = resolve("ref_mt10", {"seed": 7, "torch_threads": 1, "rollout_steps_per_task": steps,
                               "total_steps": 10 * steps * (rounds + 1), "env_workers": 0,
                               "eval_every_steps": 10**12, "eval_mode": "inline"})
    with tempfile.TemporaryDirectory() as tmp:
        tr = Trainer(cfg, Path(tmp))
        envs = tr.envs
        singles = envs.single_envs()
        for fn in ("mj_step", "mj_forward", "mj_rnePostConstraint"):
            setattr(mujoco, fn, timed("  mujoco (C)", getattr(mujoco, fn)))
        SawyerXYZEnv._get_obs = timed("  metaworld observation", SawyerXYZEnv._get_obs)
        for cls in {type(e.unwrapped) for e in singles}:
            cls.evaluate_state = timed("  metaworld reward (evaluate_state)", cls.evaluate_state)
        for e in singles:
            e.step = timed("env step (metaworld + wrappers)", e.step)
            e.reset = timed("env reset (autoreset)", e.reset)
        envs.step_async = timed("step_async", envs.step_async)
        envs.step_wait = timed("step_wait", envs.step_wait)
        tr.learner.actor.sample = timed("actor.sample", tr.learner.actor.sample)
        tr.collect_rollout()  # warm-up
        for _ in range(rounds):
            acc.clear()
            t0, w0 = clock(), time.perf_counter()
            tr.collect_rollout()
            total, wall = clock() - t0, time.perf_counter() - w0
            per = 1e6 / steps  # us per vector step
            env = acc["env step (metaworld + wrappers)"] + acc["env reset (autoreset)"]
            vector = acc["step_wait"] + acc["step_async"] - env
            rest = total - acc["step_wait"] - acc["step_async"] - acc["actor.sample"]
            print(f"rollout of {steps} x 10 env steps: CPU {total:.2f} s, wall {wall:.2f} s; "
                  f"per vector step, CPU us:")
            for key in sorted(acc, key=lambda k: -acc[k]):
                if key not in ("step_wait", "step_async"):
                    print(f"  {key:40s} {acc[key] * per:7.0f}")
            print(f"  {'vector-env layer (step_wait + step_async - envs)':40s} {vector * per:7.0f}")
            print(f"  {'rest of the rollout':40s} {rest * per:7.0f}")
            print(f"  {'total':40s} {total * per:7.0f}  (x10,000 for a 100,000-step update: "
                  f"{total * 10_000 / steps:.1f} s)", flush=True)
        tr.close()


if __name__ == "__main__":
    main()
