"""GAE, the stratified sampler and log-std isolation, with exact expectations."""

import pytest
import torch

from toppo import ppo
from toppo.networks import Actor


def test_gae_hand_computed_two_steps():
    # one env, two steps, no episode end: delta_t = r_t + g V_{t+1} - V_t
    r = torch.tensor([[1.0], [2.0]])
    v = torch.tensor([[0.5], [1.0]])
    nv = torch.tensor([[1.0], [3.0]])
    end = torch.zeros(2, 1, dtype=torch.bool)
    adv, ret = ppo.gae(r, v, nv, end, gamma=0.9, lam=0.5)
    d1 = 2 + 0.9 * 3 - 1.0
    d0 = 1 + 0.9 * 1.0 - 0.5
    torch.testing.assert_close(adv, torch.tensor([[d0 + 0.45 * d1], [d1]]))
    torch.testing.assert_close(ret, adv + v)


def test_gae_truncation_bootstraps_and_cuts_the_trace():
    # episode truncated at t=0: next value is V(final obs)=10, trace does not leak from t=1
    r = torch.tensor([[0.0], [5.0]])
    v = torch.tensor([[1.0], [2.0]])
    nv = torch.tensor([[10.0], [0.0]])
    end = torch.tensor([[True], [False]])
    adv, _ = ppo.gae(r, v, nv, end, gamma=0.5, lam=1.0)
    assert adv[0, 0].item() == pytest.approx(0 + 0.5 * 10 - 1)
    assert adv[1, 0].item() == pytest.approx(5 - 2)


def test_gae_lambda_one_equals_discounted_return_minus_value():
    T = 6
    r = torch.arange(1.0, T + 1)[:, None]
    v = torch.zeros(T, 1)
    nv = torch.zeros(T, 1)
    adv, _ = ppo.gae(r, v, nv, torch.zeros(T, 1, dtype=torch.bool), gamma=0.9, lam=1.0)
    expected = [sum(0.9 ** (k - t) * r[k, 0].item() for k in range(t, T)) for t in range(T)]
    torch.testing.assert_close(adv[:, 0], torch.tensor(expected))


def test_stratified_minibatches_hold_every_task_equally_and_never_repeat():
    g = torch.Generator().manual_seed(0)
    batches = ppo.stratified_minibatches(num_tasks=3, samples_per_task=10, num_minibatches=3, generator=g)
    assert len(batches) == 3 and all(b.shape == (3, 3) for b in batches)
    used = torch.cat(batches, 1)
    for k in range(3):  # 9 distinct samples of 10 per task; one sits out
        assert used[k].unique().numel() == 9
        assert used[k].max() < 10


def test_random_minibatches_partition():
    batches = ppo.random_minibatches(12, 4, generator=torch.Generator().manual_seed(0))
    assert sorted(torch.cat(batches).tolist()) == list(range(12))


def test_per_task_advantage_normalisation():
    adv = torch.tensor([[1.0, 2.0, 3.0], [100.0, 200.0, 300.0]])
    out = ppo.normalize_per_task(adv)
    torch.testing.assert_close(out[0], out[1])
    torch.testing.assert_close(out.mean(1), torch.zeros(2))


def test_log_std_rows_only_get_their_task_gradient():
    torch.manual_seed(0)
    actor = Actor(obs_dim=5, act_dim=2, num_tasks=4, hidden=(8,))
    obs = torch.randn(6, 5)
    task = torch.tensor([1, 1, 3, 3, 3, 1])
    mean, log_std = actor(obs, task)
    logp = ppo.gaussian_log_prob(torch.randn(6, 2), mean, log_std)
    logp.sum().backward()
    g = actor.log_std.grad
    assert torch.all(g[[0, 2]] == 0)
    assert torch.all(g[[1, 3]] != 0)


def test_gaussian_log_prob_matches_torch_distributions():
    mean, log_std, a = torch.randn(4, 3), torch.randn(4, 3) * 0.3, torch.randn(4, 3)
    ref = torch.distributions.Normal(mean, log_std.exp())
    torch.testing.assert_close(ppo.gaussian_log_prob(a, mean, log_std), ref.log_prob(a).sum(-1))
    torch.testing.assert_close(ppo.gaussian_entropy(log_std), ref.entropy().sum(-1))
