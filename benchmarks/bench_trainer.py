"""Trainer speed, as ratios measured in one run on one machine (not a test).

1. MT10 env throughput: the trainer's env-steps/s (rollout alone, and end to end with the
   PPO update) over raw random-action stepping of the same vector env.
2. Update cost on MT50-sized batches (K=50, obs 89, act 4, [400,400,400]): one TOPPO
   minibatch step (per-task gradients by vmap, PCGrad actor, FairGrad critic) over one
   plain-PPO minibatch step, and the naive K-backward reference over the vmap path.
3. ``--scaling``: for MT10 and MT50, raw single-core random-action stepping, the trainer's
   rollout in env steps/s with the envs in the trainer's process and with 1..C env workers
   (``env_workers``), each worker count's parallel efficiency (rate / (workers x raw
   single-core rate)), and end to end with the learner (``--paper-update``: the paper's
   10,000 steps per task and 16 x 32 minibatches; ``--eval-workers N``: evaluation at the
   paper's cadence, 50 episodes per task every 1M steps, on N workers).
4. ``--eval-overhead``: the wall time of one short reference-settings run (``ref_mt10``,
   one learner thread) three times -- inline evaluation, overlapped evaluation (a worker
   process), no evaluation -- as ratios, with each run's time budget. The run evaluates
   after every update with ``eval_episodes`` scaled so that evaluation costs the same
   share of env steps as the reference cadence (50 episodes per 1M steps): with
   ``--rollout-steps-per-task 2000`` (20K steps per update), one episode per task.

    python benchmarks/bench_trainer.py [--device cpu|cuda] [--rollout-steps-per-task 2000]
        [--async-envs [--envs-per-task N]]   # env stepping in subprocesses, for many-core nodes
    python benchmarks/bench_trainer.py --scaling [--benchmarks MT10 MT50] [--max-workers C]
        [--paper-update] [--eval-workers N] [--e2e-updates 2]                # only part 3
    python benchmarks/bench_trainer.py --eval-overhead [--eval-updates 4]   # only part 4
    python benchmarks/bench_trainer.py --update-ratios [--rounds 3] [--steps 4]  # only part 5
5. ``--update-ratios``: the learner's cost of one update at the paper's MT10 size (10,000
   steps per task, 16 epochs x 32 minibatches: 512 minibatch steps of 3,125 samples), for
   ``ref_mt10``, the paper's ``mtppo`` and ``toppo`` (default ``vmap`` per-task gradients and
   ``per_task_grad_impl=fused``), native vs portable, as ratios. The numerics mode is
   process-wide and set before torch loads, so each mode runs in its own subprocess, the two
   alternating for ``--rounds`` rounds; inside one, the variants' minibatch steps are timed
   in turn (``--steps`` each, CPU time of the process, one torch thread) on a synthetic
   rollout of that size, and an update is 512 times the median step. Ratios are taken within
   a subprocess (variant over variant) or between the two of a round (portable over native),
   and their median over the rounds is printed.

Each runs in the trainer's numerics mode: ``--numerics portable|native``, else
``TOPPO_NUMERICS``, else native (toppo.specs.numerics_mode), printed on the first line.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from toppo.harness import numerics
from toppo.specs import numerics_mode

try:  # the trainer's kernels (--numerics, else TOPPO_NUMERICS, else native): before torch and numpy load
    numerics.apply(numerics_mode.requested(sys.argv[1:]))
except numerics_mode.NumericsError as exc:
    sys.exit(f"bench_trainer.py: error: {exc}")

import gymnasium as gym
import metaworld  # noqa: F401
import torch

import toppo.algo.envs
from toppo.algo.learner import Learner
from toppo.algo.ppo import stratified_minibatches
from toppo.harness import heap
from toppo.harness.timebudget import format_budget
from toppo.specs.cores import auto_env_workers, available_cores
from toppo.specs.registry import BENCHMARKS
from toppo.specs.variants import resolve
from toppo.trainer import Trainer


def raw_env_sps(steps_per_env: int, seed: int = 0, benchmark: str = "MT10") -> float:
    toppo.algo.envs.quiet_box_precision_warnings()
    envs = gym.make_vec(f"Meta-World/{benchmark}", seed=seed, vector_strategy="sync", use_one_hot=True)
    envs.reset()
    envs.action_space.seed(seed)
    t0 = time.perf_counter()
    for _ in range(steps_per_env):
        envs.step(envs.action_space.sample())
    dt = time.perf_counter() - t0
    envs.close()
    return steps_per_env * envs.num_envs / dt


def trainer_sps(device: str, rollout_steps_per_task: int, updates: int,
                **env_options) -> tuple[float, float, float]:
    """(rollout-only env steps/s, end-to-end env steps/s, learn seconds per update) for TOPPO;
    ``env_options``: async_envs, envs_per_task."""
    cfg = resolve("toppo", {"benchmark": "MT10", "device": device, "diagnostics": True,
                            "rollout_steps_per_task": rollout_steps_per_task,
                            "total_steps": 10 * rollout_steps_per_task * updates,
                            "eval_every_steps": 10**12, "env_workers": 0, **env_options})
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp))
        rows = [trainer.train_one_update() for _ in range(updates)]
        trainer.close()
    steps = cfg.steps_per_update * updates
    roll = sum(r["rollout_time_s"] for r in rows)
    total = sum(r["update_time_s"] for r in rows)
    return steps / roll, steps / total, statistics.mean(r["learn_time_s"] for r in rows)


def timed_run(cfg, evaluate: bool) -> tuple[Trainer, float, float]:
    """One ``Trainer.run`` of ``cfg`` in a temporary directory: (the trainer, seconds to build
    it, seconds of the run). ``evaluate=False``: no evaluation at all, not even the final one
    (benchmark only)."""
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        trainer = Trainer(cfg, Path(tmp))
        build = time.perf_counter() - t0
        if not evaluate:
            trainer.eval_due = lambda: False
        try:
            t0 = time.perf_counter()
            trainer.run()
            wall = time.perf_counter() - t0
        finally:
            trainer.close()
    return trainer, build, wall


def eval_overhead_runs(device: str, rollout_steps_per_task: int, updates: int,
                       variant: str = "ref_mt10") -> dict[str, dict]:
    """The same short run with no, inline and overlapped evaluation, then no evaluation
    again (the machine's drift shows in the two): wall seconds of ``Trainer.run`` (env
    building excluded) and the run's time budget, per mode."""
    base = resolve(variant, {"device": device, "torch_threads": 1})
    steps = rollout_steps_per_task * base.num_tasks
    episodes = max(1, round(base.eval_episodes * steps / base.eval_every_steps))
    out = {}
    for key in ("none", "inline", "overlap", "none again"):
        mode = key.split()[0]
        cfg = resolve(variant, {"device": device, "torch_threads": 1, "progress_every_s": 1e9,
                                "rollout_steps_per_task": rollout_steps_per_task,
                                "total_steps": steps * updates, "eval_every_steps": steps,
                                "eval_episodes": episodes,
                                "eval_mode": "inline" if mode == "none" else mode})
        trainer, build, wall = timed_run(cfg, evaluate=mode != "none")
        out[key] = {"wall_s": wall, "build_s": build, "budget": trainer.time_budget(),
                    "episodes": episodes, "steps_per_update": steps,
                    "eval_env_steps": trainer.evals.env_steps}
        print(f"  {key}: wall {wall:.1f} s, load average {load_average().split()[0]}", flush=True)
    return out


def load_average() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def reuse_benchmarks() -> None:
    """Generate each benchmark's goals once for the whole sweep (MT50's take ~45 s): later
    trainers get a fresh copy-0 env from the same constructors. Benchmark-only."""
    original = toppo.algo.envs.benchmark_env_fns
    generate = functools.lru_cache(maxsize=None)(lambda *key: original(*key)[1])

    def cached(benchmark, reward_version, seed, max_episode_steps):
        fns = generate(benchmark, reward_version, seed, max_episode_steps)
        return gym.vector.SyncVectorEnv(fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP), fns

    toppo.algo.envs.benchmark_env_fns = cached


def scaling(args: argparse.Namespace, device: torch.device) -> None:
    """Part 3: rollout and end-to-end env steps/s against the number of env workers."""
    reuse_benchmarks()
    cores = available_cores()
    max_workers = args.max_workers or cores
    learner = ({"rollout_steps_per_task": 10_000, "num_epochs": 16, "num_minibatches": 32}
               if args.paper_update else
               {"rollout_steps_per_task": args.rollout_steps_per_task, "num_epochs": 2,
                "num_minibatches": 4})
    print(f"{cores} cores in this process's affinity, load average {load_average()}; learner "
          f"on {device}, torch {torch.__version__}; rollout timed over "
          f"{args.rollout_steps_per_task} steps per task")
    for bench in args.benchmarks:
        raw = raw_env_sps(args.raw_steps, benchmark=bench)
        print(f"\n{bench}: raw random-action stepping, one process: {raw:.0f} env steps/s")
        counts = list(dict.fromkeys(range(max_workers + 1) if args.worker_counts is None
                                    else args.worker_counts))  # in order, once each
        if counts:
            rollout_sweep(bench, device, counts, raw, args)
        # end to end, for each --eval-workers count: by default in the trainer's process and
        # with what env_workers=auto picks for --max-workers cores less the eval workers
        for eval_workers in args.eval_workers if args.e2e_updates else []:
            auto = auto_env_workers(max_workers, eval_workers, 10 if bench == "MT10" else 50)
            for workers in sorted({auto if w == "auto" else int(w) for w in args.e2e_workers}):
                e2e_run(bench, device, workers, eval_workers, learner, args.e2e_updates)


def rollout_sweep(bench: str, device: torch.device, counts: list[int], raw: float,
                  args: argparse.Namespace) -> None:
    """The trainer's rollout with each env worker count in ``counts``, interleaved: one
    trainer per count, all built first, then ``--rollout-reps`` rounds that time one whole
    rollout (resets included) of each in turn, so a drift of the machine's speed (this VM's
    raw rate moved by 20-30% between runs minutes apart) reaches every count alike. x
    (the first count) is the median over the rounds of the ratio within a round."""
    print("  env workers | rollout env steps/s | x first count | parallel efficiency")
    with contextlib.ExitStack() as stack:
        trainers = {}
        for workers in counts:
            # one torch thread: the policy's forward over 10-50 rows gains nothing from more,
            # and idle OpenMP threads would compete with the env workers for the cores; inline
            # evaluation: no eval worker building its envs beside the timed rollout
            cfg = resolve("toppo", {"benchmark": bench, "device": str(device), "torch_threads": 1,
                                    "rollout_steps_per_task": args.rollout_steps_per_task,
                                    "eval_every_steps": 10**12, "env_workers": workers,
                                    "eval_mode": "inline", "eval_envs_per_task": 1,
                                    "eval_episodes": 1})  # no 500 MT50 eval envs to build
            trainer = Trainer(cfg, Path(stack.enter_context(tempfile.TemporaryDirectory())))
            stack.callback(trainer.close)
            trainer.collect_rollout()  # warm-up: workers' first steps, page faults
            trainers[workers] = trainer
        rates: dict[int, list[float]] = {w: [] for w in counts}
        for _ in range(args.rollout_reps):
            for workers, trainer in trainers.items():
                t0 = time.perf_counter()
                trainer.collect_rollout()
                rates[workers].append(trainer.cfg.steps_per_update / (time.perf_counter() - t0))
    first = rates[counts[0]]
    for workers in counts:
        rate = statistics.median(rates[workers])
        ratio = statistics.median(r / f for r, f in zip(rates[workers], first))
        eff = f"{rate / (workers * raw):.2f}" if workers else "-"
        print(f"  {workers if workers else '0 (in-process)':>11} | {rate:19.0f} | {ratio:13.2f} | "
              f"{eff:>19}  (median of {len(rates[workers])} rollouts, "
              f"{min(rates[workers]):.0f}-{max(rates[workers]):.0f})", flush=True)
    print(f"  (load average after the sweep: {load_average()})")


def e2e_run(bench: str, device: torch.device, workers: int, eval_workers: int, learner: dict,
            updates: int) -> None:
    """End to end: ``updates`` updates of ``Trainer.run`` (env building excluded), with
    evaluation at the paper's cadence on ``eval_workers`` workers (0: no evaluation)."""
    steps = learner["rollout_steps_per_task"] * (10 if bench == "MT10" else 50)
    evaluate = eval_workers > 0
    cfg = resolve("toppo", {"benchmark": bench, "device": str(device), **learner,
                            "total_steps": steps * updates, "env_workers": workers,
                            "progress_every_s": 1e9,
                            "eval_mode": "overlap" if evaluate else "inline",
                            "eval_workers": max(1, eval_workers),
                            "eval_every_steps": 1_000_000 if evaluate else 10**12})
    trainer, _, wall = timed_run(cfg, evaluate)
    b = trainer.time_budget()
    print(f"  end to end, {workers} env workers, {updates} updates of {steps:,} steps "
          f"({learner['num_epochs']}x{learner['num_minibatches']} minibatches), "
          f"{f'evaluation every 1M steps on {eval_workers} workers' if evaluate else 'no evaluation'}: "
          f"{cfg.total_steps / wall:.0f} env steps/s ({wall:.1f} s; {format_budget(b)})", flush=True)


def synthetic_batch(K: int, M: int, obs_dim: int, act_dim: int, device: torch.device) -> dict:
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g).to(device)  # noqa: E731
    return {"obs": r(K, M, obs_dim), "task": torch.arange(K, device=device)[:, None].expand(K, M),
            "action": r(K, M, act_dim), "logp": r(K, M) - 4, "adv": r(K, M),
            "target": r(K, M) * torch.linspace(1, 100, K, device=device)[:, None],
            "old_value": r(K, M)}


def minibatch_ms(variant: str, device: torch.device, reps: int, **overrides) -> float:
    cfg = resolve(variant, {"benchmark": "MT50", **overrides})
    K, m = cfg.num_tasks, cfg.minibatch_per_task
    learner = Learner(cfg, obs_dim=39 + K, act_dim=4, device=device)
    data = synthetic_batch(K, m * 4, 39 + K, 4, device)
    rows = torch.arange(K, device=device)[:, None]
    idx = stratified_minibatches(K, m * 4, 4, device=device)
    batches = [{k: v[rows, i] for k, v in data.items()} for i in idx]
    if not cfg.stratified_minibatches:  # plain PPO draws a flat minibatch of the same size
        batches = [{k: v.reshape(-1, *v.shape[2:]) for k, v in b.items()} for b in batches]
    learner.minibatch_step(batches[0], "warm-up")
    times = []
    for i in range(reps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        learner.minibatch_step(batches[i % len(batches)], f"rep {i}")
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


UPDATE_VARIANTS = {"ref_mt10": ("ref_mt10", {}), "mtppo": ("mtppo", {}), "toppo": ("toppo", {}),
                   "toppo fused": ("toppo", {"per_task_grad_impl": "fused"})}


def paper_update_child(steps: int) -> None:
    """Part 5, in one numerics mode: CPU seconds of one paper-sized MT10 update (512 times the
    median minibatch step) of each of UPDATE_VARIANTS, as one JSON line; glibc keeps freed
    memory, as in the trainer (toppo.harness.heap)."""
    torch.set_num_threads(1)
    heap.keep_freed_memory()
    setups = {}
    for label, (variant, overrides) in UPDATE_VARIANTS.items():
        cfg = resolve(variant, {"benchmark": "MT10", "device": "cpu", **overrides})
        K, M = cfg.num_tasks, cfg.rollout_steps_per_task
        torch.manual_seed(0)
        learner = Learner(cfg, obs_dim=39 + K, act_dim=4, device=torch.device("cpu"))
        data = learner.prepare_batch({**synthetic_batch(K, M, 39 + K, 4, torch.device("cpu")),
                                      "ret": torch.randn(K, M), "value": torch.randn(K, M)})
        batches = learner.minibatches(data)
        learner.minibatch_step(next(batches), "warm-up")
        setups[label] = (learner, batches, cfg.num_epochs * cfg.num_minibatches)
    times: dict[str, list[float]] = {label: [] for label in setups}
    for i in range(steps):  # the variants in turn, so a drift of the machine reaches each alike
        for label, (learner, batches, _) in setups.items():
            t0 = time.process_time()
            learner.minibatch_step(next(batches), f"step {i}")
            times[label].append(time.process_time() - t0)
    print(json.dumps({label: n * statistics.median(times[label])
                      for label, (_, _, n) in setups.items()}), flush=True)


def paper_update_ratios(rounds: int, steps: int) -> None:
    """Part 5: native and portable subprocesses of ``paper_update_child``, alternating."""
    print(f"MT10 paper-sized update (10,000 steps per task, 16 x 32 minibatches of 3,125), learner "
          f"only, synthetic rollout; CPU seconds of one torch thread, {steps} timed steps per "
          f"variant per subprocess, {rounds} rounds; load average {load_average()}")
    runs: dict[str, list[dict[str, float]]] = {"native": [], "portable": []}
    for r in range(rounds):
        for mode in (("native", "portable") if r % 2 == 0 else ("portable", "native")):
            child = subprocess.run([sys.executable, __file__, numerics_mode.FLAG, mode,
                                    "--update-child", "--steps", str(steps)],
                                   capture_output=True, text=True, check=True)
            runs[mode].append(json.loads(child.stdout.strip().splitlines()[-1]))
        print(f"  round {r + 1}: " + "; ".join(
            f"{mode} " + ", ".join(f"{k} {v:.1f} s" for k, v in rs[-1].items())
            for mode, rs in runs.items()) + f" (load average {load_average()})", flush=True)
    med = lambda xs: statistics.median(xs)  # noqa: E731
    print("  per update (median over rounds), s:  " + " | ".join(
        f"{label}: native {med([x[label] for x in runs['native']]):.1f}, portable "
        f"{med([x[label] for x in runs['portable']]):.1f}" for label in UPDATE_VARIANTS))
    for label in UPDATE_VARIANTS:
        print(f"  portable / native, {label}: "
              f"{med([p[label] / n[label] for p, n in zip(runs['portable'], runs['native'])]):.2f}")
    for mode, rs in runs.items():
        for label in ("toppo", "toppo fused"):
            for base in ("mtppo", "ref_mt10"):
                print(f"  {mode}: {label} / {base}: {med([x[label] / x[base] for x in rs]):.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument(numerics_mode.FLAG, choices=numerics_mode.MODES,
                   help=f"the trainer's CPU kernels (default: {numerics_mode.MODE_VAR}, else "
                        f"{numerics_mode.DEFAULT_MODE}; toppo.specs.numerics_mode)")
    p.add_argument("--rollout-steps-per-task", type=int, default=2000)
    p.add_argument("--updates", type=int, default=1)
    p.add_argument("--raw-steps", type=int, default=1000, help="vector steps of the raw env loop")
    p.add_argument("--reps", type=int, default=10, help="timed minibatch steps per variant")
    p.add_argument("--skip-env", action="store_true", help="only the MT50 update timings")
    p.add_argument("--async-envs", action="store_true",
                   help="also time the rollout with AsyncVectorEnv copies (one process per env)")
    p.add_argument("--envs-per-task", type=int, default=1,
                   help="env copies per task for the --async-envs timing")
    p.add_argument("--eval-overhead", action="store_true",
                   help="only part 3: a short ref_mt10 run with inline / overlapped / no evaluation")
    p.add_argument("--eval-updates", type=int, default=4, help="updates of each part-3 run")
    p.add_argument("--scaling", action="store_true",
                   help="only part 3: rollout and end-to-end env steps/s against env workers")
    p.add_argument("--benchmarks", nargs="+", default=list(BENCHMARKS), choices=list(BENCHMARKS))
    p.add_argument("--rollout-reps", type=int, default=3,
                   help="timed rollouts per env worker count (their median is printed)")
    p.add_argument("--max-workers", type=int, default=0, help="largest env worker count (0: all cores)")
    p.add_argument("--paper-update", action="store_true",
                   help="end to end at the paper's update size (10,000 steps per task, 16 x 32)")
    p.add_argument("--eval-workers", type=int, nargs="+", default=[0],
                   help="end-to-end runs with evaluation at the paper's cadence on this many "
                        "workers each (0: without evaluation)")
    p.add_argument("--worker-counts", type=int, nargs="*", default=None,
                   help="env worker counts of the rollout sweep (default 0..max-workers; none: skip)")
    p.add_argument("--e2e-workers", nargs="+", default=["0", "auto"],
                   help="env worker counts of the end-to-end runs ('auto': what env_workers=auto picks)")
    p.add_argument("--e2e-updates", type=int, default=2,
                   help="updates of each end-to-end run (0: none)")
    p.add_argument("--raw-only", choices=list(BENCHMARKS),
                   help="only raw random-action stepping of this benchmark (one process)")
    p.add_argument("--update-ratios", action="store_true",
                   help="only part 5: a paper-sized MT10 update, native vs portable, TOPPO vs plain")
    p.add_argument("--rounds", type=int, default=3, help="part 5: native/portable subprocess pairs")
    p.add_argument("--steps", type=int, default=4, help="part 5: timed minibatch steps per variant")
    p.add_argument("--update-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.update_child:
        paper_update_child(args.steps)
        return
    if args.update_ratios:
        paper_update_ratios(args.rounds, args.steps)
        return
    device = torch.device(args.device)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"numerics {numerics.in_effect()}")
    if args.raw_only:
        print(f"{args.raw_only} raw random-action stepping, one process: "
              f"{raw_env_sps(args.raw_steps, benchmark=args.raw_only):.0f} env steps/s")
        return
    if args.scaling:
        scaling(args, device)
        return
    if args.eval_overhead:
        with open("/proc/loadavg") as f:
            print(f"load average before: {f.read().split()[:3]} on {os.cpu_count()} cores")
        runs = eval_overhead_runs(args.device, args.rollout_steps_per_task, args.eval_updates)
        with open("/proc/loadavg") as f:
            print(f"load average after: {f.read().split()[:3]}")
        r0 = runs["none"]
        print(f"ref_mt10, {args.eval_updates} updates of {r0['steps_per_update']:,} steps, one "
              f"learner thread, evaluation after every update ({r0['episodes']} episode(s) per task)")
        for mode, r in runs.items():
            print(f"  {mode:8s} wall {r['wall_s']:7.1f} s (env build {r['build_s']:.1f} s): "
                  f"{format_budget(r['budget'])}")
            b = r["budget"]
            if r["eval_env_steps"]:
                print(f"           evaluation {r['eval_env_steps'] / b['eval_compute_s']:.0f} env steps/s; "
                      f"rollout {args.eval_updates * r['steps_per_update'] / b['rollout_env_s']:.0f} "
                      f"env steps/s of env time; learner {b['learner_s'] / args.eval_updates:.1f} s "
                      "per update")
        none = (r0["wall_s"] + runs["none again"]["wall_s"]) / 2
        print(f"no evaluation, first and last run: {r0['wall_s']:.1f} s and "
              f"{runs['none again']['wall_s']:.1f} s; their mean is the baseline")
        drain = runs["overlap"]["budget"]["eval_wait_s"]
        print(f"ratio inline / no eval: {runs['inline']['wall_s'] / none:.3f}")
        print(f"ratio overlap / no eval: {runs['overlap']['wall_s'] / none:.3f}")
        print(f"ratio overlap without the final evaluation's wait ({drain:.1f} s) / no eval: "
              f"{(runs['overlap']['wall_s'] - drain) / none:.3f}")
        return

    if not args.skip_env:
        raw = raw_env_sps(args.raw_steps)
        roll, e2e, learn = trainer_sps(args.device, args.rollout_steps_per_task, args.updates)
        print(f"MT10 raw random-action stepping:  {raw:8.0f} env steps/s")
        print(f"MT10 TOPPO rollout (policy on {device}): {roll:8.0f} env steps/s  "
              f"ratio to raw {roll / raw:.2f}")
        print(f"MT10 TOPPO end to end (rollout + update, 16x32 minibatches): {e2e:8.0f} env steps/s  "
              f"ratio to raw {e2e / raw:.2f}  (learn {learn:.1f} s per update of "
              f"{10 * args.rollout_steps_per_task} steps)")
        if args.async_envs:
            roll_a, _, _ = trainer_sps(args.device, args.rollout_steps_per_task, args.updates,
                                       async_envs=True, envs_per_task=args.envs_per_task)
            print(f"MT10 TOPPO rollout, async envs x{args.envs_per_task} per task: {roll_a:8.0f} "
                  f"env steps/s  ratio to raw {roll_a / raw:.2f}  ratio to sync {roll_a / roll:.2f}")

    plain = minibatch_ms("mtppo", device, args.reps)
    strat = minibatch_ms("mtppo_strat", device, args.reps)
    toppo = minibatch_ms("toppo", device, args.reps)
    loop = minibatch_ms("toppo", device, max(2, args.reps // 5), per_task_grad_impl="loop")
    print(f"MT50 minibatch (50 tasks x 312 samples): plain PPO {plain:.1f} ms, stratified sum "
          f"{strat:.1f} ms, TOPPO (vmap) {toppo:.1f} ms, TOPPO (K backwards) {loop:.1f} ms")
    print(f"ratio TOPPO / plain PPO update time: {toppo / plain:.2f}")
    print(f"ratio K-backward reference / vmap per-task gradients: {loop / toppo:.2f}")
    print(f"full MT50 update (16 epochs x 32 minibatches): plain {512 * plain / 1000:.0f} s, "
          f"TOPPO {512 * toppo / 1000:.0f} s")


if __name__ == "__main__":
    main()
