"""Meta-World evaluation: per task, N episodes with terminate-on-success and mean actions.

Success of an episode is its final ``success`` flag (with terminate-on-success, 1 iff the
task was solved at some step). Goals come from metaworld's pseudorandom task selection,
so N = 50 episodes visit each of the task's 50 goals once. Every evaluation restores the
eval envs to the same snapshot, so evaluations over training see the same goals and the
same initial states, and a resumed run evaluates exactly like an uninterrupted one.

With C eval copies per task, copy c plays episodes [c*n, (c+1)*n) of the goal cycle
(it starts c*n goals further along), so copies split the goals instead of repeating them.
Each copy is placed there by restoring the snapshot advanced along the goal cycle
(``toppo.algo.envs.place_copies``), not by running c*n resets.

Envs that finished their episodes stop stepping: with synchronous envs the single envs
are stepped directly (only the active ones); asynchronous copies step as a whole, so
there finished envs keep running until their copy is done (their observations are not
used again). ``env_steps`` counts every step executed, wasted or not.

Tasks are independent: the policy acts for one task at a time, on the fixed block of its
C copies, so what a task's episodes see depends on that task's envs only. An evaluation
split by task across worker processes (``toppo.harness.evalworker``) therefore gives every task
the same numbers as one process evaluating all of them, by construction, not because
batched matrix products happen to round alike for other batch compositions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from toppo.algo.envs import EnvCopies, empty_step, place_copies, step_envs


@dataclass
class EvalResult:
    success_rate: np.ndarray  # (K,) fraction of episodes whose final success was 1
    mean_return: np.ndarray  # (K,) mean undiscounted episode return
    episodes: int  # episodes per task
    env_steps: int  # env steps executed by this evaluation (all copies, all tasks)


def evaluate(act: Callable[[np.ndarray, np.ndarray], np.ndarray], envs: EnvCopies,
             snapshot: list[Any], episodes: int) -> EvalResult:
    """Run ``episodes`` evaluation episodes per task. ``act(obs, task)`` maps observations
    (B, D) of envs running tasks ``task`` (B,) to actions (B, A)."""
    K, C, N, D = envs.num_tasks, len(envs.copies), envs.num_envs, envs.obs_dim
    per_copy = math.ceil(episodes / C)
    # episodes each env index (copy * K + task) must complete
    quota = np.repeat([max(0, min(per_copy, episodes - c * per_copy)) for c in range(C)], K)

    # each copy starts at its share of the goal cycle
    envs.set_state(place_copies(snapshot, [c * per_copy for c in range(C)]))
    obs = envs.reset()

    done_eps = np.zeros(N, dtype=np.int64)
    successes = np.zeros(N)
    returns = np.zeros(N)
    running_return = np.zeros(N)
    actions = np.zeros((N, envs.act_dim), dtype=np.float32)
    steps = 0
    singles = envs.single_envs()  # None for asynchronous copies
    while (active := np.flatnonzero(done_eps < quota)).size:
        for k in np.unique(active % K):  # one forward per task still running, over its C copies
            rows = slice(k, N, K)
            actions[rows] = act(obs[rows], envs.task_ids[rows])
        if singles is None:  # asynchronous copies step as a whole
            new_obs, reward, terminated, truncated, _, final_success = envs.step_raw(actions)
            steps += N
        else:  # only the active envs; a reset takes the next goal of the cycle
            new_obs, reward, terminated, truncated, _, final_success = out = empty_step(N, D)
            step_envs(singles, actions, out, which=active)
            steps += active.size
        obs[active] = new_obs[active]  # a finished env's observation stays as it was
        ended = np.flatnonzero(terminated | truncated)
        running_return += reward
        for i in ended:
            if done_eps[i] < quota[i]:
                successes[i] += final_success[i]
                returns[i] += running_return[i]
                done_eps[i] += 1
            running_return[i] = 0.0
    per_task = lambda x: x.reshape(C, K).sum(0) / episodes
    return EvalResult(per_task(successes), per_task(returns), episodes, steps)


def concat_results(parts: list[EvalResult]) -> EvalResult:
    """One evaluation's result from its parts over consecutive task slices, in task order."""
    return EvalResult(np.concatenate([p.success_rate for p in parts]),
                      np.concatenate([p.mean_return for p in parts]),
                      parts[0].episodes, sum(p.env_steps for p in parts))
