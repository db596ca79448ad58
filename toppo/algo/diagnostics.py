"""The learner's per-update diagnostics: how well conditioned each side's per-task gradients
are, and how well the critic fits, on a fixed random sample of the rollout.

Computed before the update's minibatch loop (and the critic's fit again after it) on
``diagnostics_samples`` transitions of every task, drawn from their own generator; they
read the parameters and never write a gradient or an optimiser's state, so they never
change training (tests/test_pertask.py checks it). ``gradient_diagnostics`` is the pure
metric on a (K, P) gradient matrix; the others take the ``Learner``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch

from toppo.algo import pertask
from toppo.algo.networks import body_param_names

if TYPE_CHECKING:
    from toppo.algo.learner import Learner


def draw_sample(learner: Learner, data: dict[str, torch.Tensor], update_idx: int
                ) -> dict[str, torch.Tensor]:
    """A random sample of ``diagnostics_samples`` transitions of every task (K, n), drawn from
    a generator seeded by the run's seed and the update, so the training stream never sees it;
    advantages normalised as a minibatch's are."""
    cfg, K, device = learner.cfg, learner.K, learner.device
    M = data["adv"].shape[1]
    n = min(M, cfg.diagnostics_samples)
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + update_idx)
    idx = torch.argsort(torch.rand(K, M, generator=gen), dim=1)[:, :n].to(device)
    rows = torch.arange(K, device=device)[:, None]
    return learner.normalize_minibatch({k: v[rows, idx] for k, v in data.items()})


@torch.no_grad()
def gradient_diagnostics(G: torch.Tensor, prefix: str = "critic") -> dict[str, float]:
    """Conditioning of per-task gradients G (K, P): norms and their spread (max/min),
    pairwise cosine similarities, and the condition number of the Gram matrix G G^T."""
    G64 = G.to(torch.float64)
    norms = G64.norm(dim=1)
    unit = G64 / norms.clamp(min=1e-30)[:, None]
    cos = unit @ unit.T
    K = G.shape[0]
    off = cos[~torch.eye(K, dtype=torch.bool, device=G.device)]
    eig = torch.linalg.eigvalsh(G64 @ G64.T).clamp(min=0)
    out = {
        f"{prefix}_gradnorm_max": float(norms.max()),
        f"{prefix}_gradnorm_min": float(norms.min()),
        f"{prefix}_gradnorm_spread": float(norms.max() / norms.min().clamp(min=1e-30)),
        f"{prefix}_cos_mean": float(off.mean()) if K > 1 else 1.0,
        f"{prefix}_cos_min": float(off.min()) if K > 1 else 1.0,
        f"{prefix}_gram_cond": float(eig.max() / eig.min()) if eig.min() > 0 else float("inf"),
    }
    out.update({f"{prefix}_gradnorm_t{k}": float(v) for k, v in enumerate(norms)})
    return out


def side_gradients(learner: Learner, sample: dict[str, torch.Tensor]) -> dict[str, float]:
    """Per-task gradients of each side's loss (each task's mean loss) at the current
    parameters, over the body parameters only -- the set every variant shares -- so norm
    spread, cosines and Gram condition numbers compare across variants."""
    out: dict[str, float] = {}
    for name, module in learner.sides.items():
        grads, _ = pertask.per_task_grads(module, learner.loss_fn(name, 1.0), sample,
                                          learner.cfg.per_task_grad_impl)
        _, G = pertask.split_shared(grads, set(grads) - body_param_names(module))
        out.update(gradient_diagnostics(G, name))
    return out


@torch.no_grad()
def value_fit(learner: Learner, sample: dict[str, torch.Tensor]) -> dict[str, float]:
    """Mean |V - R| and explained variance on ``sample``, unnormalised units."""
    obs, task = sample["obs"].flatten(0, 1), sample["task"].flatten(0, 1)
    target = sample["target"].flatten(0, 1)
    if learner.cfg.popart:
        target = learner.popart.denormalize(target, task)
    err = learner.value(obs, task) - target
    var = target.var(correction=0)
    return {"value_abs_err": float(err.abs().mean()),
            "explained_variance": float(1 - err.var(correction=0) / var) if var > 0 else float("nan")}


def before_update(learner: Learner, data: dict[str, torch.Tensor], update_idx: int
                  ) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """(the sample, the diagnostics before the minibatch loop, with their own time)."""
    t0 = time.perf_counter()
    sample = draw_sample(learner, data, update_idx)
    out = side_gradients(learner, sample)
    if learner.critic is not None:
        out.update({f"{k}_before": v for k, v in value_fit(learner, sample).items()})
    out["diagnostics_time_s"] = time.perf_counter() - t0
    return sample, out


def after_update(learner: Learner, sample: dict[str, torch.Tensor]) -> dict[str, float]:
    """The critic's fit on the same sample after the minibatch loop."""
    if learner.critic is None:
        return {}
    return {f"{k}_after": v for k, v in value_fit(learner, sample).items()}
