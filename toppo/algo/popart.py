"""Per-task PopArt value normalisation (van Hasselt et al. 2016; Hessel et al. 2019).

Each task k keeps running statistics (mu_k, sigma_k) of its value targets: exact running
moments over every target seen (``welford``), or exponential moving moments with one step
of size beta per PPO update, mu <- (1 - beta) mu + beta mean(G), nu <- (1 - beta) nu +
beta mean(G^2), sigma = sqrt(nu - mu^2) (``ema``, the per-update form of Hessel et al.
2019, with the batch's mean standing for the update's targets). The critic predicts
*normalised* values; task k's unnormalised value is ``sigma_k * v + mu_k``.

Two critics carry it (``critic_heads``):

* per-task heads (Hessel et al. 2019): the last layer has one output row per task, and when
  the statistics change row k is rescaled ("preserving outputs precisely") so every
  unnormalised prediction is unchanged:

      W_k <- W_k * sigma_old / sigma_new
      b_k <- (sigma_old * b_k + mu_old - mu_new) / sigma_new

* a shared head (the TOPPO paper's network, "fully task-shared except per-task sigma"): one
  output row serves every task, so no task's outputs can be preserved on their own; the
  statistics move and the targets are re-expressed in them, as in ART without POP
  (van Hasselt et al. 2016). docs/fidelity.md says why the paper rows take this reading.
"""

from __future__ import annotations

import torch
from torch import nn


class PopArt(nn.Module):
    """Running per-task target statistics; buffers so they move with the state dict."""

    def __init__(self, num_tasks: int, mode: str = "welford", beta: float = 3e-4,
                 min_sigma: float = 1e-4):
        super().__init__()
        if mode not in ("welford", "ema"):
            raise ValueError(f"popart mode must be 'welford' or 'ema', got {mode!r}")
        self.mode, self.beta, self.min_sigma = mode, beta, min_sigma
        self.register_buffer("mu", torch.zeros(num_tasks, dtype=torch.float64))
        self.register_buffer("nu", torch.ones(num_tasks, dtype=torch.float64))  # ema 2nd moment
        self.register_buffer("m2", torch.zeros(num_tasks, dtype=torch.float64))  # welford
        self.register_buffer("count", torch.zeros(num_tasks, dtype=torch.float64))

    @property
    def sigma(self) -> torch.Tensor:
        if self.mode == "welford":
            var = torch.where(self.count > 1, self.m2 / self.count.clamp(min=1), torch.ones_like(self.m2))
        else:
            var = self.nu - self.mu**2
        return var.clamp(min=0).sqrt().clamp(min=self.min_sigma)

    def normalize(self, x: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        return (x - self.mu[task].to(x.dtype)) / self.sigma[task].to(x.dtype)

    def denormalize(self, x: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        return x * self.sigma[task].to(x.dtype) + self.mu[task].to(x.dtype)

    @torch.no_grad()
    def update(self, targets: torch.Tensor, head: nn.Linear | None) -> None:
        """Fold ``targets`` shaped (K, N) (task k's value targets in row k) into the
        statistics, then rescale ``head`` (K outputs) so its unnormalised outputs are kept;
        ``head=None`` (a shared value head): the statistics only."""
        old_mu, old_sigma = self.mu.clone(), self.sigma.clone()
        x = targets.to(torch.float64)
        n = x.shape[1]
        batch_mean = x.mean(1)
        if self.mode == "welford":  # Chan et al. parallel update of mean and M2
            batch_m2 = ((x - batch_mean[:, None]) ** 2).sum(1)
            total = self.count + n
            delta = batch_mean - self.mu
            self.mu += delta * n / total
            self.m2 += batch_m2 + delta**2 * self.count * n / total
            self.count.copy_(total)
        else:  # one EMA step of size beta per update, towards the batch's moments
            self.mu.mul_(1 - self.beta).add_(self.beta * batch_mean)
            self.nu.mul_(1 - self.beta).add_(self.beta * (x**2).mean(1))
            self.count += n
        if head is None:
            return
        new_mu, new_sigma = self.mu, self.sigma
        scale = (old_sigma / new_sigma).to(head.weight.dtype)
        head.weight.mul_(scale[:, None])
        head.bias.copy_(((old_sigma * head.bias.to(torch.float64) + old_mu - new_mu) / new_sigma)
                        .to(head.bias.dtype))

    def summary(self) -> dict[str, float]:
        sigma = self.sigma
        return {"popart_mu_mean": float(self.mu.mean()), "popart_sigma_min": float(sigma.min()),
                "popart_sigma_max": float(sigma.max())}
