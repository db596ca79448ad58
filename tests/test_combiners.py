"""Combiners, checked on their defining properties with exact expectations."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from toppo.algo import combiners
from toppo.specs.registry import COMBINERS, PAPER_COMBINERS


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------- sum


def test_sum_is_the_gradient_of_the_summed_loss():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    params = list(model.parameters())
    losses = [(model(torch.randn(6, 4)) - k).pow(2).mean() for k in range(3)]

    def flat_grad(loss: torch.Tensor) -> torch.Tensor:
        return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params, retain_graph=True)])

    G = torch.stack([flat_grad(loss) for loss in losses])
    total = flat_grad(torch.stack(losses).sum())
    assert G.shape == (3, sum(p.numel() for p in params))
    torch.testing.assert_close(combiners.sum(G), total, rtol=1e-6, atol=1e-6)
    assert combiners.sum_ is combiners.sum


# ------------------------------------------------------------------------------- PCGrad


def _pcgrad_reference(G: np.ndarray, orders: list[list[int]]) -> np.ndarray:
    """Algorithm 1 of Yu et al. 2020 written out: task i visits orders[i] (the others)."""
    out = np.zeros(G.shape[1])
    for i, order in enumerate(orders):
        g = G[i].copy()
        for j in order:
            dot = g @ G[j]
            if dot < 0:
                g -= dot / (G[j] @ G[j]) * G[j]
        out += g
    return out


def test_pcgrad_two_conflicting_tasks_hand_computed():
    G = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])
    g1, g2 = G
    # g1' = g1 - <g1,g2>/|g2|^2 g2 = [1,0] + 1/2 [-1,1] = [0.5, 0.5]
    # g2' = g2 - <g2,g1>/|g1|^2 g1 = [-1,1] + [1,0]   = [0, 1]
    p1, p2 = torch.tensor([0.5, 0.5]), torch.tensor([0.0, 1.0])
    assert torch.dot(p1, g2) == 0 and torch.dot(p2, g1) == 0  # no conflict left
    for seed in range(3):  # with two tasks the order does not matter
        d = combiners.pcgrad(G, generator=_gen(seed))
        torch.testing.assert_close(d, p1 + p2, rtol=0, atol=1e-7)
    assert torch.dot(d, g1) >= 0 and torch.dot(d, g2) >= 0


def test_pcgrad_without_conflict_is_exactly_the_sum():
    G = torch.tensor([[1.0, 2.0, 0.0], [0.5, 0.0, 1.0], [0.0, 1.0, 1.0]])
    assert torch.equal(combiners.pcgrad(G, generator=_gen(0)), G.sum(0))


def test_pcgrad_random_two_task_pairs_match_the_formula():
    gen = _gen(1)
    conflicts = 0
    for _ in range(50):
        G = torch.randn(2, 7, generator=gen, dtype=torch.float64)
        g1, g2 = G
        d = combiners.pcgrad(G, generator=gen)
        if torch.dot(g1, g2) < 0:
            conflicts += 1
            g1p = g1 - torch.dot(g1, g2) / g2.norm() ** 2 * g2
            g2p = g2 - torch.dot(g2, g1) / g1.norm() ** 2 * g1
            assert abs(torch.dot(g1p, g2)) < 1e-12 and abs(torch.dot(g2p, g1)) < 1e-12
            torch.testing.assert_close(d, g1p + g2p, rtol=1e-12, atol=1e-12)
        else:
            torch.testing.assert_close(d, G.sum(0), rtol=1e-12, atol=1e-12)
    assert 10 < conflicts < 40


@pytest.mark.parametrize("K", [3, 4])
def test_pcgrad_matches_the_written_out_algorithm_for_some_task_orders(K):
    """The Gram-space, all-tasks-at-once version equals Algorithm 1 under one of the
    (K-1)!^K possible visiting orders, and different seeds reach different orders."""
    G = torch.randn(K, 6, generator=_gen(K), dtype=torch.float64)
    G[1] = -0.7 * G[0] + 0.3 * G[1]  # make sure there are conflicts
    Gn = G.numpy()
    per_task = [list(itertools.permutations([j for j in range(K) if j != i])) for i in range(K)]
    outcomes = np.stack([_pcgrad_reference(Gn, list(orders))
                         for orders in itertools.product(*per_task)])
    hit = set()
    for seed in range(12):
        d = combiners.pcgrad(G, generator=_gen(seed)).numpy()
        err = np.abs(outcomes - d).max(axis=1)
        assert err.min() < 1e-12
        hit.add(round(float(d @ np.arange(1, 7)), 9))
    assert len(hit) > 1


def test_pcgrad_randomness_is_reproducible():
    G = torch.randn(6, 9, generator=_gen(7))
    a = combiners.pcgrad(G, generator=_gen(3))
    assert torch.equal(a, combiners.pcgrad(G, generator=_gen(3)))
    torch.manual_seed(11)
    b = combiners.pcgrad(G)
    torch.manual_seed(11)
    assert torch.equal(b, combiners.pcgrad(G))


def test_pcgrad_ignores_zero_rows_and_single_task():
    G = torch.tensor([[1.0, 0.0], [0.0, 0.0], [-1.0, 1.0]])
    torch.testing.assert_close(combiners.pcgrad(G, generator=_gen(0)), torch.tensor([0.5, 1.5]))
    g = torch.tensor([[3.0, -4.0]])
    assert torch.equal(combiners.pcgrad(g), g[0])


# ------------------------------------------------------------------------------- CAGrad


def test_cagrad_with_zero_radius_is_exactly_the_sum():
    G = torch.randn(4, 6, generator=_gen(2))
    assert torch.equal(combiners.cagrad(G, c=0.0), G.sum(0))


@pytest.mark.parametrize("c", [0.5, 1.0])
def test_cagrad_two_task_hand_example(c):
    # g1 = [1,0], g2 = [-1,1]: g0 = [0, 1/2], |g0| = 1/2. With w = (t, 1-t),
    # F(t) = (1-t)/2 + c/2 sqrt(5t^2 - 6t + 2), minimised at t = 0.7 for c = 1 (g_w = [.4, .3],
    # |g_w| = 1/2, d = g0 + g_w = [.4, .8]) and at t = 1 for c = 1/2 (g_w = g1, d = [.25, .5]).
    # Scaled by K / (1 + c^2): [0.4, 0.8] in both cases; then <g1, d> = <g2, d> = 0.4.
    G = torch.tensor([[1.0, 0.0], [-1.0, 1.0]], dtype=torch.float64)
    d = combiners.cagrad(G, c=c)
    torch.testing.assert_close(d, torch.tensor([0.4, 0.8], dtype=torch.float64),
                               rtol=1e-6, atol=1e-6)


def _conflicting(K: int, P: int, seed: int) -> torch.Tensor:
    G = torch.randn(K, P, generator=_gen(seed), dtype=torch.float64)
    G[1] = -0.8 * G[0] + 0.1 * G[1]  # a strong conflict
    return G


@pytest.mark.parametrize("c", [0.2, 0.5, 0.8])
def test_cagrad_maximises_the_worst_task_improvement_in_the_ball(c):
    """Primal: d = argmax_{|d - g0| <= c|g0|} min_i <g_i, d> (before the rescaling)."""
    K = 4
    G = _conflicting(K, 5, seed=3)
    d = combiners.cagrad(G, c=c) * (1 + c**2) / K
    g0 = G.mean(0)
    radius = c * g0.norm()
    torch.testing.assert_close((d - g0).norm(), radius, rtol=1e-6, atol=0)  # on the boundary
    worst = (G @ d).min()
    assert worst >= (G @ g0).min()
    u = torch.randn(5000, 5, generator=_gen(0), dtype=torch.float64)
    candidates = g0 + radius * u / u.norm(dim=1, keepdim=True)
    assert worst >= (candidates @ G.T).min(dim=1).values.max() - 1e-9


def test_cagrad_weights_are_optimal_on_the_simplex():
    """Dual: w minimises F(w) = w^T A b + c |g0| sqrt(w^T A w) over the simplex."""
    K, c = 3, 0.5
    G = _conflicting(K, 5, seed=3)
    d = combiners.cagrad(G, c=c)
    A = (G @ G.T).numpy()
    b = np.full(K, 1 / K)
    radius = c * np.sqrt(b @ A @ b)

    def F(w: np.ndarray) -> float:
        return w @ A @ b + radius * np.sqrt(w @ A @ w)

    # d (1 + c^2) / K = G^T (b + lambda w): recover w (G has full row rank)
    coef = np.linalg.lstsq(G.numpy().T, d.numpy() * (1 + c**2) / K, rcond=None)[0] - b
    w = coef / coef.sum()
    assert np.all(w >= -1e-9)
    rng = np.random.default_rng(0)
    best_random = min(F(rng.dirichlet(np.ones(K) * 0.5)) for _ in range(3000))
    assert F(w) <= best_random + 1e-9


def test_cagrad_is_scale_equivariant_and_single_task():
    G = _conflicting(5, 30, seed=0)
    d = combiners.cagrad(G, c=0.4)
    for s in [1e-6, 1e6]:
        torch.testing.assert_close(combiners.cagrad(s * G, c=0.4) / s, d, rtol=1e-6, atol=1e-9)
    g = torch.tensor([[3.0, 4.0]], dtype=torch.float64)  # K = 1: d = (1 + c) g / (1 + c^2)
    torch.testing.assert_close(combiners.cagrad(g, c=0.5), g[0] * 1.5 / 1.25)
    zero = torch.zeros(3, 4)
    assert torch.equal(combiners.cagrad(zero), torch.zeros(4))


# ----------------------------------------------------------------------------- FairGrad


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_fairgrad_optimality_condition(alpha):
    G = torch.randn(5, 40, generator=_gen(4), dtype=torch.float64)
    A = G @ G.T
    w = torch.from_numpy(combiners._fairgrad_weights(A.numpy(), alpha))
    assert torch.all(w > 0)
    torch.testing.assert_close((A @ w) * w ** (1 / alpha), torch.ones(5, dtype=torch.float64),
                               rtol=1e-9, atol=1e-9)
    d = combiners.fairgrad(G, alpha=alpha)
    torch.testing.assert_close(d, G.T @ w, rtol=1e-12, atol=1e-12)  # direction = G^T w
    w_from_d = torch.linalg.lstsq(G.T, d[:, None]).solution[:, 0]  # public output alone
    torch.testing.assert_close((A @ w_from_d) * w_from_d ** (1 / alpha),
                               torch.ones(5, dtype=torch.float64), rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_fairgrad_orthogonal_gradients(alpha):
    # (G G^T w)_i = n_i^2 w_i = w_i^(-1/alpha)  ->  w_i = n_i^(-2 alpha / (alpha + 1))
    norms = torch.tensor([1.0, 2.0, 4.0, 0.25], dtype=torch.float64)
    G = torch.diag(norms)
    w = combiners._fairgrad_weights((G @ G.T).numpy(), alpha)
    expected = norms ** (-2 * alpha / (alpha + 1))
    torch.testing.assert_close(torch.from_numpy(w), expected, rtol=1e-12, atol=0)
    torch.testing.assert_close(combiners.fairgrad(G, alpha=alpha), norms * expected)
    if alpha == 1.0:  # w_i = 1 / n_i exactly, so every task moves by one unit
        torch.testing.assert_close(torch.from_numpy(w), 1 / norms, rtol=1e-12, atol=0)
        torch.testing.assert_close(combiners.fairgrad(G), torch.ones(4, dtype=torch.float64))


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_fairgrad_scaling(alpha):
    # G -> s G gives w -> s^(-2 alpha/(alpha+1)) w, d -> s^((1-alpha)/(1+alpha)) d
    G = torch.randn(4, 10, generator=_gen(5), dtype=torch.float64)
    d = combiners.fairgrad(G, alpha=alpha)
    for s in [1e-6, 1e4]:
        expected = s ** ((1 - alpha) / (1 + alpha)) * d
        torch.testing.assert_close(combiners.fairgrad(s * G, alpha=alpha), expected,
                                   rtol=1e-8, atol=0)


def test_fairgrad_degenerate_cases():
    G = torch.randn(4, 10, generator=_gen(5), dtype=torch.float64)
    G[2] = 0  # a zero-gradient task gets weight 0, the rest solve their own system
    w = combiners._fairgrad_weights((G @ G.T).numpy(), 1.0)
    assert w[2] == 0 and np.all(np.delete(w, 2) > 0)
    live = G[[0, 1, 3]]
    torch.testing.assert_close(combiners.fairgrad(G), combiners.fairgrad(live))
    g = torch.tensor([[3.0, 4.0]], dtype=torch.float64)  # K = 1, alpha = 1: w = 1/|g|
    torch.testing.assert_close(combiners.fairgrad(g), g[0] / 5)
    assert torch.equal(combiners.fairgrad(torch.zeros(3, 4)), torch.zeros(4))
    opposed = torch.tensor([[1.0, 2.0], [-1.0, -2.0]])  # no positive root exists
    assert torch.isfinite(combiners.fairgrad(opposed)).all()
    with pytest.raises(ValueError, match="alpha"):
        combiners.fairgrad(G, alpha=0.0)


def test_fairgrad_fifty_correlated_tasks():
    base = torch.randn(1, 2000, generator=_gen(6), dtype=torch.float64)
    G = base + 0.1 * torch.randn(50, 2000, generator=_gen(7), dtype=torch.float64)
    G[::3] *= -0.2
    A = (G @ G.T).numpy()
    for alpha in [0.5, 1.0, 2.0]:
        w = combiners._fairgrad_weights(A, alpha)
        assert np.all(w > 0)
        assert np.abs((A @ w) * w ** (1 / alpha) - 1).max() < 1e-8


# ------------------------------------------------------------------------ lookup, dtypes


def test_lookup_and_unknown_name():
    assert set(PAPER_COMBINERS) <= set(COMBINERS)
    for name in PAPER_COMBINERS:
        assert combiners.get(name) is getattr(combiners, name)  # the registry names the function
    with pytest.raises(ValueError, match="unknown combiner 'mgda'.*sum, pcgrad, cagrad, fairgrad"):
        combiners.get("mgda")
    with pytest.raises(ValueError, match="unknown combiner"):
        combiners.combine("mgda", torch.zeros(2, 3))


def test_combine_passes_the_options():
    G = _conflicting(4, 8, seed=8)
    assert torch.equal(combiners.combine("sum", G), G.sum(0))
    assert torch.equal(combiners.combine("cagrad", G, c=0.0), G.sum(0))
    assert torch.equal(combiners.combine("cagrad", G, c=0.7), combiners.cagrad(G, c=0.7))
    assert torch.equal(combiners.combine("fairgrad", G, alpha=2.0),
                       combiners.fairgrad(G, alpha=2.0))
    assert torch.equal(combiners.combine("pcgrad", G, generator=_gen(1)),
                       combiners.pcgrad(G, generator=_gen(1)))


def test_combine_reads_a_gram_matrix_the_caller_formed():
    """Every Gram-based combiner uses ``gram=`` in place of its own G G^T (the registry says
    which take it); given G's own Gram matrix the direction is the same bits."""
    G = _conflicting(5, 12, seed=3)
    other = combiners._gram(_conflicting(5, 12, seed=4))
    for name, entry in COMBINERS.items():
        opts = dict(c=0.4, alpha=1.0)
        own = combiners.combine(name, G, generator=_gen(2), **opts)
        assert torch.equal(combiners.combine(name, G, generator=_gen(2), gram=combiners._gram(G),
                                             **opts), own)
        moved = combiners.combine(name, G, generator=_gen(2), gram=other, **opts)
        assert entry.gram == (name != "sum") and entry.gram != torch.equal(moved, own)


def test_blocked_gram_is_the_gram_matrix():
    """Summed over column blocks (the last one short), exactly G G^T where every product
    and sum is exact in float32 (small integers), and nearer float64 than one product."""
    g = _gen(5)
    ints = torch.randint(-8, 9, (7, 3 * 64 + 5), generator=g).float()
    exact = (ints.double() @ ints.double().T).numpy()
    assert np.array_equal(combiners.blocked_gram(ints, block=64), exact)
    narrow = ints[:, :40]  # fewer columns than one block: the short block alone
    assert np.array_equal(combiners.blocked_gram(narrow, block=64),
                          (narrow.double() @ narrow.double().T).numpy())
    G = torch.randn(10, 200_003, generator=g)
    ref = (G.double() @ G.double().T).numpy()
    assert np.abs(combiners.blocked_gram(G) - ref).max() < np.abs(combiners._gram(G) - ref).max()


def test_float32_fifty_tasks():
    G = torch.randn(50, 10_000, generator=_gen(9))
    G[::4] *= -0.3
    for name in COMBINERS:
        d = combiners.combine(name, G, c=0.4, alpha=1.0, generator=_gen(0))
        assert d.shape == (10_000,) and d.dtype == torch.float32 and torch.isfinite(d).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_inputs_stay_on_the_device():
    G = torch.randn(8, 1000, generator=_gen(10)).cuda()
    gen = torch.Generator(device="cuda").manual_seed(0)
    for name in COMBINERS:
        d = combiners.combine(name, G, generator=gen)
        assert d.device == G.device and d.dtype == torch.float32 and d.shape == (1000,)
        if name != "pcgrad":  # the CUDA generator draws other orders than the CPU one
            torch.testing.assert_close(d.cpu(), combiners.combine(name, G.cpu()),
                                       rtol=1e-4, atol=1e-4)
