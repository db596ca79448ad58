"""Step 1 of a PPO update: collect a rollout and its advantages (then toppo.algo.learner updates).

``collect`` steps every env copy ``rollout_steps_per_task / envs_per_task`` times with actions
sampled from the policy, then computes values and GAE:

  1. each step: the critic values the observation on a side thread while the policy samples
     an action (the Gaussian sample ``u`` before the tanh squash is what the learner
     re-evaluates), the envs start stepping, the buffers are written meanwhile, then the
     step's results are read;
  2. episodes end by time-limit truncation; with ``bootstrap_truncation`` (the default, a
     deviation from the reference, docs/fidelity.md) the final state's value is bootstrapped,
     else the truncation counts as terminal (next value 0);
  3. with the per-task linear baseline instead of a critic (the MT10 reference) the values are
     fitted per task on this rollout's whole episodes (toppo.algo.ppo.linear_baseline);
  4. GAE on unnormalised values (toppo.algo.ppo.gae), reshaped per task: (K tasks, samples, ...).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from toppo.algo import ppo
from toppo.algo.learner import Learner
from toppo.algo.networks import policy_input
from toppo.specs.config import TrainConfig


@torch.no_grad()  # grad mode is per thread: the side thread's critic needs its own
def critic_value(value, obs: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
    return value(obs, task)


@torch.no_grad()
def collect(envs, learner: Learner, cfg: TrainConfig, task_of_env: torch.Tensor,
            device: torch.device) -> dict[str, torch.Tensor]:
    """One rollout of ``envs`` (toppo.algo.envs.EnvCopies or the env workers' pool: reset(),
    step_async(actions), step_wait() -> StepBatch) under ``learner``'s policy, with advantages
    and returns."""
    dev, N, K = device, envs.num_envs, envs.num_tasks
    actor = learner.actor
    value = learner.value if learner.critic is not None else None
    T = cfg.rollout_steps_per_task // cfg.envs_per_task
    task = task_of_env
    obs_buf = torch.zeros((T, N, envs.obs_dim), device=dev)
    act_buf = torch.zeros((T, N, envs.act_dim), device=dev)
    logp_buf, val_buf, rew_buf, next_val_buf = (torch.zeros((T, N), device=dev) for _ in range(4))
    end_buf = torch.zeros((T, N), dtype=torch.bool, device=dev)
    successes: list[float] = []

    obs = policy_input(envs.reset(), dev)  # torch's memory: see networks.policy_input
    # the critic's forward on a side thread, on a second core while the actor's runs: torch's
    # kernels release the GIL, and the same kernels on the same rows give the same bits
    # (the executor starts its thread at the first submit: none without a critic)
    with ThreadPoolExecutor(1, thread_name_prefix="toppo-critic") as side:
        for t in range(T):
            v = side.submit(critic_value, value, obs, task) if value is not None else None
            u, logp, action = actor.sample(obs, task)  # u: the Gaussian sample, pre-squash
            # the envs step (in env workers, at once) while the buffers are written
            envs.step_async(action.cpu().numpy())
            obs_buf[t], act_buf[t], logp_buf[t] = obs, u, logp
            if v is not None:
                val_buf[t] = v.result()
            step = envs.step_wait()  # a StepBatch (toppo.algo.envs)
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
            x = x.reshape(T, C, K, -1).permute(2, 1, 0, 3)  # (K, C, T, ...)
            return x.reshape(K, C * T // L, L, *extra)

        fitted = ppo.linear_baseline(episodes(obs_buf), episodes(rew_buf), cfg.gamma)
        val_buf = fitted.reshape(K, C, T).permute(2, 1, 0).reshape(T, N)
        last_value = torch.zeros(N, device=dev)
    following = torch.cat([val_buf[1:], last_value[None]], 0)  # V(s_{t+1}) within episodes
    next_val_buf = torch.where(end_buf, next_val_buf, following)
    adv, ret = ppo.gae(rew_buf, val_buf, next_val_buf, end_buf, cfg.gamma, cfg.gae_lambda)

    def per_task(x: torch.Tensor) -> torch.Tensor:  # (T, C*K, ...) -> (K, T*C, ...)
        x = x.reshape(T, cfg.envs_per_task, K, *x.shape[2:])
        return x.transpose(0, 2).reshape(K, T * cfg.envs_per_task, *x.shape[3:])

    return {"obs": per_task(obs_buf), "action": per_task(act_buf), "logp": per_task(logp_buf),
            "value": per_task(val_buf), "adv": per_task(adv), "ret": per_task(ret),
            "task": per_task(task.expand(T, N)),
            "train_success": torch.tensor(float(np.mean(successes)) if successes else float("nan"))}
