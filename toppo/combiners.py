"""Multi-task gradient combiners: pure functions from per-task gradients to one direction.

Each takes ``G`` shaped (K tasks, P parameters) — row k is the gradient of task k's loss
w.r.t. the shared parameters — and returns the (P,) direction the optimiser descends
along (``sum`` returns ``G.sum(0)``, plain multi-task training). The small K x K problems
(task weights) are solved on the CPU in float64; only the Gram matrix G G^T and the
final ``G^T w`` touch the P-sized data (in G's dtype, on G's device), so the cost is
O(K^2 P) plus a K-sized solve.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy.optimize import least_squares, minimize


def _gram(G: torch.Tensor) -> np.ndarray:
    """G G^T (K x K), computed in G's dtype on G's device, returned as float64 numpy."""
    return (G @ G.T).to(torch.float64).cpu().numpy()


def _weighted(G: torch.Tensor, w: np.ndarray) -> torch.Tensor:
    """G^T w, in G's dtype and device."""
    return torch.as_tensor(w, dtype=G.dtype, device=G.device) @ G


def sum(G: torch.Tensor) -> torch.Tensor:  # noqa: A001  (the public name is the combiner's)
    """Plain sum of the task gradients: the gradient of the summed loss."""
    return G.sum(0)


def pcgrad(G: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """PCGrad (Yu et al. 2020, "Gradient Surgery for Multi-Task Learning").

    For each task i, visit the other tasks j in a random order; whenever the (already
    projected) g_i conflicts with the original g_j (<g_i, g_j> < 0), remove its component
    along g_j: g_i <- g_i - <g_i, g_j> / |g_j|^2 g_j. Return the sum of the projected g_i.

    Every projected g_i stays a combination of the original rows, g_i = sum_j C[i, j] g_j,
    so the whole procedure runs on the K x K Gram matrix and forms one G^T w at the end.
    The order is drawn from ``generator`` (torch's global generator when None).
    """
    K = G.shape[0]
    gram = _gram(G)
    sq = np.diag(gram)
    C = np.eye(K)
    orders = torch.argsort(torch.rand(K, K, generator=generator), dim=1).numpy()
    rows = np.arange(K)
    for step in range(K):  # every task i takes its step-th projection at once
        j = orders[:, step]
        dot = np.einsum("ik,ik->i", C, gram[:, j].T)  # <g_i', g_j(i)>
        project = (j != rows) & (dot < 0) & (sq[j] > 0)
        C[rows[project], j[project]] -= dot[project] / sq[j[project]]
    return _weighted(G, C.sum(0))


def cagrad(G: torch.Tensor, c: float = 0.4) -> torch.Tensor:
    """CAGrad (Liu et al. 2021, "Conflict-Averse Gradient Descent for Multi-task Learning").

    With g0 the average gradient and phi = c^2 |g0|^2, find simplex weights w minimising
    g_w . g0 + sqrt(phi) |g_w| (g_w = G^T w), then d = g0 + sqrt(phi) / |g_w| g_w. As in the
    official code the weights come from SLSQP on the simplex and d is divided by 1 + c^2;
    the result is multiplied by K so it is on the scale of ``sum`` (c = 0 gives G.sum(0)).
    """
    K = G.shape[0]
    gram = _gram(G)
    g0_norm = np.sqrt(max(gram.mean(), 0.0))  # |g0| = sqrt(1^T GG^T 1) / K
    radius = c * g0_norm
    b = np.full(K, 1.0 / K)
    if radius == 0.0 or K == 1:
        return G.sum(0) / (1 + c**2) if K > 1 else G[0] / (1 + c**2)

    gb = gram @ b

    def objective(w: np.ndarray) -> tuple[float, np.ndarray]:
        gw = gram @ w
        norm = np.sqrt(max(w @ gw, 0.0) + 1e-12)
        return float(w @ gb + radius * norm), gb + radius * gw / norm

    res = minimize(objective, b, jac=True, method="SLSQP", bounds=[(0.0, 1.0)] * K,
                   constraints={"type": "eq", "fun": lambda w: w.sum() - 1.0,
                                "jac": lambda w: np.ones_like(w)})
    w = np.clip(res.x, 0.0, None)
    gw_norm = np.sqrt(max(w @ gram @ w, 0.0))
    coef = b + (radius / (gw_norm + 1e-12)) * w  # d = G^T (b + lambda w)
    return _weighted(G, coef * K / (1 + c**2))


def fairgrad(G: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """FairGrad (Ban & Ji 2024, "Fair Resource Allocation in Multi-Task Learning").

    Find weights w > 0 with (G G^T w)_i = w_i^(-1/alpha) for every task (alpha-fair
    utility maximisation; alpha = 1 is proportional fairness) and return d = G^T w.
    Solved, as in the official code, by bounded least squares on GG^T w - w^(-1/alpha).
    For conditioning the Gram matrix is scaled to unit mean diagonal first and w mapped
    back (w = s^(-2 alpha / (alpha + 1)) w' for G = s G'), which changes nothing exact.
    Tasks with an all-zero gradient get weight 0 (they contribute nothing either way).
    """
    K = G.shape[0]
    gram = _gram(G)
    live = np.flatnonzero(np.diag(gram) > 0)
    w = np.zeros(K)
    if live.size:
        A = gram[np.ix_(live, live)]
        s2 = float(np.mean(np.diag(A)))  # s^2
        A = A / s2
        x0 = np.ones(live.size)
        res = least_squares(lambda x: A @ x - np.power(x, -1.0 / alpha), x0,
                            jac=lambda x: A + np.diag(np.power(x, -1.0 / alpha - 1.0) / alpha),
                            bounds=(1e-12, np.inf), xtol=1e-12, ftol=1e-12, gtol=1e-12)
        w[live] = res.x * s2 ** (-alpha / (alpha + 1))
    return _weighted(G, w)


COMBINERS: dict[str, Callable[..., torch.Tensor]] = {
    "sum": sum, "pcgrad": pcgrad, "cagrad": cagrad, "fairgrad": fairgrad,
}


def get(name: str) -> Callable[..., torch.Tensor]:
    """The combiner called ``name``."""
    try:
        return COMBINERS[name]
    except KeyError:
        raise ValueError(f"unknown combiner {name!r}; known: {', '.join(COMBINERS)}") from None


def combine(name: str, G: torch.Tensor, *, cagrad_c: float = 0.4, fairgrad_alpha: float = 1.0,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """Dispatch to combiner ``name`` with the options that apply to it."""
    fn = get(name)
    if fn is pcgrad:
        return fn(G, generator=generator)
    if fn is cagrad:
        return fn(G, c=cagrad_c)
    if fn is fairgrad:
        return fn(G, alpha=fairgrad_alpha)
    return fn(G)


__all__ = ["COMBINERS", "cagrad", "combine", "fairgrad", "get", "pcgrad", "sum"]
