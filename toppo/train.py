"""TOPPO / multi-task PPO trainer on Meta-World+ MT10 and MT50.

    python -m toppo.train --variant toppo --benchmark MT10 --reward-version v2 --seed 0 \
        --out-dir results/runs/paper/MT10-v2/toppo/seed0 [key=value ...]

One PPO update, top to bottom (``Trainer.train_one_update``):
  1. rollout: ``rollout_steps_per_task`` env steps per task, actions sampled from the policy;
     episodes end by time-limit truncation, whose final state is bootstrapped
     (``bootstrap_truncation``; the reference treats it as terminal);
  2. values from the critic (or the per-task linear baseline), GAE on unnormalised values;
  3. PopArt (optional): per-task target statistics updated once, critic head rescaled;
  4. ``num_epochs`` x ``num_minibatches`` minibatches (random or task-stratified),
     advantages normalised per ``adv_norm``; each side (actor, critic) gets its gradient
     -- per-task gradients combined on shared parameters with a non-``sum`` combiner --
     then its own grad-norm clip and its own Adam step;
  5. evaluation at the configured cadence; checkpoint and logs written atomically.
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from toppo import numerics, procs

if __name__ == "__main__":  # before the slow imports: SIGTERM at any point ends with one line
    procs.exit_quietly_on_sigterm("python -m toppo.train")
try:
    numerics.apply()  # before torch loads (toppo.numerics)
except numerics.NumericsError as exc:  # a bad TOPPO_NUMERICS value
    print(f"python -m toppo.train: error: {exc}", file=sys.stderr)
    sys.exit(2)

import numpy as np
import torch
import yaml

from toppo import ppo
from toppo.config import ConfigError, TrainConfig, config_from_dict, parse_value
from toppo.cores import env_worker_count, env_worker_cpus, envpool_parallel_pools, eval_worker_count
from toppo.envpool_envs import make_envpool_train_envs
from toppo.envs import make_train_envs
from toppo.envworkers import EnvWorkerError, make_worker_train_envs
from toppo.evalworker import EvalSpec, make_evaluator, snapshot_weights
from toppo.io import (
    RunLock,
    RunLocked,
    git_commit,
    package_versions,
    remove_stale_temp_files,
    save_torch_atomic,
    write_csv_atomic,
    write_json_atomic,
    write_yaml_atomic,
)
from toppo.learner import Learner, TrainingDiverged
from toppo.livelog import LiveLog
from toppo.logschema import EVAL_COLUMNS, TRAIN_METRIC_COLUMNS
from toppo.networks import policy_input
from toppo.rundir import (
    checkpoint_paths,
    completion,
    config_changed,
    finished,
    load_resume_state,
    set_aside_checkpoint,
    set_aside_run,
)
from toppo.variants import VARIANTS, resolve


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("config key 'device': cuda requested but torch sees no CUDA device")
    return torch.device(name)


class Trainer:
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
        self.envs, eval_fns = make_envs(cfg.benchmark, cfg.reward_version, cfg.seed,
                                        envs_per_task=cfg.envs_per_task,
                                        max_episode_steps=cfg.max_episode_steps)
        self.K = self.envs.num_tasks
        obs_dim, act_dim = self.envs.obs_dim, self.envs.act_dim
        # inline, or worker process(es) building their eval envs from eval_fns meanwhile
        self.evaluator = make_evaluator(EvalSpec(cfg, eval_fns, obs_dim, act_dim))
        self.eval_resubmit: list[tuple[int, dict[str, torch.Tensor]]] = []  # from a checkpoint
        self.task_of_env = torch.as_tensor(self.envs.task_ids, device=self.device)

        self.learner = Learner(cfg, obs_dim, act_dim, self.device)

        self.git_commit = git_commit()  # the code this process runs (not the one at the end)
        self.machine = numerics.describe()  # CPU, Python, torch's build and kernels, the mode
        self.update_idx = 0
        self.eval_rows: list[dict[str, Any]] = []
        self.metric_rows: list[dict[str, Any]] = []
        self.eval_env_steps = 0
        self.wall_time = 0.0
        self.last_eval_success = float("nan")
        self.budget = dict.fromkeys(BUDGET_KEYS, 0.0)  # seconds, see time_budget()
        self.live: LiveLog | None = None  # TensorBoard / W&B curves, opened by run()

    @property
    def global_step(self) -> int:
        return self.update_idx * self.cfg.steps_per_update

    # ------------------------------------------------------------------ rollout
    @torch.no_grad()
    def collect_rollout(self) -> dict[str, torch.Tensor]:
        cfg, dev, N = self.cfg, self.device, self.envs.num_envs
        actor = self.learner.actor
        value = self.learner.value if self.learner.critic is not None else None
        T = cfg.rollout_steps_per_task // cfg.envs_per_task
        task = self.task_of_env
        obs_buf = torch.zeros((T, N, self.envs.obs_dim), device=dev)
        act_buf = torch.zeros((T, N, self.envs.act_dim), device=dev)
        logp_buf, val_buf, rew_buf, next_val_buf = (torch.zeros((T, N), device=dev) for _ in range(4))
        end_buf = torch.zeros((T, N), dtype=torch.bool, device=dev)
        successes: list[float] = []

        obs = policy_input(self.envs.reset(), dev)  # torch's memory: see networks.policy_input
        for t in range(T):
            u, logp, action = actor.sample(obs, task)  # u: the Gaussian sample, pre-squash
            # the envs step (in env workers, at once) while the buffers and the critic work
            self.envs.step_async(action.cpu().numpy())
            obs_buf[t], act_buf[t], logp_buf[t] = obs, u, logp
            if value is not None:
                val_buf[t] = value(obs, task)
            step = self.envs.step_wait()  # a StepBatch (toppo.envs)
            rew_buf[t] = torch.as_tensor(step.reward, device=dev)
            ended = np.flatnonzero(step.ended)
            obs = policy_input(step.obs, dev)
            if ended.size:
                end_buf[t, ended] = True
                trunc_only = np.flatnonzero(step.truncated & ~step.terminated)
                if trunc_only.size and cfg.bootstrap_truncation:
                    # bootstrap the time limit: V(final observation of the episode); without
                    # it (the reference) the truncation counts as terminal: next value 0
                    idx = torch.as_tensor(trunc_only, device=dev)
                    fin = policy_input(step.final_obs[trunc_only], dev)
                    next_val_buf[t, idx] = value(fin, task[idx])
                successes.extend(step.final_success[ended].tolist())
        if value is not None:
            last_value = value(obs, task)
        else:  # the linear baseline, fitted per task on this rollout's whole episodes
            C, L = cfg.envs_per_task, cfg.max_episode_steps

            def episodes(x: torch.Tensor) -> torch.Tensor:  # (T, C*K, ...) -> (K, C*T/L, L, ...)
                extra = x.shape[2:]
                x = x.reshape(T, C, self.K, -1).permute(2, 1, 0, 3)  # (K, C, T, ...)
                return x.reshape(self.K, C * T // L, L, *extra)

            fitted = ppo.linear_baseline(episodes(obs_buf), episodes(rew_buf), cfg.gamma)
            val_buf = fitted.reshape(self.K, C, T).permute(2, 1, 0).reshape(T, N)
            last_value = torch.zeros(N, device=dev)
        following = torch.cat([val_buf[1:], last_value[None]], 0)  # V(s_{t+1}) within episodes
        next_val_buf = torch.where(end_buf, next_val_buf, following)
        adv, ret = ppo.gae(rew_buf, val_buf, next_val_buf, end_buf, cfg.gamma, cfg.gae_lambda)

        def per_task(x: torch.Tensor) -> torch.Tensor:  # (T, C*K, ...) -> (K, T*C, ...)
            x = x.reshape(T, cfg.envs_per_task, self.K, *x.shape[2:])
            return x.transpose(0, 2).reshape(self.K, T * cfg.envs_per_task, *x.shape[3:])

        return {"obs": per_task(obs_buf), "action": per_task(act_buf), "logp": per_task(logp_buf),
                "value": per_task(val_buf), "adv": per_task(adv), "ret": per_task(ret),
                "task": per_task(task.expand(T, N)),
                "train_success": torch.tensor(float(np.mean(successes)) if successes else float("nan"))}

    # ------------------------------------------------------------------ losses
    def train_one_update(self) -> dict[str, Any]:
        t0 = time.perf_counter()
        roll = self.collect_rollout()
        t_roll = time.perf_counter() - t0
        stats = self.learner.update(roll, self.update_idx)
        self.update_idx += 1
        return {"update": self.update_idx, "step": self.global_step,
                "env_sps": self.cfg.steps_per_update / t_roll, "rollout_time_s": t_roll,
                "update_time_s": time.perf_counter() - t0, **stats,
                "mean_train_success": float(roll["train_success"])}

    # ------------------------------------------------------------------ evaluation
    def run_evaluation(self) -> None:
        """Evaluate a frozen copy of the actor's weights at this step: at once (inline) or
        in a worker while training goes on (toppo.evalworker); results commit in step order."""
        t0 = time.perf_counter()
        self.evaluator.submit(self.global_step, snapshot_weights(self.learner.actor))
        self.budget["evaluation_s"] += time.perf_counter() - t0
        self.commit_evaluations()

    def commit_evaluations(self, wait: bool = False) -> int:
        """Append the finished evaluations to the eval rows, in step order (``wait``: all
        submitted ones); returns how many were committed."""
        t0 = time.perf_counter()
        wait0 = getattr(self.evaluator, "wait_s", 0.0)
        done = self.evaluator.collect(wait)
        for d in done:
            res = d.result
            self.eval_env_steps += res.env_steps
            for k, name in enumerate(self.envs.task_names):
                self.eval_rows.append({
                    "benchmark": self.cfg.benchmark, "reward_version": self.cfg.reward_version,
                    "variant": self.variant, "seed": self.cfg.seed, "step": d.step,
                    "task_index": k, "task": name, "success_rate": float(res.success_rate[k]),
                    "mean_return": float(res.mean_return[k]), "episodes": res.episodes})
            self.last_eval_success = float(res.success_rate.mean())
            if self.live is not None:
                self.live.log_eval(d.step, res.success_rate)
            self.budget["eval_compute_s"] += d.eval_s
        self.budget["evaluation_s"] += time.perf_counter() - t0
        self.budget["eval_wait_s"] += getattr(self.evaluator, "wait_s", 0.0) - wait0
        return len(done)

    def eval_due(self) -> bool:
        every = self.cfg.eval_every_steps
        prev = (self.update_idx - 1) * self.cfg.steps_per_update
        return self.update_idx == self.cfg.num_updates or self.global_step // every > prev // every

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        return {
            "config_hash": self.cfg.config_hash(), "update_idx": self.update_idx,
            "learner": self.learner.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "numpy_rng": np.random.get_state(), "env_state": self.envs.get_state(),
            "eval_rows": self.eval_rows, "metric_rows": self.metric_rows,
            "eval_env_steps": self.eval_env_steps, "wall_time": self.wall_time,
            "last_eval_success": self.last_eval_success,
            # evaluations submitted but not committed: redone on resume from these weights
            "eval_pending": self.evaluator.pending(), "time_budget": dict(self.budget),
        }

    def load_state_dict(self, s: dict[str, Any]) -> None:
        self.update_idx = s["update_idx"]
        self.learner.load_state_dict(s["learner"])
        torch.set_rng_state(s["torch_rng"])
        if s["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(s["cuda_rng"])
        np.random.set_state(s["numpy_rng"])
        self.envs.set_state(s["env_state"])
        self.eval_rows, self.metric_rows = s["eval_rows"], s["metric_rows"]
        self.eval_env_steps, self.wall_time = s["eval_env_steps"], s["wall_time"]
        self.last_eval_success = s["last_eval_success"]
        self.eval_resubmit = list(s.get("eval_pending", []))
        self.budget.update(s.get("time_budget", {}))

    def write_logs(self) -> None:
        write_csv_atomic(self.out / "eval.csv", self.eval_rows, EVAL_COLUMNS)
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
            "total_steps": self.cfg.total_steps, "eval_env_steps": self.eval_env_steps,
            "updates": self.update_idx, "num_updates": self.cfg.num_updates,
            "eval_episodes": self.cfg.eval_episodes,
            "eval_mode": self.cfg.eval_mode, "eval_workers": eval_worker_count(self.cfg),
            "time_budget": self.time_budget(),
            "param_count": self.learner.param_counts(),
            "started_at": started_at,
            "finished_at": datetime.now(UTC).isoformat() if status == "complete" else None,
        }

    # ------------------------------------------------------------------ main loop
    def run(self) -> None:
        """Train to the end. A resume state is loaded by main() (toppo.rundir) beforehand."""
        cfg = self.cfg
        started_at = datetime.now(UTC).isoformat()
        write_json_atomic(self.out / "manifest.json", self.manifest("running", started_at))
        last_print = 0.0
        resubmit, self.eval_resubmit = self.eval_resubmit, []
        self.live = LiveLog.start(self.out, cfg, self.variant, self.metric_rows,
                                  [step for step, _ in resubmit], self.time_budget(), log)
        t0 = time.perf_counter()
        for step, weights in resubmit:  # evaluations in flight when the run stopped: redone
            self.evaluator.submit(step, weights)
        self.budget["evaluation_s"] += time.perf_counter() - t0
        self.wall_time += time.perf_counter() - t0
        while self.update_idx < cfg.num_updates:
            t0 = time.perf_counter()
            env_s = self.envs.busy_s
            row = self.train_one_update()
            env_s = self.envs.busy_s - env_s
            self.budget["rollout_env_s"] += env_s
            self.budget["policy_inference_s"] += row["rollout_time_s"] - env_s
            self.budget["learner_s"] += row["update_time_s"] - row["rollout_time_s"]
            if self.eval_due():
                self.run_evaluation()
            else:
                self.commit_evaluations()  # whatever the workers have finished
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
        committed = self.commit_evaluations(wait=True)
        self.wall_time += time.perf_counter() - t0
        if committed:
            self.save_checkpoint()  # the final checkpoint holds every evaluation
        self.write_logs()
        write_json_atomic(self.out / "manifest.json", self.manifest("complete", started_at))
        log(f"done: {self.global_step} env steps, {self.eval_env_steps} eval env steps, "
            f"{self.wall_time:.1f} s -> {self.out} | time budget: {format_budget(self.time_budget())}")

    def save_checkpoint(self) -> None:
        t0 = time.perf_counter()
        save_torch_atomic(self.ckpt_path, self.state_dict(), previous=self.prev_path)
        self.write_logs()
        dt = time.perf_counter() - t0
        self.budget["checkpoint_s"] += dt
        self.wall_time += dt

    def time_budget(self) -> dict[str, Any]:
        """Where the run's wall time went, in seconds (summed over resumes): rollout env
        stepping, policy inference and rollout bookkeeping, learner, evaluation as the trainer
        waited for it (inline: all of it; overlap: submitting, collecting and waiting), of
        which idle waiting for eval workers, checkpointing, and the rest; plus the evaluation
        compute time wherever it ran and the part of it that overlapped training."""
        b = {k: round(v, 3) for k, v in self.budget.items()}
        parts = ("rollout_env_s", "policy_inference_s", "learner_s", "evaluation_s", "checkpoint_s")
        b["other_s"] = round(self.wall_time - sum(self.budget[k] for k in parts), 3)
        overlapped = (self.budget["eval_compute_s"] - self.budget["eval_wait_s"]
                      if self.cfg.eval_mode == "overlap" else 0.0)
        b["eval_overlapped_s"] = round(max(overlapped, 0.0), 3)
        b["wall_s"] = round(self.wall_time, 3)
        return b

    def print_progress(self, row: dict[str, Any]) -> None:
        cfg = self.cfg
        done = self.update_idx / cfg.num_updates
        rate = self.global_step / max(self.wall_time, 1e-9)
        eta = (cfg.num_updates * cfg.steps_per_update - self.global_step) / max(rate, 1e-9)
        log(f"update {self.update_idx}/{cfg.num_updates} | step {self.global_step:,}/{cfg.total_steps:,} "
            f"({100 * done:.1f}%) | {row['env_sps']:.0f} env steps/s in rollout, {rate:.0f} overall | "
            f"last eval success {self.last_eval_success:.3f} | elapsed {fmt_time(self.wall_time)} | "
            f"ETA {fmt_time(eta)}")

    def close(self) -> None:
        self.envs.close()
        self.evaluator.close()
        if self.live is not None:
            self.live.close()


BUDGET_KEYS = ("rollout_env_s", "policy_inference_s", "learner_s", "evaluation_s", "eval_wait_s",
               "checkpoint_s", "eval_compute_s")


def format_budget(b: dict[str, float]) -> str:
    wall = max(b["wall_s"], 1e-9)
    pct = lambda k: f"{b[k]:.1f} s ({100 * b[k] / wall:.0f}%)"  # noqa: E731
    return (f"rollout env {pct('rollout_env_s')}, policy inference {pct('policy_inference_s')}, "
            f"learner {pct('learner_s')}, evaluation {pct('evaluation_s')} "
            f"(idle waiting {b['eval_wait_s']:.1f} s), checkpointing {pct('checkpoint_s')}, "
            f"other {pct('other_s')}; evaluation compute {b['eval_compute_s']:.1f} s, "
            f"{b['eval_overlapped_s']:.1f} s of it overlapped with training")


def fmt_time(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def log(msg: str) -> None:
    print(f"[toppo {datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m toppo.train",
        description="Train TOPPO or one of its ablations on Meta-World+ MT10/MT50. "
                    "Rerunning the same command resumes from the run directory's checkpoint.",
        epilog="Any TrainConfig field can be overridden as key=value, e.g. "
               "rollout_steps_per_task=1000 hidden_sizes=64,64 critic_combiner=cagrad cagrad_c=0.5. "
               f"Variants: {', '.join(VARIANTS)}.")
    p.add_argument("--variant", default="toppo", help="named variant (see --list-variants)")
    p.add_argument("--benchmark", choices=["MT10", "MT50"], help="benchmark (variant default: MT10)")
    p.add_argument("--reward-version", choices=["v1", "v2"], help="metaworld reward function version")
    p.add_argument("--seed", type=int, help="seed for torch, numpy, envs and the benchmark's goals")
    p.add_argument("--total-steps", type=float, help="training env steps summed over tasks")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="auto picks cuda when available")
    p.add_argument("--out-dir", type=Path, help="run directory (created; resumed if it has a checkpoint)")
    p.add_argument("--list-variants", action="store_true", help="print the variants and exit")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument("--retrain", action="store_true",
                   help="a finished run of this config is set aside (superseded/) and trained "
                        "again from scratch; an unfinished one is resumed")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config field overrides")
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    overrides: dict[str, Any] = {}
    for item in args.overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        if key in overrides:
            raise ConfigError(f"config key '{key}' is given twice")
        overrides[key] = parse_value(key, raw)
    flags = {"benchmark": args.benchmark, "reward_version": args.reward_version, "seed": args.seed,
             "total_steps": args.total_steps, "device": args.device}
    for key, value in flags.items():
        if value is None:
            continue
        if key in overrides:
            raise ConfigError(f"config key '{key}' is given both as a flag and as {key}=...")
        if key == "total_steps":
            if not math.isfinite(value) or value != int(value):
                raise ConfigError(f"config key 'total_steps': not a whole number ({value})")
            value = int(value)
        overrides[key] = value
    return resolve(args.variant, overrides)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list_variants:
        for name, ov in VARIANTS.items():
            print(f"{name:28s} {ov}")
        return 0
    try:
        cfg = config_from_args(args)
    except ConfigError as exc:
        parser.error(str(exc))
    if args.print_config:
        print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
        return 0
    if args.out_dir is None:
        parser.error("--out-dir is required")
    try:
        return train_in(args.out_dir, cfg, args.variant, retrain=args.retrain)
    # one clean line each: another trainer holds the directory; a read-only folder or a
    # full disk (the message names the path); a config error found only on this machine,
    # e.g. device=cuda without a GPU
    # an env worker that died or failed: one line naming it and its tasks (the run resumes
    # from its checkpoint when started again)
    except (RunLocked, OSError, ConfigError, EnvWorkerError) as exc:
        print(f"python -m toppo.train: error: {exc}", file=sys.stderr, flush=True)
        return EXIT_LOCKED if isinstance(exc, RunLocked) else 2 if isinstance(exc, ConfigError) else 1


EXIT_LOCKED = 75  # EX_TEMPFAIL: another trainer holds the run directory


def train_in(out: Path, cfg: TrainConfig, variant: str, retrain: bool = False) -> int:
    """Train ``cfg`` in run directory ``out`` under its lock (docs/design.md, guarantees)."""
    out.mkdir(parents=True, exist_ok=True)
    with RunLock(out):
        for tmp in remove_stale_temp_files(out):
            log(f"removed {tmp}, left by a write that was interrupted")
        device = resolve_device(cfg.device)
        done = completion(out, cfg, map_location=device)
        if retrain and finished(out, cfg, map_location=device):
            where = set_aside_run(out, cfg.config_hash(), "retrain")
            log(f"retrain: moved the finished run (config, manifest, logs, checkpoints) to {where}")
        elif done.complete:
            log(f"{out} is complete for this config ({done.reason}); nothing to do")
            return 0
        elif (out / "manifest.json").exists():
            log(f"{out} is not complete: {done.reason}")
        old = config_changed(out, cfg)
        if old is not None:
            where = set_aside_run(out, old)
            log(f"{out} held a run of config {old}, not {cfg.config_hash()}; "
                f"set aside (logs and checkpoints) in {where}")
        state = load_resume_state(out, cfg, log, map_location=device)
        write_yaml_atomic(out / "config.yaml", cfg.to_dict())
        log(f"variant {variant} | {cfg.benchmark} {cfg.reward_version} | seed {cfg.seed} | "
            f"{cfg.total_steps:,} steps in {cfg.num_updates} updates | config {cfg.config_hash()}")
        trainer, state = build_and_resume(out, cfg, variant, state, device)
        try:
            trainer.run()
        except TrainingDiverged as exc:
            log(f"error: {exc}")
            return 3
        finally:
            trainer.close()
    return 0


def build_and_resume(out: Path, cfg: TrainConfig, variant: str, state: dict[str, Any] | None,
                     device: torch.device) -> tuple[Trainer, dict[str, Any] | None]:
    """A Trainer with ``state`` loaded. A checkpoint that reads but does not fit the networks
    (e.g. written by other code for the same config) is named and set aside, and the next
    candidate (previous.pt, else from scratch) is used, in a freshly built Trainer."""
    while True:
        t0 = time.perf_counter()
        trainer = Trainer(cfg, out, variant)
        counts = trainer.learner.param_counts()
        log(f"built envs in {time.perf_counter() - t0:.1f} s on device {trainer.device}; "
            f"parameters: actor {counts['actor']:,}, critic {counts['critic']:,}, "
            f"total {counts['total']:,}")
        if state is None:
            return trainer, None
        try:
            trainer.load_state_dict(state)
        except (KeyError, RuntimeError, ValueError, TypeError, IndexError) as exc:
            trainer.close()
            moved = set_aside_checkpoint(Path(state["loaded_from"]))
            detail = (str(exc).splitlines() or [""])[0][:300]
            log(f"error: {state['loaded_from']}: does not fit this trainer "
                f"({type(exc).__name__}: {detail}); set aside as {moved}")
            state = load_resume_state(out, cfg, log, map_location=device)
            continue
        log(f"resumed from {state['loaded_from']} at update {trainer.update_idx}/"
            f"{cfg.num_updates}")
        return trainer, state


def load_config(run_dir: Path) -> TrainConfig:
    """The resolved config of a run directory."""
    return config_from_dict(yaml.safe_load((Path(run_dir) / "config.yaml").read_text()))


if __name__ == "__main__":
    sys.exit(main())
