"""Combiners, checked on their defining properties with exact expectations."""

import numpy as np
import pytest
import torch

from toppo import combiners


def test_sum_is_the_gradient_of_the_summed_loss():
    torch.manual_seed(0)
    w = torch.randn(5, requires_grad=True)
    xs = [torch.randn(5) for _ in range(3)]
    losses = [((w * x).sum() - k) ** 2 for k, x in enumerate(xs)]
    G = torch.stack([torch.autograd.grad(loss, w, retain_graph=True)[0] for loss in losses])
    total = torch.autograd.grad(torch.stack(losses).sum(), w)[0]
    torch.testing.assert_close(combiners.sum(G), total)


def test_pcgrad_two_conflicting_tasks_hand_computed():
    G = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])
    g1, g2 = G
    # g1' = g1 - <g1,g2>/|g2|^2 g2 = [1,0] + 1/2 [-1,1] = [0.5, 0.5]
    # g2' = g2 - <g2,g1>/|g1|^2 g1 = [-1,1] + [1,0]   = [0, 1]
    d = combiners.pcgrad(G, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(d, torch.tensor([0.5, 1.5]))
    p1, p2 = torch.tensor([0.5, 0.5]), torch.tensor([0.0, 1.0])
    assert torch.dot(p1, g2).abs() < 1e-7 and torch.dot(p2, g1).abs() < 1e-7
    assert torch.dot(d, g1) >= 0 and torch.dot(d, g2) >= 0


def test_pcgrad_without_conflict_is_the_sum():
    G = torch.tensor([[1.0, 2.0, 0.0], [0.5, 0.0, 1.0], [0.0, 1.0, 1.0]])
    torch.testing.assert_close(combiners.pcgrad(G), G.sum(0))


def test_pcgrad_random_two_task_conflicts_leave_no_negative_inner_product():
    gen = torch.Generator().manual_seed(1)
    for _ in range(50):
        G = torch.randn(2, 7, generator=gen, dtype=torch.float64)
        d = combiners.pcgrad(G, generator=gen)
        if torch.dot(G[0], G[1]) < 0:
            g1p = G[0] - torch.dot(G[0], G[1]) / G[1].norm() ** 2 * G[1]
            g2p = G[1] - torch.dot(G[1], G[0]) / G[0].norm() ** 2 * G[0]
            assert abs(torch.dot(g1p, G[1])) < 1e-10 and abs(torch.dot(g2p, G[0])) < 1e-10
            torch.testing.assert_close(d, g1p + g2p)
        else:
            torch.testing.assert_close(d, G.sum(0))


def test_cagrad_with_zero_radius_is_the_sum():
    G = torch.randn(4, 6, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(combiners.cagrad(G, c=0.0), G.sum(0))


def test_cagrad_weights_are_optimal_on_the_simplex_and_improve_the_worst_task():
    gen = torch.Generator().manual_seed(3)
    G = torch.randn(3, 5, generator=gen, dtype=torch.float64)
    G[1] = -0.8 * G[0] + 0.1 * G[1]  # a strong conflict
    c = 0.5
    d = combiners.cagrad(G, c=c)
    gram = (G @ G.T).numpy()
    K = 3
    b = np.full(K, 1 / K)
    radius = c * np.sqrt(gram.mean())

    def objective(w):
        return w @ gram @ b + radius * np.sqrt(w @ gram @ w)
    # recover w from d: d*(1+c^2)/K = G^T(b + lam w); compare objective with random simplex points
    rng = np.random.default_rng(0)
    best_random = min(objective(rng.dirichlet(np.ones(K))) for _ in range(2000))
    coef = np.linalg.lstsq(G.numpy().T, d.numpy() * (1 + c**2) / K, rcond=None)[0] - b
    w = coef / coef.sum()
    assert objective(w) <= best_random + 1e-6
    g0 = G.mean(0)
    assert (G @ d).min() / d.norm() >= (G @ g0).min() / g0.norm() - 1e-9


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_fairgrad_optimality_condition(alpha):
    G = torch.randn(5, 40, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    d = combiners.fairgrad(G, alpha=alpha)
    w = torch.linalg.lstsq(G.T, d[:, None]).solution[:, 0]
    assert torch.all(w > 0)
    lhs = (G @ G.T @ w) * w ** (1 / alpha)
    torch.testing.assert_close(lhs, torch.ones(5, dtype=torch.float64), rtol=1e-6, atol=1e-6)


def test_fairgrad_orthogonal_gradients_weights_are_inverse_norms():
    norms = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)
    G = torch.diag(norms)
    d = combiners.fairgrad(G, alpha=1.0)
    # (GG^T w)_i = n_i^2 w_i = 1 / w_i  ->  w_i = 1 / n_i  ->  d_i = n_i w_i = 1
    torch.testing.assert_close(d, torch.ones(3, dtype=torch.float64))


def test_fairgrad_alpha_one_is_scale_invariant_and_handles_a_zero_row():
    G = torch.randn(4, 10, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    torch.testing.assert_close(combiners.fairgrad(1e-6 * G), combiners.fairgrad(G), rtol=1e-6, atol=1e-9)
    G[2] = 0
    d = combiners.fairgrad(G)
    assert torch.isfinite(d).all()


def test_lookup_dtype_and_size():
    assert combiners.get("pcgrad") is combiners.pcgrad
    with pytest.raises(ValueError, match="unknown combiner 'mgda'.*sum, pcgrad, cagrad, fairgrad"):
        combiners.get("mgda")
    G = torch.randn(50, 10_000)
    for name in combiners.COMBINERS:
        d = combiners.combine(name, G, cagrad_c=0.4, fairgrad_alpha=1.0)
        assert d.shape == (10_000,) and d.dtype == torch.float32 and torch.isfinite(d).all()
