"""How a training job's CPU cores are divided between env workers and evaluation workers.

A job gets C cores (the workflow's ``resources.<benchmark>.threads``, passed as ``cores``;
by hand, the process's CPU affinity, which SLURM and ``taskset`` set). Evaluation at the
configured cadence costs up to ``r`` env steps per training env step (every episode run to
the time limit: an upper bound, as episodes end early on success), and an evaluation step
costs about what a training step does (docs/throughput.md), so ``eval_workers=auto`` gives
evaluation the share r / (1 + r) of the cores, at least one, and ``env_workers=auto`` the
rest. The trainer's own core counts for stepping: in lockstep it waits while the env
workers step, and they wait while it runs the policy or the learner. Env workers are pinned
to the job's cores where the job owns them (``env_worker_cpus``), and each worker's slice
of the envs is cut to about equal stepping time (``balanced_slices``).
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


def env_worker_cpus(cfg) -> list[int] | None:
    """The CPUs env worker w is pinned to (``cpus[w % len(cpus)]``), or None: not pinned.

    In lockstep, two workers that the scheduler leaves on one core step one after the other
    while another core idles (measured: docs/throughput.md). Pinning is safe only where the
    job owns every CPU of its affinity: ``cores`` unset or equal to the affinity's size (a
    SLURM job, ``taskset``, a machine of its own). A job given fewer cores than its affinity
    holds shares the machine with other jobs (a local Snakemake run), which would pin their
    workers to the same CPUs: there workers float."""
    try:
        affinity = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return None
    return affinity if cfg.cores in (0, len(affinity)) else None


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
    each (``toppo.algo.envpool_envs.EnvPoolTrainEnvs``, ``parallel_pools``): when the job's cores
    less its evaluation workers leave at least 2 for them; else one pool at a time, so
    the training envs use one core, as the job's ``threads`` (e.g. config/cpu.yaml's 1)
    promise. The same results either way (tests/test_envpool_parity.py)."""
    return job_cores(cfg) - eval_worker_count(cfg) >= 2


# Microseconds per env step of each task, one process, the mean of 500 random-action steps
# and 500 steps of its scripted expert (metaworld.policies), measured on the development
# machine (AMD EPYC, 2026-12-05; benchmarks/step_costs.py, output in benchmarks/measurements/
# dev-2core-2026-12-05/step-costs-MT50.txt). Only their ratios matter: they balance the env
# workers' slices, which change no result.
STEP_COST_US = {
    "assembly-v3": 510, "basketball-v3": 520, "bin-picking-v3": 480, "box-close-v3": 570,
    "button-press-topdown-v3": 420, "button-press-topdown-wall-v3": 390, "button-press-v3": 520,
    "button-press-wall-v3": 400, "coffee-button-v3": 440, "coffee-pull-v3": 1170,
    "coffee-push-v3": 1030, "dial-turn-v3": 380, "disassemble-v3": 540, "door-close-v3": 530,
    "door-lock-v3": 420, "door-open-v3": 570, "door-unlock-v3": 360, "hand-insert-v3": 830,
    "drawer-close-v3": 390, "drawer-open-v3": 400, "faucet-open-v3": 340, "faucet-close-v3":
    390, "hammer-v3": 590, "handle-press-side-v3": 340, "handle-press-v3": 330,
    "handle-pull-side-v3": 450, "handle-pull-v3": 400, "lever-pull-v3": 580,
    "pick-place-wall-v3": 960, "pick-out-of-hole-v3": 440, "pick-place-v3": 910,
    "plate-slide-v3": 510, "plate-slide-side-v3": 630, "plate-slide-back-v3": 470,
    "plate-slide-back-side-v3": 510, "peg-insert-side-v3": 670, "peg-unplug-side-v3": 440,
    "soccer-v3": 910, "stick-push-v3": 1070, "stick-pull-v3": 1100, "push-v3": 1010,
    "push-wall-v3": 1000, "push-back-v3": 940, "reach-v3": 490, "reach-wall-v3": 510,
    "shelf-place-v3": 1050, "sweep-into-v3": 1000, "sweep-v3": 700, "window-open-v3": 390,
    "window-close-v3": 360
}


def balanced_slices(costs: list[int], parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous, non-empty ``(lo, hi)`` slices of ``range(len(costs))`` whose
    costliest slice costs the least possible: the lockstep waits for the slowest worker.
    Integer costs; the least feasible bound is found by bisection, then the slices are cut
    greedily under it and the longest split until there are ``parts``."""
    n, parts = len(costs), min(parts, len(costs))

    def greedy(bound: int) -> list[tuple[int, int]]:
        slices, lo, total = [], 0, 0
        for i, c in enumerate(costs):
            if total + c > bound:
                slices.append((lo, i))
                lo, total = i, 0
            total += c
        return [*slices, (lo, n)]

    lo, hi = max(costs), sum(costs)
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if len(greedy(mid)) <= parts else (mid + 1, hi)
    slices = greedy(lo)
    while len(slices) < parts:  # splitting a slice never raises the costliest one
        w = max(range(len(slices)), key=lambda s: slices[s][1] - slices[s][0])
        a, b = slices[w]
        slices[w:w + 1] = [(a, b - 1), (b - 1, b)]
    return slices
