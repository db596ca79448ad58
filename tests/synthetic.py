"""Synthetic run directories in exactly the docs/design.md format, for tests and benchmarks.

    write_run(root / "MT10-v1/toppo/seed0", variant="toppo", benchmark="MT10",
              reward_version="v1", seed=0, success=np.full((3, 10), 0.5))   # known answers
    write_suite(tmp, scale="synthetic", groups=[("MT50", "v1", ["toppo", "mtppo"])],
                seeds=range(10), n_evals=100)                              # realistic-looking

``success`` is (evaluations, tasks) in [0, 1]; when omitted, :func:`synthetic_success` draws
learning curves whose final level depends on the variant, the task and the seed.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from toppo.specs.logschema import EVAL_COLUMNS, TRAIN_METRIC_COLUMNS
from toppo.specs.registry import BENCHMARKS
from toppo.specs.runfiles import write_text_atomic

# Final-success offsets (logits) of the synthetic learners; unknown variants get a hashed offset.
_VARIANT_SKILL = {"mtppo": 0.0, "mtppo_lnc": 0.4, "mtppo_lnc_pcga": 0.7,
                  "mtppo_lnc_pcga_fgc": 1.0, "toppo": 1.3}


def task_names(num_tasks: int, benchmark: str | None = None) -> list[str]:
    """The first ``num_tasks`` task names of ``benchmark`` in env order (analysis.logs checks
    them), or placeholders ``task00-v3``, ... for an unknown benchmark."""
    known = BENCHMARKS.get(benchmark or "", ())
    if num_tasks <= len(known):
        return list(known[:num_tasks])
    return [f"task{i:02d}-v3" for i in range(num_tasks)]


def run_dir_for(root: str | Path, scale: str, benchmark: str, reward_version: str, variant: str, seed: int) -> Path:
    """``{root}/{scale}/{benchmark}-{reward_version}/{variant}/seed{seed}`` (design.md layout)."""
    return Path(root) / scale / f"{benchmark}-{reward_version}" / variant / f"seed{seed}"


def _key(*parts: object) -> int:
    return zlib.crc32("/".join(map(str, parts)).encode())


def variant_skill(variant: str) -> float:
    return _VARIANT_SKILL.get(variant, (_key(variant) % 1000) / 1000 * 1.2)


def synthetic_success(variant: str, benchmark: str, seed: int, n_evals: int, num_tasks: int,
                      episodes: int = 50, reward_version: str = "v2") -> np.ndarray:
    """(evals, tasks) success rates: saturating learning curves, binomial evaluation noise.

    Task difficulty is shared by every variant and seed of a benchmark; the variant sets the
    overall level; the seed adds per-task noise. Rates are multiples of 1/episodes.
    """
    task_rng = np.random.default_rng(_key("tasks", benchmark))
    difficulty = task_rng.normal(0.0, 1.5, num_tasks) + 0.5
    rng = np.random.default_rng(_key(variant, benchmark, reward_version, seed))
    logit = variant_skill(variant) + difficulty + rng.normal(0.0, 0.5, num_tasks)
    final = 1.0 / (1.0 + np.exp(-logit))
    speed = rng.uniform(0.1, 0.4, num_tasks)
    progress = np.arange(1, n_evals + 1)[:, None] / n_evals
    p = final[None, :] * (1.0 - np.exp(-progress / speed[None, :]))
    return rng.binomial(episodes, np.clip(p, 0.0, 1.0)) / episodes


def synthetic_train_metrics(variant: str, benchmark: str, seed: int, n_updates: int, num_tasks: int,
                            total_steps: int, reward_version: str = "v2") -> pd.DataFrame:
    """train_metrics.csv rows: every design.md column plus ``critic_gradnorm_t{i}``.

    Per-task critic gradient norms are log-normal; their spread (max/min) shrinks over
    training, and faster for variants with a FairGrad critic.
    """
    rng = np.random.default_rng(_key("train", variant, benchmark, reward_version, seed))
    u = np.arange(1, n_updates + 1)
    frac = u / n_updates
    balanced = "fgc" in variant or variant == "toppo" or "c-fairgrad" in variant
    width = (1.5 if not balanced else 0.8) * (1.0 - 0.5 * frac)
    norms = np.exp(rng.normal(0.0, 1.0, (n_updates, num_tasks)) * width[:, None])
    steps = np.round(frac * total_steps).astype(np.int64)
    wall = np.cumsum(rng.uniform(0.9, 1.1, n_updates))
    out = {
        "update": u, "step": steps, "wall_time_s": wall, "env_sps": steps / wall,
        "rollout_time_s": rng.uniform(0.5, 0.6, n_updates), "learn_time_s": rng.uniform(0.3, 0.4, n_updates),
        "update_time_s": rng.uniform(0.9, 1.1, n_updates), "policy_loss": rng.normal(0, 0.01, n_updates),
        "value_loss": np.exp(-3 * frac) + rng.uniform(0, 0.05, n_updates),
        "entropy": 5.0 - 3.0 * frac, "approx_kl": rng.uniform(0.005, 0.02, n_updates),
        "clipfrac": rng.uniform(0.05, 0.2, n_updates), "grad_norm_actor": rng.uniform(0.2, 1.0, n_updates),
        "grad_norm_critic": norms.sum(axis=1), "critic_gradnorm_max": norms.max(axis=1),
        "critic_gradnorm_min": norms.min(axis=1), "critic_gradnorm_spread": norms.max(axis=1) / norms.min(axis=1),
        "critic_cos_mean": rng.uniform(0.0, 0.3, n_updates), "critic_cos_min": rng.uniform(-0.5, 0.0, n_updates),
        "critic_gram_cond": np.exp(rng.uniform(1, 5, n_updates)), "popart_mu_mean": 100 * frac,
        "popart_sigma_min": rng.uniform(0.5, 1, n_updates), "popart_sigma_max": rng.uniform(10, 50, n_updates),
        "mean_train_success": frac * rng.uniform(0.4, 0.8),
    }
    frame = pd.DataFrame(out, columns=TRAIN_METRIC_COLUMNS)
    per_task = pd.DataFrame(norms, columns=[f"critic_gradnorm_t{i}" for i in range(num_tasks)])
    return pd.concat([frame, per_task], axis=1)


def write_run(run_dir: str | Path, *, variant: str, benchmark: str, reward_version: str, seed: int,
              success: np.ndarray | None = None, steps: Sequence[int] | None = None,
              n_evals: int = 10, num_tasks: int | None = None, tasks: Sequence[str] | None = None,
              episodes: int = 50, total_steps: int | None = None, status: str = "complete",
              param_total: int = 1_000_000, train_updates: int | None = 20) -> Path:
    """Write one run directory (config.yaml, manifest.json, eval.csv, train_metrics.csv).

    ``success`` (evals, tasks) fixes the evaluation results; ``steps`` the evaluation steps
    (default: evenly spaced, the last at ``total_steps``). ``train_updates=None`` writes no
    train_metrics.csv. ``status='running'`` writes a manifest of an unfinished run.
    """
    run_dir = Path(run_dir)
    if success is None:
        k = num_tasks or len(BENCHMARKS.get(benchmark, range(10)))
        success = synthetic_success(variant, benchmark, seed, n_evals, k, episodes, reward_version)
    success = np.asarray(success, dtype=float)
    n_evals, k = success.shape
    tasks = list(tasks) if tasks is not None else task_names(k, benchmark)
    if len(tasks) != k:
        raise ValueError(f"{len(tasks)} task names for {k} tasks")
    if total_steps is None:
        total_steps = int(steps[-1]) if steps is not None else 1_000_000 * k
    if steps is None:
        steps = np.round(np.arange(1, n_evals + 1) / n_evals * total_steps).astype(np.int64)
    steps = np.asarray(steps, dtype=np.int64)
    if steps.shape != (n_evals,):
        raise ValueError(f"steps must have one entry per evaluation ({n_evals}), got shape {steps.shape}")

    evals = pd.DataFrame({
        "benchmark": benchmark, "reward_version": reward_version, "variant": variant, "seed": seed,
        "step": np.repeat(steps, k), "task_index": np.tile(np.arange(k), n_evals),
        "task": np.tile(np.asarray(tasks, dtype=object), n_evals),
        "success_rate": success.ravel(), "mean_return": np.round(success.ravel() * 4000.0, 3),
        "episodes": episodes,
    }, columns=EVAL_COLUMNS)
    write_text_atomic(run_dir / "eval.csv", evals.to_csv(index=False))

    if train_updates:
        metrics = synthetic_train_metrics(variant, benchmark, seed, train_updates, k, int(steps[-1]),
                                          reward_version)
        write_text_atomic(run_dir / "train_metrics.csv", metrics.to_csv(index=False, float_format="%.6g"))

    config = {"benchmark": benchmark, "reward_version": reward_version, "seed": seed,
              "total_steps": int(total_steps), "eval_episodes": episodes}
    write_text_atomic(run_dir / "config.yaml", yaml.safe_dump(config, sort_keys=False))
    manifest = {
        "status": status, "variant": variant, "benchmark": benchmark, "reward_version": reward_version,
        "seed": seed, "config_hash": f"{_key(variant, benchmark, reward_version):08x}",
        "git_commit": "synthetic", "packages": {"numpy": np.__version__}, "device": "cpu",
        "wall_time_s": float(n_evals), "env_steps": int(steps[-1]), "total_steps": int(total_steps),
        "eval_env_steps": int(n_evals * k * episodes * 500), "updates": train_updates or 0,
        "eval_episodes": episodes,
        "param_count": {"actor": param_total // 2, "critic": param_total - param_total // 2, "total": param_total},
        "started_at": "2025-01-01T00:00:00+00:00",
        "finished_at": "2025-01-01T01:00:00+00:00" if status == "complete" else None,
    }
    write_text_atomic(run_dir / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return run_dir


def write_suite(root: str | Path, *, scale: str = "synthetic",
                groups: Iterable[tuple[str, str, Sequence[str]]],
                seeds: Iterable[int] = range(3), n_evals: int = 10, episodes: int = 50,
                train_updates: int | None = 20, total_steps: dict[str, int] | None = None) -> list[Path]:
    """Synthetic runs for every (benchmark, reward_version, variants) group and seed.

    ``total_steps`` maps benchmark to budget (default 1M env steps per task).
    """
    out = []
    for benchmark, reward_version, variants in groups:
        k = len(BENCHMARKS.get(benchmark, range(10)))
        budget = (total_steps or {}).get(benchmark, 1_000_000 * k)
        for variant in variants:
            for seed in seeds:
                out.append(write_run(
                    run_dir_for(root, scale, benchmark, reward_version, variant, seed),
                    variant=variant, benchmark=benchmark, reward_version=reward_version, seed=seed,
                    n_evals=n_evals, num_tasks=k, episodes=episodes, total_steps=budget,
                    param_total=1_000_000 + 10_000 * (_key(variant) % 100), train_updates=train_updates))
    return out
