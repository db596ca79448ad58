"""Shared multi-task actor and critic MLPs.

Both networks read the observation with the task one-hot already appended by metaworld
(``use_one_hot=True``: 39 + K floats). Parameters fall into two groups per side:

* shared: the MLP body and, for the actor, the mean head (one head for all tasks) —
  these receive the *combined* per-task gradient;
* per-task: the actor's log-std rows (K, A) and, with PopArt, the critic's output rows
  (K outputs) — row k only ever receives task k's gradient, so they are summed.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def mlp(in_dim: int, hidden: tuple[int, ...], activation: str, layer_norm: bool) -> nn.Sequential:
    """Body of Linear(-> LayerNorm) -> activation blocks; LayerNorm sits before each activation."""
    act = {"tanh": nn.Tanh, "relu": nn.ReLU}[activation]
    layers: list[nn.Module] = []
    for width in hidden:
        linear = nn.Linear(in_dim, width)
        nn.init.orthogonal_(linear.weight, gain=np.sqrt(2))
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if layer_norm:
            layers.append(nn.LayerNorm(width))
        layers.append(act())
        in_dim = width
    return nn.Sequential(*layers)


def _head(in_dim: int, out_dim: int, gain: float) -> nn.Linear:
    head = nn.Linear(in_dim, out_dim)
    nn.init.orthogonal_(head.weight, gain=gain)
    nn.init.zeros_(head.bias)
    return head


class Actor(nn.Module):
    """Gaussian policy: shared body and mean head, per-task log-std rows."""

    def __init__(self, obs_dim: int, act_dim: int, num_tasks: int, hidden: tuple[int, ...],
                 activation: str = "tanh", layer_norm: bool = False, log_std_init: float = 0.0):
        super().__init__()
        self.body = mlp(obs_dim, hidden, activation, layer_norm)
        self.mean = _head(hidden[-1], act_dim, gain=0.01)
        self.log_std = nn.Parameter(torch.full((num_tasks, act_dim), float(log_std_init)))

    def forward(self, obs: torch.Tensor, task: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """obs (B, obs_dim), task (B,) long -> mean (B, A), log_std (B, A)."""
        return self.mean(self.body(obs)), self.log_std[task]

    @torch.no_grad()
    def act_deterministic(self, obs: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """The evaluation action (the distribution's mode), in the env's [-1, 1] box."""
        mean, _ = self(obs, task)
        return mean.clamp(-1.0, 1.0)

    def per_task_param_names(self) -> set[str]:
        return {"log_std"}


class Critic(nn.Module):
    """Value MLP. With ``per_task_head`` the last layer has one output per task (PopArt)."""

    def __init__(self, obs_dim: int, num_tasks: int, hidden: tuple[int, ...],
                 activation: str = "tanh", layer_norm: bool = False, per_task_head: bool = False):
        super().__init__()
        self.body = mlp(obs_dim, hidden, activation, layer_norm)
        self.per_task_head = per_task_head
        self.head = _head(hidden[-1], num_tasks if per_task_head else 1, gain=1.0)

    def forward(self, obs: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """obs (B, obs_dim), task (B,) long -> value (B,) (normalised when PopArt is on)."""
        out = self.head(self.body(obs))
        if self.per_task_head:
            return out.gather(1, task[:, None]).squeeze(1)
        return out.squeeze(1)

    def per_task_param_names(self) -> set[str]:
        return {"head.weight", "head.bias"} if self.per_task_head else set()


def param_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def build_actor(cfg, obs_dim: int, act_dim: int) -> Actor:
    """The actor a ``TrainConfig`` describes (the one place that maps config -> actor)."""
    return Actor(obs_dim, act_dim, cfg.num_tasks, cfg.hidden_sizes, cfg.activation,
                 cfg.ln_actor, cfg.log_std_init)


def build_critic(cfg, obs_dim: int) -> Critic:
    """The critic a ``TrainConfig`` describes."""
    return Critic(obs_dim, cfg.num_tasks, cfg.hidden_sizes, cfg.activation, cfg.ln_critic,
                  per_task_head=cfg.popart)
