"""A run's evaluations as the trainer keeps them: submitted to the evaluator (inline, or
worker processes while training goes on: toppo.harness.evalworker) and committed to the
eval.csv rows in step order, with the time they cost the trainer."""

from __future__ import annotations

import time
from typing import Any

import torch

from toppo.harness.livelog import LiveLog
from toppo.harness.timebudget import TimeBudget
from toppo.specs.config import TrainConfig


class EvalRecord:
    """The eval.csv rows of a run and the evaluations still in flight."""

    def __init__(self, evaluator, cfg: TrainConfig, variant: str, task_names: list[str],
                 budget: TimeBudget):
        self.evaluator, self.cfg, self.variant = evaluator, cfg, variant
        self.task_names, self.budget = task_names, budget
        self.rows: list[dict[str, Any]] = []
        self.env_steps = 0  # evaluation env steps, summed over evaluations
        self.last_success = float("nan")  # mean success of the last committed evaluation
        self.live: LiveLog | None = None  # TensorBoard / W&B curves, set by the trainer's run()

    def submit(self, step: int, weights: dict[str, torch.Tensor]) -> None:
        """Evaluate ``weights`` (a frozen copy of the actor's) as of training step ``step``."""
        t0 = time.perf_counter()
        self.evaluator.submit(step, weights)
        self.budget["evaluation_s"] += time.perf_counter() - t0

    def commit(self, wait: bool = False) -> int:
        """Append the finished evaluations to the rows, in step order (``wait``: all
        submitted ones); returns how many were committed."""
        t0 = time.perf_counter()
        wait0 = getattr(self.evaluator, "wait_s", 0.0)
        done = self.evaluator.collect(wait)
        for d in done:
            res = d.result
            self.env_steps += res.env_steps
            for k, name in enumerate(self.task_names):
                self.rows.append({
                    "benchmark": self.cfg.benchmark, "reward_version": self.cfg.reward_version,
                    "variant": self.variant, "seed": self.cfg.seed, "step": d.step,
                    "task_index": k, "task": name, "success_rate": float(res.success_rate[k]),
                    "mean_return": float(res.mean_return[k]), "episodes": res.episodes})
            self.last_success = float(res.success_rate.mean())
            if self.live is not None:
                self.live.log_eval(d.step, res.success_rate)
            self.budget["eval_compute_s"] += d.eval_s
        self.budget["evaluation_s"] += time.perf_counter() - t0
        self.budget["eval_wait_s"] += getattr(self.evaluator, "wait_s", 0.0) - wait0
        return len(done)

    def pending(self) -> list[tuple[int, dict[str, torch.Tensor]]]:
        """Evaluations submitted, not committed: (step, weights), redone on resume."""
        return self.evaluator.pending()

    def close(self) -> None:
        self.evaluator.close()
