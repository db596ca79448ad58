"""Per-task gradients of a network, combined per side, and their diagnostics.

``per_task_grads`` returns, for every parameter, a (K, *shape) tensor whose row k is the
gradient of task k's loss. The default path vmaps ``torch.func.grad`` over the task axis
of a stratified minibatch (K, m, ...): one batched backward instead of K python-level
ones. ``impl="loop"`` is the reference (K separate ``autograd.grad`` calls), used in tests.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from toppo.algo import combiners

# loss_fn(forward, batch_of_one_task) -> (scalar loss of that task, dict of scalar stats)
TaskLoss = Callable[[Callable[..., torch.Tensor], dict[str, torch.Tensor]],
                    tuple[torch.Tensor, dict[str, torch.Tensor]]]


def per_task_grads(module: nn.Module, loss_fn: TaskLoss, batch: dict[str, torch.Tensor],
                   impl: str = "vmap") -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Gradients of each task's loss w.r.t. ``module``'s parameters, and the stats.

    ``batch`` holds tensors shaped (K, m, ...) (task k's samples in row k); ``loss_fn``
    receives a forward function and one task's slice (m, ...) and returns its loss and a
    dict of scalar stats. Returns ({name: (K, *shape)}, {stat: (K,)}).
    """
    params = {n: p.detach() for n, p in module.named_parameters()}
    buffers = {n: b for n, b in module.named_buffers()}
    if impl == "vmap":
        def task_loss(p: dict[str, torch.Tensor], task_batch: dict[str, torch.Tensor]):
            fwd = lambda *args: functional_call(module, (p, buffers), args)
            return loss_fn(fwd, task_batch)

        return vmap(grad(task_loss, has_aux=True), in_dims=(None, 0), randomness="error")(params, batch)
    if impl == "loop":
        names = [n for n, _ in module.named_parameters()]
        rows, stats = [], []
        num_tasks = next(iter(batch.values())).shape[0]
        for k in range(num_tasks):
            loss, aux = loss_fn(module, {key: v[k] for key, v in batch.items()})
            rows.append(torch.autograd.grad(loss, list(module.parameters()), allow_unused=True))
            stats.append(aux)
        grads = {n: torch.stack([r[i] if r[i] is not None else torch.zeros_like(params[n]) for r in rows])
                 for i, n in enumerate(names)}
        return grads, {key: torch.stack([s[key].detach() for s in stats]) for key in stats[0]}
    raise ValueError(f"per_task_grad_impl must be 'vmap' or 'loop', got {impl!r}")


def split_shared(grads: dict[str, torch.Tensor], per_task_names: set[str]) -> tuple[list[str], torch.Tensor]:
    """Names of the fully shared parameters and their per-task gradients as (K, P)."""
    shared = [n for n in grads if n not in per_task_names]
    K = next(iter(grads.values())).shape[0]
    return shared, torch.cat([grads[n].reshape(K, -1) for n in shared], dim=1)


def assign_combined(module: nn.Module, grads: dict[str, torch.Tensor], per_task_names: set[str],
                    combiner: str, **options) -> torch.Tensor:
    """Write ``.grad`` of ``module``: shared parameters get the combiner's direction over
    the per-task gradients, per-task parameters (rows touched by one task only) get the
    plain sum. Returns the (K, P) shared gradient matrix (for diagnostics)."""
    shared, G = split_shared(grads, per_task_names)
    direction = combiners.combine(combiner, G, **options)
    params = dict(module.named_parameters())
    offset = 0
    for n in shared:
        p = params[n]
        p.grad = direction[offset:offset + p.numel()].view_as(p).clone()
        offset += p.numel()
    for n in per_task_names:
        params[n].grad = grads[n].sum(0)
    return G


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
