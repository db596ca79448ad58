"""How a training job's CPU cores are divided between env workers and evaluation workers.

A job gets C cores (the workflow's ``resources.<benchmark>.threads``, passed as ``cores``;
by hand, the process's CPU affinity, which SLURM and ``taskset`` set). Evaluation at the
configured cadence costs up to ``r`` env steps per training env step (every episode run to
the time limit: an upper bound, as episodes end early on success), and an evaluation step
costs about what a training step does (docs/throughput.md), so ``eval_workers=auto`` gives
evaluation the share r / (1 + r) of the cores, at least one, and ``env_workers=auto`` the
rest. The trainer's own core counts for stepping: in lockstep it waits while the env
workers step, and they wait while it runs the policy or the learner.
"""

from __future__ import annotations

import os


def available_cores() -> int:
    """The CPUs this process may run on (its affinity: what SLURM or ``taskset`` gave it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def eval_steps_per_train_step(eval_episodes: int, num_tasks: int, max_episode_steps: int,
                              eval_every_steps: int) -> float:
    """Upper bound of the evaluation env steps per training env step at the cadence."""
    return eval_episodes * num_tasks * max_episode_steps / eval_every_steps


def auto_eval_workers(cores: int, eval_ratio: float, num_tasks: int) -> int:
    """Evaluation workers for ``cores`` cores when evaluation costs ``eval_ratio`` env steps
    per training step: the share r / (1 + r) of the cores, rounded, at least 1 and at most
    one per task (each evaluation is split by task)."""
    return max(1, min(num_tasks, round(cores * eval_ratio / (1 + eval_ratio))))


def auto_env_workers(cores: int, eval_workers: int, num_envs: int) -> int:
    """Env workers for ``cores`` cores less those ``eval_workers`` keep busy. Fewer than 2
    workers would only add messages to in-process stepping, so that gives 0 (the trainer
    steps its envs); never more workers than envs."""
    n = min(cores - eval_workers, num_envs)
    return n if n >= 2 else 0


def job_cores(cfg) -> int:
    return cfg.cores or available_cores()


def eval_worker_count(cfg) -> int:
    """The evaluation workers of a run of ``cfg`` (a ``TrainConfig``; 0 when inline)."""
    if cfg.eval_mode == "inline":
        return 0
    if cfg.eval_workers != "auto":
        return cfg.eval_workers
    ratio = eval_steps_per_train_step(cfg.eval_episodes, cfg.num_tasks, cfg.max_episode_steps,
                                      cfg.eval_every_steps)
    return auto_eval_workers(job_cores(cfg), ratio, cfg.num_tasks)


def env_worker_count(cfg) -> int:
    """The env workers of a run of ``cfg``: ``env_workers``, or for ``auto`` the job's cores
    less its evaluation workers; ``async_envs`` has its own subprocesses and
    ``env_backend=envpool`` its own threads: 0."""
    if cfg.env_workers != "auto":
        return cfg.env_workers
    if cfg.async_envs or cfg.env_backend == "envpool":
        return 0
    return auto_env_workers(job_cores(cfg), eval_worker_count(cfg),
                            cfg.num_tasks * cfg.envs_per_task)


def envpool_parallel_pools(cfg) -> bool:
    """Whether a run with ``env_backend=envpool`` steps its pools at once, one EnvPool thread
    each (``toppo.envpool_envs.EnvPoolTrainEnvs``, ``parallel_pools``): when the job's cores
    less its evaluation workers leave at least 2 for them; else one pool at a time, so
    the training envs use one core, as the job's ``threads`` (e.g. config/cpu.yaml's 1)
    promise. The same results either way (tests/test_envpool_parity.py)."""
    return job_cores(cfg) - eval_worker_count(cfg) >= 2
