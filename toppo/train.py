"""TOPPO / multi-task PPO trainer on Meta-World+ MT10 and MT50.

    python -m toppo.train --variant toppo --benchmark MT10 --reward-version v2 --seed 0 \
        --out-dir results/runs/paper/MT10-v2/toppo/seed0 [key=value ...]
    python -m toppo.train --config cell.yaml --variant toppo --out-dir DIR [key=value ...]

The workflow runs the second form: each cell's resolved config, written once as a file
(workflow/scripts/train_cell.py); a run directory's own config.yaml is such a file too.
``--numerics portable|native`` picks the CPU kernels (toppo.harness.numerics: the flag, else
``TOPPO_NUMERICS``, else native); the workflow passes its config's ``numerics`` key.

One PPO update, top to bottom (``Trainer.train_one_update``); read the modules in this order:
  1. toppo/algo/rollout.py: ``rollout_steps_per_task`` env steps per task, actions sampled from the
     policy (toppo/algo/networks.py); episodes end by time-limit truncation, whose final state is
     bootstrapped (``bootstrap_truncation``; the reference treats it as terminal); values from
     the critic (or the per-task linear baseline), GAE on unnormalised values (toppo/algo/ppo.py);
  2. toppo/algo/learner.py: PopArt (optional, toppo/algo/popart.py): per-task target statistics updated
     once, critic head rescaled; ``num_epochs`` x ``num_minibatches`` minibatches (random or
     task-stratified), advantages normalised per ``adv_norm``; each side (actor, critic) gets
     its gradient -- per-task gradients (toppo/algo/pertask.py) combined on shared parameters with
     a non-``sum`` combiner (toppo/algo/combiners.py) -- then its own grad-norm clip and Adam step;
  3. evaluation at the configured cadence (toppo/algo/evaluation.py); checkpoint and logs written
     atomically. Everything that keeps the run (run directory, lock, atomic files, env and
     evaluation workers, process lifetime, time budget) is toppo/harness/.
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

from toppo.harness import numerics, procs
from toppo.spec import numerics_mode

if __name__ == "__main__":  # before the slow imports: SIGTERM at any point ends with one line
    procs.exit_quietly_on_sigterm("python -m toppo.train")
try:  # before torch loads (toppo.harness.numerics); run as a program, its --numerics flag decides
    numerics.apply(numerics_mode.requested(sys.argv[1:]) if __name__ == "__main__" else None)
except numerics_mode.NumericsError as exc:  # a bad --numerics or TOPPO_NUMERICS value
    print(f"python -m toppo.train: error: {exc}", file=sys.stderr)
    sys.exit(2)

import numpy as np
import torch
import yaml

from toppo.algo import rollout
from toppo.algo.envpool_envs import make_envpool_train_envs
from toppo.algo.envs import make_train_envs
from toppo.algo.learner import Learner, TrainingDiverged
from toppo.harness.envworkers import EnvWorkerError, make_worker_train_envs
from toppo.harness.evalrecord import EvalRecord
from toppo.harness.evalworker import EvalSpec, make_evaluator, snapshot_weights
from toppo.harness.io import (
    RunLock,
    RunLocked,
    git_commit,
    package_versions,
    remove_stale_temp_files,
    save_torch_atomic,
)
from toppo.harness.livelog import LiveLog
from toppo.harness.rundir import (
    checkpoint_paths,
    completion,
    config_changed,
    finished,
    load_resume_state,
    set_aside_checkpoint,
    set_aside_run,
)
from toppo.harness.timebudget import TimeBudget, fmt_time, format_budget
from toppo.spec.config import (
    DEVICES,
    ConfigError,
    TrainConfig,
    config_from_dict,
    make_config,
    parse_value,
)
from toppo.spec.cores import (
    env_worker_count,
    env_worker_cpus,
    envpool_parallel_pools,
    eval_worker_count,
)
from toppo.spec.logschema import EVAL_COLUMNS, TRAIN_METRIC_COLUMNS
from toppo.spec.registry import BENCHMARKS, REWARD_VERSIONS, VARIANTS
from toppo.spec.runfiles import write_csv_atomic, write_json_atomic, write_yaml_atomic
from toppo.spec.variants import resolve


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("config key 'device': cuda requested but torch sees no CUDA device")
    return torch.device(name)


class Trainer:
    """One run: the algorithm's parts (envs, toppo.algo.rollout, toppo.algo.learner) in a loop, and the
    harness's (evaluations, checkpoints, logs, time budget, live curves) around it."""

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
        """Train to the end. A resume state is loaded by main() (toppo.harness.rundir) beforehand."""
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


# ---------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m toppo.train",
        description="Train TOPPO or one of its ablations on Meta-World+ MT10/MT50. "
                    "Rerunning the same command resumes from the run directory's checkpoint.",
        epilog="Any TrainConfig field can be overridden as key=value, e.g. "
               "rollout_steps_per_task=1000 hidden_sizes=64,64 critic_combiner=cagrad cagrad_c=0.5. "
               f"Variants: {', '.join(VARIANTS)}.")
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="a resolved config (every field, as a run's config.yaml; the workflow "
                        "writes one per cell) instead of a variant's; flags and key=value "
                        "override it, --variant only names the run (default: custom)")
    p.add_argument("--variant", help="named variant (see --list-variants; default: toppo)")
    p.add_argument("--benchmark", choices=list(BENCHMARKS), help="benchmark (variant default: MT10)")
    p.add_argument("--reward-version", choices=REWARD_VERSIONS, help="metaworld reward function version")
    p.add_argument("--seed", type=int, help="seed for torch, numpy, envs and the benchmark's goals")
    p.add_argument("--total-steps", type=float, help="training env steps summed over tasks")
    p.add_argument("--device", choices=DEVICES, help="auto picks cuda when available")
    p.add_argument(numerics_mode.FLAG, choices=numerics_mode.MODES,
                   help="CPU kernels: portable gives the same bits on x86-64 CPUs with AVX2 and "
                        "FMA, at a cost per update; native lets torch pick them for this CPU "
                        f"(default: {numerics_mode.MODE_VAR}, else {numerics_mode.DEFAULT_MODE}; "
                        "docs/reproducibility.md). Not part of the config hash")
    p.add_argument("--out-dir", type=Path, help="run directory (created; resumed if it has a checkpoint)")
    p.add_argument("--list-variants", action="store_true", help="print the variants and exit")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument("--retrain", action="store_true",
                   help="a finished run of this config is set aside (superseded/) and trained "
                        "again from scratch; an unfinished one is resumed")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config field overrides")
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The run's config: the ``--config`` file's or the variant's (``--variant``), with the
    flags and ``key=value`` overrides on top."""
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
    if args.config is not None:
        base = config_from_file(args.config)
        return make_config(base.to_dict(), **overrides) if overrides else base
    return resolve(variant_name(args), overrides)


def variant_name(args: argparse.Namespace) -> str:
    """The name the run's logs record: ``--variant``; without it the variant trained
    (toppo), or ``custom`` for a ``--config`` file."""
    return args.variant or ("custom" if args.config is not None else "toppo")


def config_from_file(path: Path) -> TrainConfig:
    """A resolved config file (every field; ConfigError naming the file otherwise)."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"--config {path}: cannot read it ({exc})") from None
    try:
        return config_from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"--config {path}: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:  # run as a program, applied with this flag already; in a process, it must agree
        numerics.apply(args.numerics)
    except numerics_mode.NumericsError as exc:
        parser.error(str(exc))
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
        return train_in(args.out_dir, cfg, variant_name(args), retrain=args.retrain)
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
            f"{cfg.total_steps:,} steps in {cfg.num_updates} updates | config {cfg.config_hash()} | "
            f"numerics {numerics.current()}")
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
