"""Where one metaworld env step's CPU time goes, per Python function (issue 30).

Steps each named task's env (metaworld 3.1.1, built as the benchmark builds it, random goals,
100-step episodes, random actions) STEPS times after a warm-up, with timers (the thread's
CPU clock) around the functions that toppo.algo.metaworld_fast replaces and the layers
around them. ``--fast``: with the replacements installed, else metaworld's own code (what
``import toppo.algo.envs`` installs is taken out first). Prints CPU us per step of the set
("vector step": one step of every task's env) and per call.

    taskset -c 1 python benchmarks/measurements/metaworld-fast-2026-12-07/profile_step.py \
        [--fast] [--steps N] [--tasks mt10|mt50-sample|NAME,...]
"""
import argparse
import functools
import sys
from collections import defaultdict
from pathlib import Path

import mujoco
import numpy as np
from metaworld.sawyer_xyz_env import SawyerXYZEnv
from metaworld.utils import reward_utils

from toppo.algo import metaworld_fast as mf

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "rollout-profile-2026-12-07"))
import rollout_split  # noqa: E402  (its CPU-clock timers)
from test_metaworld_fast import raw_env  # noqa: E402  (the tests' env builder)

MT10 = ("reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-open-v3",
        "drawer-close-v3", "button-press-topdown-v3", "peg-insert-side-v3", "window-open-v3",
        "window-close-v3")
MT50_SAMPLE = ("assembly-v3", "basketball-v3", "coffee-push-v3", "hammer-v3", "lever-pull-v3",
               "plate-slide-v3", "shelf-place-v3", "soccer-v3", "stick-pull-v3", "sweep-into-v3")
clock, acc = rollout_split.clock, rollout_split.acc
calls: dict[str, int] = defaultdict(int)


def timed(key, fn):
    """``rollout_split.timed`` (CPU time into ``acc[key]``), counting the calls too."""
    timed_fn = rollout_split.timed(key, fn)

    @functools.wraps(fn)
    def wrapper(*a, **k):
        calls[key] += 1
        return timed_fn(*a, **k)
    return wrapper


class TimedRotation:
    """A module's ``Rotation`` with ``from_matrix(m).as_quat()`` timed as one call."""

    def __init__(self, inner):
        self.inner = inner

    def from_matrix(self, matrix):
        quat = timed("Rotation.from_matrix(m).as_quat()",
                     lambda m: self.inner.from_matrix(m).as_quat())(matrix)
        return mf._Quaternion(quat)


def instrument(envs) -> None:
    for name in ("touching_object", "_get_obs", "_get_curr_obs_combined_no_goal", "set_xyz_action"):
        setattr(SawyerXYZEnv, name, timed(name, getattr(SawyerXYZEnv, name)))
    tol = timed("reward_utils.tolerance", reward_utils.tolerance)
    reward_utils.tolerance = tol
    for module in mf.env_modules():
        if hasattr(module, "Rotation"):
            module.Rotation = TimedRotation(module.Rotation)
        if hasattr(module, "tolerance"):
            module.tolerance = tol
    for fn in ("mj_step", "mj_forward", "mj_rnePostConstraint"):
        setattr(mujoco, fn, timed("mujoco C calls", getattr(mujoco, fn)))
    for cls in {type(e) for e in envs}:
        cls.evaluate_state = timed("evaluate_state (reward)", cls.evaluate_state)
        cls.step = timed("env.step", cls.step)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fast", action="store_true")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--tasks", default="mt10")
    args = ap.parse_args()
    names = {"mt10": MT10, "mt50-sample": MT50_SAMPLE}.get(args.tasks) or args.tasks.split(",")
    (mf.install if args.fast else mf.uninstall)()
    envs = [raw_env(n, 7 + i, max_path_length=100) for i, n in enumerate(names)]
    instrument(envs)
    rng = np.random.default_rng(0)

    def loop(n):
        for _ in range(n):
            for e in envs:
                *_, terminated, truncated, _ = e.step(rng.uniform(-1, 1, 4).astype(np.float32))
                if terminated or truncated:
                    e.reset()

    for e in envs:
        e.reset()
    loop(50)
    acc.clear()
    calls.clear()
    t0 = clock()
    loop(args.steps)
    total = clock() - t0
    n = args.steps
    print(f"{'fast' if args.fast else 'metaworld'} {args.tasks} ({len(envs)} envs), {n} steps: "
          f"{total / n * 1e6:.0f} us CPU per vector step (timers included)")
    for key in sorted(acc, key=lambda k: -acc[k]):
        print(f"  {key:34s} {acc[key] / n * 1e6:7.0f} us/vector step {calls[key] / n:5.1f} calls "
              f"{acc[key] / calls[key] * 1e6:7.1f} us/call")


if __name__ == "__main__":
    main()
