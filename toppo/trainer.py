"""The training loop: one run of a config, update after update, with its evaluations,
checkpoints and logs (``Trainer``). The run directory it trains in is set up, locked and
resumed by ``toppo.train``, the command line.

One PPO update, top to bottom (``Trainer.train_one_update``); read the modules in this order:
  1. toppo/algo/rollout.py: ``rollout_steps_per_task`` env steps per task, actions sampled
     from the policy (toppo/algo/networks.py); episodes end by time-limit truncation, whose
     final state is bootstrapped (``bootstrap_truncation``; the reference treats it as
     terminal); values from the critic (or the per-task linear baseline), GAE on
     unnormalised values (toppo/algo/ppo.py);
  2. toppo/algo/learner.py: PopArt (optional, toppo/algo/popart.py): per-task target
     statistics updated once, critic head rescaled; ``num_epochs`` x ``num_minibatches``
     minibatches (random or task-stratified), advantages normalised per ``adv_norm``; each
     side (actor, critic) gets its gradient -- per-task gradients (toppo/algo/pertask.py)
     combined on shared parameters with a non-``sum`` combiner (toppo/algo/combiners.py) --
     then its own grad-norm clip and Adam step;
  3. evaluation at the configured cadence (toppo/algo/evaluation.py); checkpoint and logs
     written atomically. Everything that keeps the run (run directory, lock, checkpoints, env
     and evaluation workers, process lifetime, time budget) is toppo/harness/.
"""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from toppo.harness import numerics

numerics.apply()  # before torch loads: python -m toppo.train applied its --numerics already

import numpy as np
import torch

from toppo.algo import rollout
from toppo.algo.compiled_models import compile_once
from toppo.algo.envpool_envs import make_envpool_train_envs
from toppo.algo.envs import make_train_envs
from toppo.algo.learner import Learner
from toppo.harness.envworkers import make_worker_train_envs
from toppo.harness.evalrecord import EvalRecord
from toppo.harness.evalworker import EvalSpec, make_evaluator, snapshot_weights
from toppo.harness.io import git_commit, package_versions, save_torch_atomic
from toppo.harness.livelog import LiveLog
from toppo.harness.rundir import checkpoint_paths
from toppo.harness.timebudget import TimeBudget, fmt_time, format_budget
from toppo.specs.config import ConfigError, TrainConfig
from toppo.specs.cores import (
    env_worker_count,
    env_worker_cpus,
    envpool_parallel_pools,
    eval_worker_count,
)
from toppo.specs.logschema import EVAL_COLUMNS, TRAIN_METRIC_COLUMNS
from toppo.specs.runfiles import write_csv_atomic, write_json_atomic


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("config key 'device': cuda requested but torch sees no CUDA device")
    return torch.device(name)


class Trainer:
    """One run: the algorithm's parts (envs, toppo.algo.rollout, toppo.algo.learner) in a
    loop, and the harness's (evaluations, checkpoints, logs, time budget, live curves) around
    it."""

    def __init__(self, cfg: TrainConfig, out_dir: Path, variant: str = "custom"):
        self.cfg, self.variant, self.out = cfg, variant, Path(out_dir)
        self.ckpt_path, self.prev_path = checkpoint_paths(self.out)  # latest.pt, previous.pt
        self.device = resolve_device(cfg.device)
        numerics.configure_torch(cfg.torch_threads)
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)

        self.env_workers = env_worker_count(cfg)  # 0 with env_backend=envpool (its own threads)
        self.env_worker_cpus = env_worker_cpus(cfg) if self.env_workers else None
        make_envs = (functools.partial(make_envpool_train_envs,
                                       parallel_pools=envpool_parallel_pools(cfg))
                     if cfg.env_backend == "envpool" else
                     functools.partial(make_worker_train_envs, workers=self.env_workers,
                                       cpus=self.env_worker_cpus)
                     if self.env_workers else
                     functools.partial(make_train_envs, async_envs=cfg.async_envs))
        with compile_once():  # each task's model compiled once, for training and inline evaluation
            self.envs, eval_fns = make_envs(cfg.benchmark, cfg.reward_version, cfg.seed,
                                            envs_per_task=cfg.envs_per_task,
                                            max_episode_steps=cfg.max_episode_steps)
            self.K = self.envs.num_tasks
            obs_dim, act_dim = self.envs.obs_dim, self.envs.act_dim
            self.task_of_env = torch.as_tensor(self.envs.task_ids, device=self.device)
            self.learner = Learner(cfg, obs_dim, act_dim, self.device)

            self.budget = TimeBudget()  # seconds, see toppo.harness.timebudget
            # inline, or worker process(es) building their eval envs from eval_fns meanwhile
            self.evals = EvalRecord(make_evaluator(EvalSpec(cfg, eval_fns, obs_dim, act_dim)), cfg,
                                    variant, self.envs.task_names, self.budget)
        self.eval_resubmit: list[tuple[int, dict[str, torch.Tensor]]] = []  # from a checkpoint
        self.git_commit = git_commit()  # the code this process runs (not the one at the end)
        self.machine = numerics.describe()  # CPU, Python, torch's build and kernels, the mode
        self.update_idx = 0
        self.metric_rows: list[dict[str, Any]] = []
        self.wall_time = 0.0
        self.live: LiveLog | None = None  # TensorBoard / W&B curves, opened by run()

    @property
    def global_step(self) -> int:
        return self.update_idx * self.cfg.steps_per_update

    # ------------------------------------------------------------------ the algorithm
    def collect_rollout(self) -> dict[str, torch.Tensor]:
        return rollout.collect(self.envs, self.learner, self.cfg, self.task_of_env, self.device)

    def train_one_update(self) -> dict[str, Any]:
        """Rollout and GAE (toppo.algo.rollout), then the PPO epochs (toppo.algo.learner)."""
        t0 = time.perf_counter()
        roll = self.collect_rollout()
        t_roll = time.perf_counter() - t0
        stats = self.learner.update(roll, self.update_idx)
        self.update_idx += 1
        return {"update": self.update_idx, "step": self.global_step,
                "env_sps": self.cfg.steps_per_update / t_roll, "rollout_time_s": t_roll,
                "update_time_s": time.perf_counter() - t0, **stats,
                "mean_train_success": float(roll["train_success"])}

    def eval_due(self) -> bool:
        return self.cfg.eval_due(self.update_idx)

    # ------------------------------------------------------------------ main loop
    def run(self) -> None:
        """Train to the end. A resume state is loaded beforehand (toppo.train.train_in)."""
        cfg = self.cfg
        started_at = datetime.now(UTC).isoformat()
        write_json_atomic(self.out / "manifest.json", self.manifest("running", started_at))
        last_print = 0.0
        resubmit, self.eval_resubmit = self.eval_resubmit, []
        self.live = self.evals.live = LiveLog.start(
            self.out, cfg, self.variant, self.metric_rows, [step for step, _ in resubmit],
            self.time_budget(), log)
        t0 = time.perf_counter()
        for step, weights in resubmit:  # evaluations in flight when the run stopped: redone
            self.evals.submit(step, weights)
        self.wall_time += time.perf_counter() - t0
        while self.update_idx < cfg.num_updates:
            t0 = time.perf_counter()
            env_s = self.envs.busy_s
            row = self.train_one_update()
            env_s = self.envs.busy_s - env_s
            self.budget["rollout_env_s"] += env_s
            self.budget["policy_inference_s"] += row["rollout_time_s"] - env_s
            self.budget["learner_s"] += row["update_time_s"] - row["rollout_time_s"]
            if self.eval_due():  # a frozen copy of the actor's weights at this step
                self.evals.submit(self.global_step, snapshot_weights(self.learner.actor))
            self.evals.commit()  # whatever has finished, in step order
            self.wall_time += time.perf_counter() - t0
            row["wall_time_s"] = self.wall_time
            self.metric_rows.append(row)
            self.live.log_update(row, self.time_budget())
            if self.update_idx % cfg.checkpoint_every_updates == 0 or self.update_idx == cfg.num_updates:
                self.save_checkpoint()
            if time.perf_counter() - last_print >= cfg.progress_every_s or self.update_idx == cfg.num_updates:
                last_print = time.perf_counter()
                self.print_progress(row)
        # the run is complete only once every evaluation (the final one included) is in eval.csv
        t0 = time.perf_counter()
        committed = self.evals.commit(wait=True)
        self.wall_time += time.perf_counter() - t0
        if committed:
            self.save_checkpoint()  # the final checkpoint holds every evaluation
        self.write_logs()
        write_json_atomic(self.out / "manifest.json", self.manifest("complete", started_at))
        log(f"done: {self.global_step} env steps, {self.evals.env_steps} eval env steps, "
            f"{self.wall_time:.1f} s -> {self.out} | time budget: {format_budget(self.time_budget())}")

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        return {
            "config_hash": self.cfg.config_hash(), "update_idx": self.update_idx,
            "learner": self.learner.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "numpy_rng": np.random.get_state(), "env_state": self.envs.get_state(),
            "eval_rows": self.evals.rows, "metric_rows": self.metric_rows,
            "eval_env_steps": self.evals.env_steps, "wall_time": self.wall_time,
            "last_eval_success": self.evals.last_success,
            # evaluations submitted but not committed: redone on resume from these weights
            "eval_pending": self.evals.pending(), "time_budget": dict(self.budget),
        }

    def load_state_dict(self, s: dict[str, Any]) -> None:
        self.update_idx = s["update_idx"]
        self.learner.load_state_dict(s["learner"])
        torch.set_rng_state(s["torch_rng"])
        if s["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(s["cuda_rng"])
        np.random.set_state(s["numpy_rng"])
        self.envs.set_state(s["env_state"])
        self.evals.rows, self.metric_rows = s["eval_rows"], s["metric_rows"]
        self.evals.env_steps, self.wall_time = s["eval_env_steps"], s["wall_time"]
        self.evals.last_success = s["last_eval_success"]
        self.eval_resubmit = list(s.get("eval_pending", []))
        self.budget.update(s.get("time_budget", {}))

    def save_checkpoint(self) -> None:
        t0 = time.perf_counter()
        save_torch_atomic(self.ckpt_path, self.state_dict(), previous=self.prev_path)
        self.write_logs()
        dt = time.perf_counter() - t0
        self.budget["checkpoint_s"] += dt
        self.wall_time += dt

    def write_logs(self) -> None:
        write_csv_atomic(self.out / "eval.csv", self.evals.rows, EVAL_COLUMNS)
        extra = sorted({k for r in self.metric_rows for k in r} - set(TRAIN_METRIC_COLUMNS),
                       key=lambda k: (len(k), k))
        write_csv_atomic(self.out / "train_metrics.csv", self.metric_rows, TRAIN_METRIC_COLUMNS + extra)

    def manifest(self, status: str, started_at: str) -> dict[str, Any]:
        return {
            "status": status, "variant": self.variant, "benchmark": self.cfg.benchmark,
            "reward_version": self.cfg.reward_version, "seed": self.cfg.seed,
            "config_hash": self.cfg.config_hash(), "git_commit": self.git_commit,
            "env_backend": self.cfg.env_backend,  # training envs; evaluation: metaworld
            "packages": package_versions(("envpool",) if self.cfg.env_backend == "envpool" else ()),
            "device": str(self.device)
            + (f" ({torch.cuda.get_device_name(self.device)})" if self.device.type == "cuda" else ""),
            "torch_threads": torch.get_num_threads(), "env_workers": self.env_workers,
            "env_worker_cpus": self.env_worker_cpus,
            "cores": self.cfg.cores or None, "machine": self.machine,
            "wall_time_s": round(self.wall_time, 3), "env_steps": self.global_step,
            "total_steps": self.cfg.total_steps, "eval_env_steps": self.evals.env_steps,
            "updates": self.update_idx, "num_updates": self.cfg.num_updates,
            "eval_episodes": self.cfg.eval_episodes,
            "eval_mode": self.cfg.eval_mode, "eval_workers": eval_worker_count(self.cfg),
            "time_budget": self.time_budget(),
            "param_count": self.learner.param_counts(),
            "started_at": started_at,
            "finished_at": datetime.now(UTC).isoformat() if status == "complete" else None,
        }

    # ------------------------------------------------------------------ reporting
    def time_budget(self) -> dict[str, Any]:
        return self.budget.report(self.wall_time, self.cfg.eval_mode)

    def print_progress(self, row: dict[str, Any]) -> None:
        cfg = self.cfg
        done = self.update_idx / cfg.num_updates
        rate = self.global_step / max(self.wall_time, 1e-9)
        eta = (cfg.num_updates * cfg.steps_per_update - self.global_step) / max(rate, 1e-9)
        log(f"update {self.update_idx}/{cfg.num_updates} | step {self.global_step:,}/{cfg.total_steps:,} "
            f"({100 * done:.1f}%) | {row['env_sps']:.0f} env steps/s in rollout, {rate:.0f} overall | "
            f"last eval success {self.evals.last_success:.3f} | elapsed {fmt_time(self.wall_time)} | "
            f"ETA {fmt_time(eta)}")

    def close(self) -> None:
        self.envs.close()
        self.evals.close()
        if self.live is not None:
            self.live.close()


def log(msg: str) -> None:
    print(f"[toppo {datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)
