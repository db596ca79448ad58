"""Per-task gradients of a network, and their combination per side (diagnostics on them:
``toppo.algo.diagnostics``).

``per_task_grads`` returns, for every parameter, a (K, *shape) tensor whose row k is the
gradient of task k's loss. Three ways to compute them (``TrainConfig.per_task_grad_impl``):

* ``vmap`` (the default): ``torch.func.grad`` vmapped over the task axis of a stratified
  minibatch (K, m, ...), one batched backward instead of K python-level ones;
* ``loop``: the reference, K separate ``autograd.grad`` calls (tests);
* ``fused``: one forward and one backward of the whole minibatch, as plain PPO's, then each
  layer's per-task weight gradient from its inputs and output gradients, task by task
  (``_fused_grads``), written side by side into the (K, P) matrix the combiner reads, whose
  Gram matrix is then ``combiners.blocked_gram``. The cheapest on CPU; the same gradients
  and directions up to float rounding, not bit for bit, so it is a switch (the recorded runs
  are ``vmap``'s).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from toppo.algo import combiners
from toppo.specs.registry import COMBINERS

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
    if impl == "fused":
        return _fused_grads(module, loss_fn, batch)
    raise ValueError(f"per_task_grad_impl must be 'vmap', 'loop' or 'fused', got {impl!r}")


def _fused_grads(module: nn.Module, loss_fn: TaskLoss, batch: dict[str, torch.Tensor]
                 ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """``per_task_grads`` by one forward of the K * m samples and one backward of the summed
    task losses. Every sample belongs to one task, so the gradient at a layer's output for
    a sample of task k is that of task k's loss; a Linear layer's per-task weight gradient is
    then task k's output gradients times its inputs (one batched matmul over the tasks), a
    LayerNorm's is the per-task sum of output gradient times normalised input. Parameters
    only one task touches (``per_task_param_names``) take their gradient from the same
    backward, placed in its task's row. Modules with other parameters are refused."""
    K, m = next(iter(batch.values())).shape[:2]
    per_task = module.per_task_param_names()
    layers = {name: layer for name, layer in module.named_modules()
              if isinstance(layer, (nn.Linear, nn.LayerNorm))
              and any(f"{name}.{p}" not in per_task for p, _ in layer.named_parameters())}
    covered = {f"{name}.{p}" for name, layer in layers.items() for p, _ in layer.named_parameters()}
    if unknown := {n for n, _ in module.named_parameters()} - covered - per_task:
        raise ValueError(f"per_task_grad_impl=fused: no per-task gradient rule for {sorted(unknown)}")
    seen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # layer name -> (input, output)
    hooks = [layer.register_forward_hook(
        lambda layer, args, out, name=name: seen.__setitem__(name, (args[0].detach(), out)))
        for name, layer in layers.items()]
    try:
        def forward(obs: torch.Tensor, task: torch.Tensor):  # (K, m, ...) in and out
            out = module(obs.flatten(0, 1), task.flatten(0, 1))
            return tuple(o.unflatten(0, (K, m)) for o in out) if isinstance(out, tuple) \
                else out.unflatten(0, (K, m))
        losses, stats = loss_fn(forward, batch)  # (K,) task losses, (K,) stats
    finally:
        for hook in hooks:
            hook.remove()
    params = dict(module.named_parameters())
    wrt = [seen[name][1] for name in layers] + [params[n] for n in sorted(per_task)]
    out_grads = torch.autograd.grad(losses.sum(), wrt, allow_unused=True)
    # the shared parameters' rows are laid out side by side in one (K, P) matrix, in the
    # module's order, so split_shared takes them as they are instead of copying
    grads = _matrix_views(K, {n: p for n, p in params.items() if n not in per_task}, losses)
    for (name, layer), d_out in zip(layers.items(), out_grads):
        x, _ = seen[name]
        d_out = d_out.unflatten(0, (K, m))
        weight, bias = grads[f"{name}.weight"], grads[f"{name}.bias"]
        if isinstance(layer, nn.Linear):
            torch.bmm(d_out.transpose(1, 2), x.unflatten(0, (K, m)), out=weight)
        else:
            x_hat = torch.nn.functional.layer_norm(x, layer.normalized_shape, eps=layer.eps)
            torch.sum(d_out * x_hat.unflatten(0, (K, m)), 1, out=weight)
        torch.sum(d_out, 1, out=bias)
    rows = torch.arange(K, device=losses.device)
    for n, total in zip(sorted(per_task), out_grads[len(layers):]):
        grads[n] = torch.zeros(K, *params[n].shape, dtype=params[n].dtype, device=params[n].device)
        if total is not None:
            grads[n][rows, rows] = total[rows]  # row k of the parameter is task k's alone
    return {n: grads[n] for n in params}, {k: v.detach() for k, v in stats.items()}


def _matrix_views(K: int, params: dict[str, torch.Tensor], like: torch.Tensor) -> dict[str, torch.Tensor]:
    """{name: (K, *shape) view}: the columns of one new (K, P) matrix, parameter after parameter."""
    G = torch.empty(K, sum(p.numel() for p in params.values()), dtype=like.dtype, device=like.device)
    views, offset = {}, 0
    for n, p in params.items():
        views[n] = G[:, offset:offset + p.numel()].view(K, *p.shape)
        offset += p.numel()
    return views


def _side_by_side(rows: list[torch.Tensor]) -> torch.Tensor | None:
    """The (K, P) matrix whose consecutive column blocks are ``rows`` (K, n_i), when they are
    exactly that (views ``_matrix_views`` made, in order); None otherwise."""
    first = rows[0]
    size = first.element_size()
    for a, b in zip(rows, rows[1:]):
        if b.untyped_storage().data_ptr() != first.untyped_storage().data_ptr() \
                or b.data_ptr() != a.data_ptr() + a.shape[1] * size or b.stride() != first.stride():
            return None
    if first.stride(1) != 1:
        return None
    return first.as_strided((first.shape[0], sum(r.shape[1] for r in rows)), first.stride())


def split_shared(grads: dict[str, torch.Tensor], per_task_names: set[str]) -> tuple[list[str], torch.Tensor]:
    """Names of the fully shared parameters and their per-task gradients as (K, P): a view
    when the gradients already lie side by side in one matrix (``fused``), else a copy."""
    shared = [n for n in grads if n not in per_task_names]
    K = next(iter(grads.values())).shape[0]
    rows = [grads[n].reshape(K, -1) for n in shared]
    joined = _side_by_side(rows)
    return shared, joined if joined is not None else torch.cat(rows, dim=1)


def assign_combined(module: nn.Module, grads: dict[str, torch.Tensor], per_task_names: set[str],
                    combiner: str, *, blocked: bool = False, **options) -> torch.Tensor:
    """Write ``.grad`` of ``module``: shared parameters get the combiner's direction over
    the per-task gradients, per-task parameters (rows touched by one task only) get the
    plain sum. ``blocked``: the combiner reads ``combiners.blocked_gram`` (the ``fused``
    path's). Returns the (K, P) shared gradient matrix (for diagnostics)."""
    shared, G = split_shared(grads, per_task_names)
    gram = combiners.blocked_gram(G) if blocked and COMBINERS[combiner].gram else None
    direction = combiners.combine(combiner, G, gram=gram, **options)
    params = dict(module.named_parameters())
    offset = 0
    for n in shared:
        p = params[n]
        p.grad = direction[offset:offset + p.numel()].view_as(p)  # a view: direction is ours
        offset += p.numel()
    for n in per_task_names:
        params[n].grad = grads[n].sum(0)
    return G
