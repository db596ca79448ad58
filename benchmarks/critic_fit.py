"""The critic's fit after one PPO update, on one real rollout.

    python benchmarks/critic_fit.py --variant mtppo --benchmark MT10 --reward-version v2 \
        --seed 0 [key=value ...]

Collects one rollout (``rollout_steps_per_task`` per task) with the variant's initial
policy, then runs one update (``num_epochs`` x ``num_minibatches``) and prints, as JSON,
the mean |V(s) - R| and the explained variance of the critic over the *whole* rollout
before and after it (R: the GAE returns the update regresses on, unnormalised units),
with the time each part took. It only uses the trainer's public entry points
(``toppo.specs.variants.resolve``, ``toppo.trainer.Trainer``, ``Learner.update``/``value``), so
the same file measures an older checkout of the package: put that checkout first on
``PYTHONPATH`` (``docs/fidelity.md`` shows the before/after this way).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from toppo.specs.config import parse_value
from toppo.specs.variants import resolve
from toppo.trainer import Trainer


@torch.no_grad()
def fit(learner, roll: dict[str, torch.Tensor], chunk: int = 20_000) -> dict[str, float]:
    obs, task, ret = roll["obs"].flatten(0, 1), roll["task"].flatten(0, 1), roll["ret"].flatten(0, 1)
    v = torch.cat([learner.value(obs[i:i + chunk], task[i:i + chunk]) for i in range(0, len(obs), chunk)])
    err = v - ret
    return {"mean_abs_err": float(err.abs().mean()),
            "explained_variance": float(1 - err.var(correction=0) / ret.var(correction=0)),
            "mean_abs_return": float(ret.abs().mean())}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variant", default="mtppo")
    p.add_argument("--benchmark", default="MT10")
    p.add_argument("--reward-version", default="v2")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("overrides", nargs="*", metavar="key=value")
    args = p.parse_args()
    overrides = {"benchmark": args.benchmark, "reward_version": args.reward_version,
                 "seed": args.seed, "device": "cpu", "torch_threads": 1}
    for item in args.overrides:
        key, _, raw = item.partition("=")
        overrides[key] = parse_value(key, raw)
    cfg = resolve(args.variant, overrides)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp), args.variant)
        t0 = time.perf_counter()
        roll = trainer.collect_rollout()
        t1 = time.perf_counter()
        before = fit(trainer.learner, roll)
        stats = trainer.learner.update(roll, 0)
        t2 = time.perf_counter()
        after = fit(trainer.learner, roll)
        trainer.close()
    print(json.dumps({
        "variant": args.variant, "benchmark": cfg.benchmark, "reward_version": cfg.reward_version,
        "seed": cfg.seed, "config_hash": cfg.config_hash(), "torch": torch.__version__,
        "rollout_env_steps": cfg.steps_per_update, "epochs": cfg.num_epochs,
        "minibatches": cfg.num_minibatches, "before": before, "after": after,
        "rollout_s": round(t1 - t0, 1), "update_s": round(t2 - t1, 1),
        "diagnostics_s": round(stats.get("diagnostics_time_s", 0.0), 2),
        "learn_s": round(stats["learn_time_s"], 1),
    }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
