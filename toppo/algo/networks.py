"""Shared multi-task actor and critic MLPs.

Both networks read the observation with the task one-hot already appended by metaworld
(``use_one_hot=True``: 39 + K floats). By default they are the Meta-World+ reference's
networks (``metaworld_algorithms/nn/base.py`` MLP, ``rl/networks.py``): ReLU bodies of
He-uniform Dense layers with zero bias, heads initialised uniform(+-1e-3) (policy) and
uniform(+-3e-3) (value); the policy's head outputs the mean and a state-dependent
log-std, clipped to [log_std_min, log_std_max], and the Gaussian is tanh-squashed on
MT50. ``docs/fidelity.md`` lists the switches that depart from it.

Parameters fall into two groups per side:

* shared: the MLP body and heads every task uses -- these receive the *combined*
  per-task gradient;
* per-task: rows only task k's loss touches -- the actor's (K, A) log-std rows
  (``policy_std=per_task``) and the critic's output rows (``critic_heads=per_task``) --
  which get the plain sum.

Diagnostics always use the ``body.*`` parameters, the set every variant shares.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from toppo.algo import ppo


def _init_linear(layer: nn.Linear, init: str, gain: float) -> None:
    if init == "he_uniform":  # jax.nn.initializers.he_uniform: U(+-sqrt(6 / fan_in))
        nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu")
    else:
        nn.init.orthogonal_(layer.weight, gain=gain)
    nn.init.zeros_(layer.bias)


def _head(in_dim: int, out_dim: int, init: str, bound: float, orthogonal_gain: float) -> nn.Linear:
    """Output layer: uniform(+-bound) weight and bias (reference) or orthogonal(gain), zero bias."""
    head = nn.Linear(in_dim, out_dim)
    if init == "he_uniform":
        nn.init.uniform_(head.weight, -bound, bound)
        nn.init.uniform_(head.bias, -bound, bound)
    else:
        nn.init.orthogonal_(head.weight, gain=orthogonal_gain)
        nn.init.zeros_(head.bias)
    return head


def mlp(in_dim: int, hidden: tuple[int, ...], activation: str, layer_norm: bool,
        init: str = "he_uniform") -> nn.Sequential:
    """Body of Linear(-> LayerNorm) -> activation blocks; LayerNorm sits before each activation."""
    act = {"tanh": nn.Tanh, "relu": nn.ReLU}[activation]
    layers: list[nn.Module] = []
    for width in hidden:
        linear = nn.Linear(in_dim, width)
        _init_linear(linear, init, gain=math.sqrt(2))
        layers.append(linear)
        if layer_norm:
            layers.append(nn.LayerNorm(width))
        layers.append(act())
        in_dim = width
    return nn.Sequential(*layers)


class Actor(nn.Module):
    """Gaussian policy on a shared body. ``policy_std='head'``: one head outputs the mean
    and a state-dependent log-std (clipped); ``'per_task'``: a mean head and (K, A)
    log-std rows. ``squash_tanh``: actions are tanh of the Gaussian sample.

    The rollout keeps the *pre-squash* sample ``u``; log-probabilities and the PPO ratio
    are those of ``u`` (the tanh Jacobian depends on the action only, so it cancels in the
    ratio), and the entropy is the Gaussian's, as in the reference."""

    def __init__(self, obs_dim: int, act_dim: int, num_tasks: int, hidden: tuple[int, ...],
                 activation: str = "relu", layer_norm: bool = False, log_std_init: float = 0.0,
                 *, init: str = "he_uniform", policy_std: str = "head", squash_tanh: bool = True,
                 log_std_min: float = -20.0, log_std_max: float = 2.0):
        super().__init__()
        self.act_dim, self.policy_std, self.squash_tanh = act_dim, policy_std, squash_tanh
        self.log_std_min, self.log_std_max = log_std_min, log_std_max
        self.body = mlp(obs_dim, hidden, activation, layer_norm, init)
        out = 2 * act_dim if policy_std == "head" else act_dim
        self.head = _head(hidden[-1], out, init, bound=1e-3, orthogonal_gain=0.01)
        if policy_std == "per_task":
            self.log_std = nn.Parameter(torch.full((num_tasks, act_dim), float(log_std_init)))

    def forward(self, obs: torch.Tensor, task: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """obs (B, obs_dim), task (B,) long -> Gaussian mean (B, A), log_std (B, A)."""
        out = self.head(self.body(obs))
        if self.policy_std == "head":
            mean, log_std = out.split(self.act_dim, dim=-1)
            return mean, log_std.clamp(self.log_std_min, self.log_std_max)
        return out, self.log_std[task]

    def env_action(self, u: torch.Tensor) -> torch.Tensor:
        """The action sent to the env for a Gaussian sample ``u``, in the [-1, 1] box."""
        return torch.tanh(u) if self.squash_tanh else u.clamp(-1.0, 1.0)

    @torch.no_grad()
    def sample(self, obs: torch.Tensor, task: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(Gaussian sample u (B, A), its log-prob (B,), the env action (B, A))."""
        mean, log_std = self(obs, task)
        u = mean + log_std.exp() * torch.randn_like(mean)
        return u, ppo.gaussian_log_prob(u, mean, log_std), self.env_action(u)

    @torch.no_grad()
    def act_deterministic(self, obs: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """The evaluation action (the distribution's mode), in the env's [-1, 1] box."""
        mean, _ = self(obs, task)
        return self.env_action(mean)

    def per_task_param_names(self) -> set[str]:
        return {"log_std"} if self.policy_std == "per_task" else set()


class Critic(nn.Module):
    """Value MLP. With ``per_task_head`` the last layer has one output per task (a
    multi-head critic; PopArt rescales its rows)."""

    def __init__(self, obs_dim: int, num_tasks: int, hidden: tuple[int, ...],
                 activation: str = "relu", layer_norm: bool = False, per_task_head: bool = False,
                 *, init: str = "he_uniform"):
        super().__init__()
        self.body = mlp(obs_dim, hidden, activation, layer_norm, init)
        self.per_task_head = per_task_head
        self.head = _head(hidden[-1], num_tasks if per_task_head else 1, init, bound=3e-3,
                          orthogonal_gain=1.0)

    def forward(self, obs: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """obs (B, obs_dim), task (B,) long -> value (B,) (normalised when PopArt is on)."""
        out = self.head(self.body(obs))
        if self.per_task_head:
            return out.gather(1, task[:, None]).squeeze(1)
        return out.squeeze(1)

    def per_task_param_names(self) -> set[str]:
        return {"head.weight", "head.bias"} if self.per_task_head else set()


def policy_input(obs, device: torch.device | str = "cpu") -> torch.Tensor:
    """Observations (a numpy array or view) as a float32 tensor in torch's own memory, never
    sharing the array's. On CPU, MKL's matrix products can round differently for the same
    values at another address (measured: 4 distinct actor outputs over 16 offsets of a
    shared numpy view, 1 over copies), and a numpy array's address depends on the process's
    heap; torch allocates 64-byte aligned, so the networks' numbers depend on the values only,
    whichever process (trainer, env-worker path, eval worker) made the array."""
    return torch.tensor(obs, dtype=torch.float32, device=device)


def body_param_names(module: nn.Module) -> set[str]:
    """The parameters every variant shares (the MLP body), used by the diagnostics."""
    return {n for n, _ in module.named_parameters() if n.startswith("body.")}


def param_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def build_actor(cfg, obs_dim: int, act_dim: int) -> Actor:
    """The actor a ``TrainConfig`` describes (the one place that maps config -> actor)."""
    return Actor(obs_dim, act_dim, cfg.num_tasks, cfg.hidden_sizes, cfg.activation,
                 cfg.ln_actor, cfg.log_std_init, init=cfg.init, policy_std=cfg.policy_std,
                 squash_tanh=cfg.squash_tanh, log_std_min=cfg.log_std_min,
                 log_std_max=cfg.log_std_max)


def build_critic(cfg, obs_dim: int) -> Critic | None:
    """The critic a ``TrainConfig`` describes; None with the linear baseline."""
    if not cfg.has_critic:
        return None
    return Critic(obs_dim, cfg.num_tasks, cfg.hidden_sizes, cfg.activation, cfg.ln_critic,
                  per_task_head=cfg.critic_heads == "per_task", init=cfg.init)
