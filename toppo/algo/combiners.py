"""Multi-task gradient combiners: pure functions from per-task gradients to one direction.

Each takes ``G`` shaped (K tasks, P parameters) — row k is the gradient of task k's loss
w.r.t. the shared parameters — and returns the (P,) direction the optimiser descends
along (``sum`` returns ``G.sum(0)``, plain multi-task training), in G's dtype and on G's
device.

Every combiner's direction is a combination of the rows, d = G^T w, and the weights w
only depend on the Gram matrix G G^T. So only two steps touch the P-sized data (in G's
dtype, on G's device): forming G G^T and forming G^T w. The K x K problems are solved on
the CPU in float64 numpy, after scaling the Gram matrix to unit mean diagonal (the
weights of CAGrad are invariant to that scale and FairGrad's transform exactly; the
solvers' absolute tolerances then mean the same thing for any gradient magnitude).
Cost: O(K^2 P) plus a K-sized solve. A caller that formed G G^T its own way passes it as
``gram=`` (``blocked_gram``, the ``fused`` per-task gradients' faster one); by default each
combiner forms it as ``_gram`` does, the bits every recorded run was made with.

The names the config accepts, and each function's options, are toppo.specs.registry.COMBINERS
(adding one: docs/extending.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from scipy.optimize import least_squares, minimize

from toppo.specs.registry import COMBINERS


def _gram(G: torch.Tensor) -> np.ndarray:
    """G G^T (K x K), computed in G's dtype on G's device, returned as float64 numpy."""
    return (G @ G.T).to(torch.float64).cpu().numpy()


def blocked_gram(G: torch.Tensor, block: int = 4096) -> np.ndarray:
    """G G^T as ``_gram`` returns it, summed over column blocks of ``block`` parameters (one
    batched matrix product, then the partial Gram matrices added). Rounded otherwise than
    ``_gram`` and closer to float64 (fewer terms per running sum); on one CPU core about 2.5x
    faster at K=10, P=340k, where one (K, P) x (P, K) product is memory-bound and poorly
    blocked. The ``fused`` per-task gradients use it (toppo.algo.pertask)."""
    K, P = G.shape
    n = P // block
    head = G[:, :n * block].reshape(K, n, block).transpose(0, 1)  # (n, K, block) views
    tail = G[:, n * block:]
    return (torch.bmm(head, head.transpose(1, 2)).sum(0) + tail @ tail.T).to(torch.float64).cpu().numpy()


def _normalised(gram: np.ndarray) -> tuple[np.ndarray, float]:
    """(gram / s2, s2) with s2 the mean squared row norm (1 when all rows are zero)."""
    s2 = float(np.mean(np.diag(gram)))
    s2 = s2 if s2 > 0 else 1.0
    return gram / s2, s2


def _weighted(G: torch.Tensor, w: np.ndarray) -> torch.Tensor:
    """G^T w, in G's dtype and device."""
    return torch.as_tensor(w, dtype=G.dtype, device=G.device) @ G


def sum(G: torch.Tensor) -> torch.Tensor:  # noqa: A001  (the public name is the combiner's)
    """Plain sum of the task gradients: the gradient of the summed loss, d = G^T 1."""
    return G.sum(0)


sum_ = sum  # alias that does not shadow the builtin where it is imported by name


def pcgrad(G: torch.Tensor, generator: torch.Generator | None = None,
           gram: np.ndarray | None = None) -> torch.Tensor:
    """PCGrad (Yu et al. 2020, "Gradient Surgery for Multi-Task Learning", Alg. 1).

    For each task i, visit the other tasks j in a random order; whenever the (already
    projected) g_i' conflicts with the *original* g_j (<g_i', g_j> < 0), remove its
    component along g_j:  g_i' <- g_i' - <g_i', g_j> / |g_j|^2 g_j.
    Return d = sum_i g_i' (the official code sums; PCGrad's mean variant is d / K).

    Every projected g_i' stays a combination of the original rows, g_i' = sum_j C[i, j] g_j,
    so <g_i', g_j> = (C G G^T)[i, j] and the whole procedure runs on the K x K Gram
    matrix (O(K^3)); d = G^T (C^T 1) is formed once at the end. All K tasks take their
    s-th projection together (step s of their own orders), which is exact because task
    i's update only reads row i of C.

    Randomness: each task's order is a uniform random permutation drawn from
    ``generator`` (on the generator's device; deterministic for a seeded generator), or
    from torch's global RNG when ``generator`` is None (reproducible under
    ``torch.manual_seed``). Tasks with an all-zero gradient are never projected onto.
    """
    K = G.shape[0]
    gram = _gram(G) if gram is None else gram
    sq = np.diag(gram)
    C = np.eye(K)
    device = generator.device if generator is not None else "cpu"
    keys = torch.rand(K, K, generator=generator, device=device)
    orders = torch.argsort(keys, dim=1).cpu().numpy()  # row i: task i's visiting order
    rows = np.arange(K)
    for step in range(K):
        j = orders[:, step]  # the task each i projects against at this step
        dot = np.einsum("ik,ki->i", C, gram[:, j])  # <g_i', g_j(i)> = sum_k C[i,k] gram[k,j(i)]
        project = (j != rows) & (dot < 0) & (sq[j] > 0)
        C[rows[project], j[project]] -= dot[project] / sq[j[project]]
    return _weighted(G, C.sum(0))


def cagrad(G: torch.Tensor, c: float = 0.4, gram: np.ndarray | None = None) -> torch.Tensor:
    """CAGrad (Liu et al. 2021, "Conflict-Averse Gradient Descent for Multi-task Learning").

    With g0 = G^T 1 / K the average gradient and phi = c^2 |g0|^2, CAGrad solves
        max_d min_i <g_i, d>   s.t. |d - g0| <= sqrt(phi),
    whose dual is  min_{w in simplex} F(w) = g_w^T g0 + sqrt(phi) |g_w|,  g_w = G^T w,
    and returns d = g0 + sqrt(phi) / |g_w| g_w. In Gram space (A = G G^T, b = 1/K):
        F(w) = w^T A b + c sqrt(b^T A b) sqrt(w^T A w),   d = G^T (b + lambda w),
        lambda = c sqrt(b^T A b) / sqrt(w^T A w).
    As in the official code, w comes from SLSQP on the simplex (started at b, analytic
    gradient, on the unit-mean-diagonal Gram so the tolerance is scale-free) and d is
    divided by 1 + c^2 (its ``rescale=1``). The result is multiplied by K so it is on the
    scale of ``sum``: c = 0 returns exactly G.sum(0), and K = 1 gives (1 + c)/(1 + c^2) g.
    Degenerate cases: g0 = 0 returns G.sum(0) / (1 + c^2) (d = g0); |g_w| = 0 at the
    optimum takes lambda = 0 (the official code's 1e-8 guard gives the same limit).
    """
    K = G.shape[0]
    scale = K / (1 + c**2)
    A, _ = _normalised(_gram(G) if gram is None else gram)
    b = np.full(K, 1.0 / K)
    radius = c * np.sqrt(max(float(b @ A @ b), 0.0))  # c |g0| in normalised units
    if radius == 0.0:
        return G.sum(0) if c == 0 else G.sum(0) / (1 + c**2)

    if K == 1:
        w = np.ones(1)
    else:
        Ab = A @ b

        def objective(w: np.ndarray) -> tuple[float, np.ndarray]:
            Aw = A @ w
            norm = np.sqrt(max(float(w @ Aw), 0.0) + 1e-12)
            return float(w @ Ab + radius * norm), Ab + radius * Aw / norm

        res = minimize(objective, b, jac=True, method="SLSQP", bounds=[(0.0, 1.0)] * K,
                       constraints={"type": "eq", "fun": lambda w: w.sum() - 1.0,
                                    "jac": lambda w: np.ones_like(w)},
                       options={"ftol": 1e-12, "maxiter": 500})
        w = np.clip(res.x, 0.0, None)
        w = w / w.sum()
    gw_norm = np.sqrt(max(float(w @ A @ w), 0.0))
    lam = radius / gw_norm if gw_norm > 1e-8 else 0.0
    return _weighted(G, (b + lam * w) * scale)


def _fairgrad_residual(A: np.ndarray, x: np.ndarray, p: float) -> float:
    """max_i |(A x)_i x_i^p - 1|: FairGrad's optimality condition, relative (0 at the root)."""
    return float(np.max(np.abs((A @ x) * x**p - 1.0)))


def _fairgrad_newton(A: np.ndarray, p: float, tol: float = 1e-12, max_iter: int = 100) -> np.ndarray:
    """Approximate root of A x = x^(-p), x > 0, by damped Newton (check the residual).

    The root is the minimiser of the strictly convex f(x) = x^T A x / 2 - sum_i h(x_i) with
    h'(x) = x^(-p) (h = log for p = 1), so Newton steps with an Armijo backtracking line
    search on f (kept inside x > 0) converge globally whenever the root exists. Close to
    the root f stops resolving the decrease in float64, so a step is also accepted when it
    decreases the residual (the quadratic-convergence phase).
    """
    def f(x: np.ndarray) -> float:
        # h(x) = (x^(1-p) - 1) / (1 - p), written to stay accurate as p -> 1 (h -> log)
        h = np.log(x) if p == 1 else np.expm1((1.0 - p) * np.log(x)) / (1.0 - p)
        return 0.5 * float(x @ A @ x) - float(h.sum())

    x = np.ones(A.shape[0])
    fx, res = f(x), _fairgrad_residual(A, x, p)
    for _ in range(max_iter):
        if res < tol:
            break
        grad = A @ x - x ** (-p)
        hess = A + np.diag(p * x ** (-p - 1.0))
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            break
        t, slope = 1.0, float(grad @ step)
        while t > 1e-12:  # backtrack into x > 0, then to a decrease of f or of the residual
            x_new = x - t * step
            if np.all(x_new > 0):
                f_new, res_new = f(x_new), _fairgrad_residual(A, x_new, p)
                if f_new <= fx - 1e-4 * t * slope or res_new < res:
                    break
            t *= 0.5
        else:
            break  # no progress left at float64 resolution
        x, fx, res = x_new, f_new, res_new
    return x


def _fairgrad_weights(gram: np.ndarray, alpha: float) -> np.ndarray:
    """FairGrad's weights w (K,) for the Gram matrix ``gram`` = G G^T (float64 numpy)."""
    if alpha <= 0:
        raise ValueError(f"fairgrad alpha must be positive, got {alpha}")
    live = np.flatnonzero(np.diag(gram) > 0)
    w = np.zeros(gram.shape[0])
    if live.size:
        A, s2 = _normalised(gram[np.ix_(live, live)])
        p = 1.0 / alpha
        x = _fairgrad_newton(A, p)
        if not _fairgrad_residual(A, x, p) < 1e-8:  # no positive root: the official solver
            x_ls = least_squares(lambda x: A @ x - np.power(x, -p), np.ones(live.size),
                                 jac=lambda x: A + np.diag(p * np.power(x, -p - 1.0)),
                                 bounds=(1e-12, np.inf), xtol=1e-12, ftol=1e-12, gtol=1e-12).x
            if not _fairgrad_residual(A, x, p) <= _fairgrad_residual(A, x_ls, p):
                x = x_ls
        w[live] = x * s2 ** (-alpha / (alpha + 1))
    return w


def fairgrad(G: torch.Tensor, alpha: float = 1.0, gram: np.ndarray | None = None) -> torch.Tensor:
    """FairGrad (Ban & Ji 2024, "Fair Resource Allocation in Multi-Task Learning").

    Find weights w > 0 with  (G G^T w)_i = w_i^(-1/alpha)  for every task i (the optimality
    condition of alpha-fair utility maximisation over the tasks' loss decreases
    <g_i, d>; alpha = 1 is proportional fairness) and return d = G^T w.

    Solver: the equation is the stationarity condition of a strictly convex function of
    w (see ``_fairgrad_newton``), solved by damped Newton in float64 (tolerance 1e-12 on
    (G G^T w)_i w_i^(1/alpha) - 1; a few ms for K = 50). If Newton fails (no positive
    root exists, e.g. for exactly opposed gradients) it falls back to the official
    code's bounded least squares on G G^T w - w^(-1/alpha) (scipy ``least_squares``).
    The Gram matrix is scaled to unit mean diagonal first and w mapped back exactly
    (G = s G' gives w = s^(-2 alpha / (alpha + 1)) w').
    Degenerate cases: tasks with an all-zero gradient get weight 0 (they contribute
    nothing to d either way, and the equation has no root for them); all-zero G gives
    d = 0; K = 1 gives w = |g|^(-2 alpha / (alpha + 1)).
    """
    return _weighted(G, _fairgrad_weights(_gram(G) if gram is None else gram, alpha))


def get(name: str) -> Callable[..., torch.Tensor]:
    """The function of combiner ``name`` (toppo.specs.registry.COMBINERS; ValueError naming the
    known ones otherwise)."""
    try:
        return COMBINERS[name].load()
    except KeyError:
        raise ValueError(f"unknown combiner {name!r}; known: {', '.join(COMBINERS)}") from None


def options(name: str, cfg: Any, side: str) -> dict[str, Any]:
    """Combiner ``name``'s keyword options on ``side`` (actor or critic), read from the
    TrainConfig fields the registry names (``{"alpha": cfg.critic_fairgrad_alpha}``)."""
    return {kw: getattr(cfg, field.format(side=side))
            for kw, field in COMBINERS[name].options.items()}


def combine(name: str, G: torch.Tensor, *, generator: torch.Generator | None = None,
            gram: np.ndarray | None = None, **options: Any) -> torch.Tensor:
    """Combiner ``name`` applied to ``G``, given its keyword options (``c=0.4``; absent ones:
    the function's defaults; keywords it does not take are ignored), ``generator`` if it
    draws random numbers (registry: ``random``) and ``gram``, G G^T already formed (e.g.
    ``blocked_gram``), if it reads the Gram matrix (registry: ``gram``)."""
    fn = get(name)
    entry = COMBINERS[name]
    kwargs = {kw: options[kw] for kw in entry.options if kw in options}
    if entry.random:
        kwargs["generator"] = generator
    if entry.gram and gram is not None:
        kwargs["gram"] = gram
    return fn(G, **kwargs)


__all__ = ["blocked_gram", "cagrad", "combine", "fairgrad", "get", "options", "pcgrad", "sum", "sum_"]
