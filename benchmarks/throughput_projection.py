"""Projected hours of a paper-scale run and of the whole grid on a GPU node with C cores.

A model, not a measurement: its inputs are per-step costs measured with
``benchmarks/bench_trainer.py`` (on the machine where they were measured) and stated
assumptions; docs/throughput.md gives the values used and where each comes from.

Model of one run (``rollout_steps_per_task`` steps per task per update, evaluation every
``eval_every`` steps of ``episodes`` x K episodes of at most ``max_episode_steps`` steps):

* one core runs the trainer (policy on the GPU, learner on the GPU: ``learner_s`` per update);
* W cores step the training envs (``async_envs``), each at ``env_sps`` x ``async_eff``;
* E cores run eval workers (``eval_mode=overlap``), each at ``eval_sps``; W + E = C - 1;
* an update takes rollout + learner; evaluation keeps pace when its share of env steps per
  update fits in that time, so an update cycle takes max(train, eval); the final
  evaluation (one worker) is added at the end.

Inline evaluation for comparison: the same cores all step training envs, then all step the
eval envs (async eval copies), while training waits.

    python benchmarks/throughput_projection.py --env-sps 1500 --eval-sps 1400 --learner-s 5
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

# the paper grid (config/config.yaml), distinct cells: MT50 runs, MT10 runs
GRID_RUNS = {"MT50": 250, "MT10": 40}
SETTINGS = {"MT50": {"K": 50, "total": 100_000_000}, "MT10": {"K": 10, "total": 20_000_000}}


@dataclass
class Inputs:
    env_sps: float  # training env steps/s of one core (policy actions, sync stepping)
    eval_sps: float  # evaluation env steps/s of one eval worker (one core)
    learner_s: float  # seconds per PPO update on the GPU (MT50 batch; scaled by K for MT10)
    async_eff: float = 0.8  # fraction of env_sps a core keeps when envs step in subprocesses
    eval_frac: float = 1.0  # eval steps / (episodes x max_episode_steps): 1 = no early success
    rollout_steps_per_task: int = 10_000
    eval_every: int = 1_000_000
    episodes: int = 50
    max_episode_steps: int = 500


def run_hours(inp: Inputs, bench: str, cores: int, eval_workers: int | None) -> float:
    """Hours of one run; ``eval_workers=None``: inline evaluation on all env cores."""
    K, total = SETTINGS[bench]["K"], SETTINGS[bench]["total"]
    per_update = inp.rollout_steps_per_task * K
    updates = -(-total // per_update)
    learner = inp.learner_s * K / 50
    eval_steps = inp.eval_frac * inp.episodes * K * inp.max_episode_steps
    eval_per_update = eval_steps * per_update / inp.eval_every
    env_cores = cores - 1
    if eval_workers is None:
        rate = env_cores * inp.env_sps * inp.async_eff
        cycle = per_update / rate + learner + eval_per_update / (env_cores * inp.eval_sps * inp.async_eff)
        return updates * cycle / 3600
    train_cores = env_cores - eval_workers
    train = per_update / (train_cores * inp.env_sps * inp.async_eff) + learner
    ev = eval_per_update / (eval_workers * inp.eval_sps)
    return (updates * max(train, ev) + eval_steps / inp.eval_sps) / 3600


def best_split(inp: Inputs, bench: str, cores: int) -> tuple[int, float]:
    options = [(run_hours(inp, bench, cores, e), e) for e in range(1, cores - 1)]
    hours, e = min(options)
    return e, hours


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env-sps", type=float, required=True, help="MT50 training env steps/s per core")
    p.add_argument("--eval-sps", type=float, required=True, help="MT50 eval env steps/s per worker")
    p.add_argument("--learner-s", type=float, required=True, help="GPU seconds per MT50 update")
    p.add_argument("--async-eff", type=float, default=0.8)
    p.add_argument("--eval-frac", type=float, default=1.0)
    p.add_argument("--mt10-speedup", type=float, default=1.0,
                   help="MT10 env steps/s over MT50's, per core (measured ratio)")
    p.add_argument("--cores", type=int, nargs="+", default=[8, 16, 32])
    args = p.parse_args()
    inp = Inputs(args.env_sps, args.eval_sps, args.learner_s, args.async_eff, args.eval_frac)
    mt10 = Inputs(args.env_sps * args.mt10_speedup, args.eval_sps * args.mt10_speedup,
                  args.learner_s, args.async_eff, args.eval_frac)
    print("| C | eval workers | train env cores | MT50 run, overlap (h) | MT50 run, inline (h) "
          "| MT10 run, overlap (h) | grid, overlap (node-h) | grid, inline (node-h) |")
    print("|---|---|---|---|---|---|---|---|")
    for c in args.cores:
        e, h50 = best_split(inp, "MT50", c)
        e10, h10 = best_split(mt10, "MT10", c)
        i50, i10 = run_hours(inp, "MT50", c, None), run_hours(mt10, "MT10", c, None)
        grid = GRID_RUNS["MT50"] * h50 + GRID_RUNS["MT10"] * h10
        grid_inline = GRID_RUNS["MT50"] * i50 + GRID_RUNS["MT10"] * i10
        print(f"| {c} | {e} (MT10: {e10}) | {c - 1 - e} | {h50:.1f} | {i50:.1f} | {h10:.1f} "
              f"| {grid:,.0f} | {grid_inline:,.0f} |")


if __name__ == "__main__":
    main()
