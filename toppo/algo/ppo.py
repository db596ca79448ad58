"""PPO building blocks as pure functions: GAE, minibatch samplers, per-task losses.

Shapes: a rollout is indexed (T steps, N envs); after GAE it is regrouped per task as
(K tasks, M samples per task) with M = T * copies. A stratified minibatch is (K, m).
"""

from __future__ import annotations

import math

import torch


def gae(rewards: torch.Tensor, values: torch.Tensor, next_values: torch.Tensor,
        episode_end: torch.Tensor, gamma: float, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over (T, N) tensors.

    ``next_values[t]`` is V(s_{t+1}) for the transition at t: the value of the next state
    in the same episode or, where the episode was truncated by the time limit at t, the
    value of the episode's final observation (bootstrapping a truncation, not treating it
    as terminal). ``episode_end[t]`` (bool) stops the advantage trace crossing into the
    next episode. Meta-World training episodes never terminate, only truncate.
    Returns (advantages, returns = advantages + values).
    """
    T = rewards.shape[0]
    adv = torch.zeros_like(rewards)
    last = torch.zeros_like(rewards[0])
    cont = (~episode_end).to(rewards.dtype)
    for t in reversed(range(T)):
        delta = rewards[t] + gamma * next_values[t] - values[t]
        last = delta + gamma * lam * cont[t] * last
        adv[t] = last
    return adv, adv + values


def normalize_advantages(adv: torch.Tensor, mode: str, eps: float = 1e-8) -> torch.Tensor:
    """Advantage normalisation. ``minibatch``: zero mean, unit (population) std over every
    sample given, all tasks together (the MT50 reference normalises each minibatch so,
    ``rl/algorithms/ppo.py`` ``update_policy``); ``task``: over each row of a (K, M)
    tensor, i.e. inside each task; ``none``: unchanged (the MT10 reference)."""
    if mode == "none":
        return adv
    if mode == "minibatch":
        return (adv - adv.mean()) / (adv.std(correction=0) + eps)
    if mode == "task":
        return (adv - adv.mean(-1, keepdim=True)) / (adv.std(-1, correction=0, keepdim=True) + eps)
    raise ValueError(f"adv_norm must be 'minibatch', 'none' or 'task', got {mode!r}")


def discounted_returns(rewards: torch.Tensor, gamma: float) -> torch.Tensor:
    """Monte-Carlo returns of whole episodes along the last axis (no bootstrap)."""
    out = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[..., 0])
    for t in reversed(range(rewards.shape[-1])):
        running = rewards[..., t] + gamma * running
        out[..., t] = running
    return out


def linear_baseline(obs: torch.Tensor, rewards: torch.Tensor, gamma: float,
                    reg_coeff: float = 1e-5) -> torch.Tensor:
    """The MT10 reference's value baseline (``rl/algorithms/utils.py``
    ``LinearFeatureBaseline``, after garage): per task, a ridge regression of each
    episode's discounted returns on features [clip(o, +-10), clip(o, +-10)^2, t/100,
    (t/100)^2, (t/100)^3, 1] of the current rollout, evaluated on the same states.

    obs (K, E, L, D) and rewards (K, E, L): E whole episodes of L steps per task.
    Returns the fitted values (K, E, L). The ridge coefficient grows tenfold while the
    solve fails (up to 5 tries), as in the reference."""
    K, E, L, _ = obs.shape
    o = obs.to(torch.float64).clamp(-10.0, 10.0)
    t = (torch.arange(L, dtype=torch.float64, device=obs.device) / 100.0)[None, None, :, None]
    t = t.expand(K, E, L, 1)
    feats = torch.cat([o, o**2, t, t**2, t**3, torch.ones_like(t)], dim=-1).reshape(K, E * L, -1)
    target = discounted_returns(rewards.to(torch.float64), gamma).reshape(K, E * L, 1)
    eye = torch.eye(feats.shape[-1], dtype=torch.float64, device=obs.device)
    ftf, fty = feats.transpose(1, 2) @ feats, feats.transpose(1, 2) @ target
    coeffs = []
    for k in range(K):
        # the ridge system is symmetric positive definite: a Cholesky solve is the
        # reference's lstsq solution, and unlike LAPACK's pivoted lstsq (whose pivots
        # among the one-hot, its square and the constant -- identical columns -- vary
        # between processes here) it is bit-for-bit repeatable
        reg = reg_coeff
        for _ in range(5):
            chol, info = torch.linalg.cholesky_ex(ftf[k] + reg * eye)
            c = torch.cholesky_solve(fty[k], chol)
            if info == 0 and torch.isfinite(c).all():
                break
            reg *= 10
        coeffs.append(c)
    values = feats @ torch.stack(coeffs)
    return values.reshape(K, E, L).to(rewards.dtype)


def stratified_minibatches(num_tasks: int, samples_per_task: int, num_minibatches: int,
                           generator: torch.Generator | None = None,
                           device: torch.device | str = "cpu") -> list[torch.Tensor]:
    """Index tensors (K, m) into per-task data (K, M): every minibatch holds m samples of
    every task, m = M // num_minibatches. Each task's samples are permuted independently;
    the M mod num_minibatches left-over samples of a task sit out this epoch."""
    m = samples_per_task // num_minibatches
    perm = torch.argsort(torch.rand(num_tasks, samples_per_task, generator=generator), dim=1)
    perm = perm.to(device)
    return [perm[:, j * m:(j + 1) * m] for j in range(num_minibatches)]


def random_minibatches(total: int, num_minibatches: int, generator: torch.Generator | None = None,
                       device: torch.device | str = "cpu") -> list[torch.Tensor]:
    """Flat index tensors into (K * M) samples, plain PPO's random minibatches."""
    size = total // num_minibatches
    perm = torch.randperm(total, generator=generator).to(device)
    return [perm[j * size:(j + 1) * size] for j in range(num_minibatches)]


def gaussian_log_prob(action: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """Sum over action dims of the diagonal Gaussian log density."""
    var = torch.exp(2 * log_std)
    return (-((action - mean) ** 2) / (2 * var) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)


def gaussian_entropy(log_std: torch.Tensor) -> torch.Tensor:
    return (log_std + 0.5 * (1.0 + math.log(2 * math.pi))).sum(-1)


def actor_loss(mean: torch.Tensor, log_std: torch.Tensor, action: torch.Tensor,
               old_logp: torch.Tensor, adv: torch.Tensor, clip_coef: float, ent_coef: float
               ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clipped surrogate minus the entropy bonus, averaged over the samples (the last axis of
    ``adv``; leading axes, such as tasks, give one loss each)."""
    logp = gaussian_log_prob(action, mean, log_std)
    log_ratio = logp - old_logp
    ratio = log_ratio.exp()
    pg = torch.max(-adv * ratio, -adv * ratio.clamp(1 - clip_coef, 1 + clip_coef)).mean(-1)
    entropy = gaussian_entropy(log_std).mean(-1)
    with torch.no_grad():
        stats = {"approx_kl": ((ratio - 1) - log_ratio).mean(-1),
                 "clipfrac": ((ratio - 1).abs() > clip_coef).float().mean(-1),
                 "policy_loss": pg.detach(), "entropy": entropy.detach()}
    return pg - ent_coef * entropy, stats


def critic_loss(value: torch.Tensor, old_value: torch.Tensor, target: torch.Tensor,
                clip_vloss: bool, vf_clip_coef: float, vf_coef: float) -> torch.Tensor:
    """``vf_coef * 0.5 * mean((V - target)^2)`` (the reference's loss), or with
    ``clip_vloss`` the PPO value clipping around the rollout-time prediction. All three
    tensors are in the critic's own units (PopArt-normalised where PopArt is on), so
    ``vf_clip_coef`` is a range in those units. Averaged over the last axis, as ``actor_loss``."""
    unclipped = (value - target) ** 2
    if clip_vloss:
        clipped = old_value + (value - old_value).clamp(-vf_clip_coef, vf_clip_coef)
        loss = 0.5 * torch.max(unclipped, (clipped - target) ** 2).mean(-1)
    else:
        loss = 0.5 * unclipped.mean(-1)
    return vf_coef * loss
