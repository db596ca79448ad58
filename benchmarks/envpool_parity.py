"""EnvPool's native Meta-World against metaworld, per task: step parity from matched states
(metaworld on EnvPool's goal stream: the tests' fixture ``tests/envpool_oracle.py``) and
scripted-expert success rates on EnvPool, on metaworld with EnvPool's goals, and on the
harness's metaworld training envs (the benchmark's 50 fixed goals per task).

    PYTHONPATH=. .venv/bin/python benchmarks/envpool_parity.py --benchmark MT10 \
        --steps 1000 --expert-episodes 20

Prints the versions it ran on (the physics engine matters: docs/envpool.md).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' fixtures

import envpool
import mujoco
import numpy as np
from envpool_oracle import expert_success, goal_distribution, step_parity

from toppo.specs.registry import BENCHMARKS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--benchmark", default="MT10", choices=sorted(BENCHMARKS))
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--steps", type=int, default=1000, help="vector steps of step parity (0: skip)")
    ap.add_argument("--policies", default="random,expert", help="step-parity action sources")
    ap.add_argument("--expert-episodes", type=int, default=0, help="per task and backend (0: skip)")
    ap.add_argument("--expert-backends", default="envpool,metaworld-matched,metaworld-benchmark")
    ap.add_argument("--tasks", default="", help="step parity on these tasks only (comma-separated)")
    ap.add_argument("--frozen-pads", action="store_true",
                    help="give metaworld EnvPool's construction-time pad copies (oracle_env)")
    ap.add_argument("--goal-resets", type=int, default=0,
                    help="EnvPool resets per task against the benchmark's 50 goals (0: skip)")
    args = ap.parse_args()
    names = list(BENCHMARKS[args.benchmark])
    step_names = args.tasks.split(",") if args.tasks else names
    print(f"envpool {envpool.__version__} (bundles MuJoCo 3.6.0), metaworld "
          f"{importlib.metadata.version('metaworld')}, "
          f"mujoco (python, metaworld's) {mujoco.__version__}, numpy {np.__version__}, "
          f"python {platform.python_version()}")
    if args.steps:
        for policy in args.policies.split(","):
            t0 = time.perf_counter()
            r = step_parity(step_names, args.seed, args.steps, policy=policy,
                            frozen_pads=args.frozen_pads)
            what = args.benchmark if not args.tasks else f"tasks {step_names}"
            pads = ", metaworld given EnvPool's frozen pads" if args.frozen_pads else ""
            print(f"\n## step parity, {what}{pads}, {policy} actions, {args.steps} steps "
                  f"({args.steps // 500} episodes per task), seed {args.seed} "
                  f"[{time.perf_counter() - t0:.0f} s]")
            print(f"terminated/truncated equal every step: {r.ends_equal}; final success equal: "
                  f"{r.final_success_equal}; truncations at episode steps "
                  f"{sorted(set(r.truncation_steps))} ({len(r.truncation_steps)} episodes)")
            print(f"{'task':28s} {'goal':>8s} {'reset obs':>9s} {'step obs':>9s} {'diverged':>8s} "
                  f"{'rew max':>8s} {'rew mean':>8s} {'succ agree':>10s}")
            for k, n in enumerate(step_names):
                div = r.first_diverged_step[k]
                print(f"{n:28s} {r.goal_maxdiff[k]:8.1e} {r.reset_obs_maxdiff[k]:9.1e} "
                      f"{r.step_obs_maxdiff[k]:9.1e} {('-' if div < 0 else str(div)):>8s} "
                      f"{r.reward_maxdiff[k]:8.1e} {r.reward_meandiff[k]:8.1e} "
                      f"{r.success_agree[k]:10.4f}")
            print("(goal, reset obs: max |diff| over resets; step obs: max |diff| of step "
                  "observations; diverged: first episode step with an obs diff > 1e-3; rew: "
                  "|reward diff|; succ agree: fraction of steps with equal info['success'])")
    if args.goal_resets:
        t0 = time.perf_counter()
        rows = goal_distribution(args.benchmark, args.seed, args.goal_resets)
        print(f"\n## goals: EnvPool's fresh goal per reset against the benchmark's 50 fixed "
              f"goals per task ({args.benchmark}, benchmark seed {args.seed}) "
              f"[{time.perf_counter() - t0:.0f} s]")
        print("scene = reset object position and goal (6-d, m); nn = distance to the nearest "
              "benchmark scene (for a benchmark scene: the nearest other one)")
        print(f"{'task':28s} {'EnvPool n':>9s} {'nn mean':>8s} {'nn p95':>8s} "
              f"{'bench nn':>8s}  range EnvPool | range benchmark")
        for r in rows:
            print(f"{r['task']:28s} {r['envpool_scenes']:9d} "
                  f"{r['nn_envpool_to_benchmark_mean']:8.4f} {r['nn_envpool_to_benchmark_p95']:8.4f} "
                  f"{r['nn_benchmark_to_benchmark_mean']:8.4f}  {r['range_envpool']} | "
                  f"{r['range_benchmark']}")
    if args.expert_episodes:
        rates = {}
        for backend in args.expert_backends.split(","):
            t0 = time.perf_counter()
            got, rate = expert_success(backend, args.seed, args.expert_episodes,
                                       benchmark=args.benchmark)
            assert got == names
            rates[backend] = rate
            print(f"[{backend}: {time.perf_counter() - t0:.0f} s]")
        E = args.expert_episodes
        print(f"\n## scripted experts (metaworld.policies), {args.benchmark}, {E} episodes per "
              f"task and backend, success = info['success'] at any step of a 500-step episode")
        cols = list(rates)
        print(f"{'task':28s} " + " ".join(f"{c:>20s}" for c in cols))
        for k, n in enumerate(names):
            print(f"{n:28s} " + " ".join(f"{rates[c][k]:20.2f}" for c in cols))
        print(f"{'mean':28s} " + " ".join(f"{rates[c].mean():20.3f}" for c in cols))
        # two-proportion standard error of the mean difference, per pair of backends
        for i, a in enumerate(cols):
            for b in cols[i + 1:]:
                d = rates[a] - rates[b]
                se = np.sqrt(np.sum(rates[a] * (1 - rates[a]) + rates[b] * (1 - rates[b])) / E) \
                    / len(names)
                print(f"mean {a} - {b}: {d.mean():+.3f} (binomial s.e. {se:.3f}); tasks "
                      f"differing by more than 2 s.e. of a task "
                      f"({2 * np.sqrt(0.5 / E):.2f} at worst): "
                      f"{[n for n, x in zip(names, d) if abs(x) > 2 * np.sqrt(0.5 / E)]}")


if __name__ == "__main__":
    main()
