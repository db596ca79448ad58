"""GAE, the stratified sampler and log-std isolation, with exact expectations."""

import pytest
import torch

from toppo.algo import ppo
from toppo.algo.networks import Actor


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


def test_advantage_normalisation_modes_exact():
    adv = torch.tensor([[1.0, 2.0, 3.0], [100.0, 200.0, 300.0]])
    per_task = ppo.normalize_advantages(adv, "task")
    s = (2.0 / 3.0) ** 0.5  # population std of (1, 2, 3)
    torch.testing.assert_close(per_task, torch.tensor([[-1 / s, 0.0, 1 / s]] * 2), atol=1e-6, rtol=0)
    whole = ppo.normalize_advantages(adv, "minibatch")  # one mean and std over all samples
    mu, sd = adv.mean(), adv.std(correction=0)
    torch.testing.assert_close(whole, (adv - mu) / (sd + 1e-8))
    assert whole[1].mean() > 0 > whole[0].mean()  # tasks keep their scale difference
    assert ppo.normalize_advantages(adv, "none") is adv
    with pytest.raises(ValueError, match="adv_norm"):
        ppo.normalize_advantages(adv, "per-task")


def test_discounted_returns_hand_computed():
    r = torch.tensor([[1.0, 0.0, 2.0]])
    torch.testing.assert_close(ppo.discounted_returns(r, 0.5), torch.tensor([[1.5, 1.0, 2.0]]))


def test_linear_baseline_recovers_an_exactly_linear_return():
    # returns that are exactly linear in the features (here: in t, t^2 and a constant)
    # are fitted exactly; two tasks with different scales get their own coefficients
    K, E, L, D = 2, 3, 20, 2
    obs = torch.zeros(K, E, L, D, dtype=torch.float64)
    gamma = 0.9
    t = torch.arange(L, dtype=torch.float64)
    target = torch.stack([1.0 + 0.5 * t / 100, 40.0 - 3.0 * (t / 100) ** 2])[:, None, :].expand(K, E, L)
    rewards = target.clone()  # r_t = G_t - gamma G_{t+1}, G_L = 0
    rewards[..., :-1] = target[..., :-1] - gamma * target[..., 1:]
    values = ppo.linear_baseline(obs, rewards, gamma)
    torch.testing.assert_close(values, target, rtol=1e-4, atol=1e-6)  # ridge 1e-5 biases a hair


def test_log_std_rows_only_get_their_task_gradient():
    torch.manual_seed(0)
    actor = Actor(obs_dim=5, act_dim=2, num_tasks=4, hidden=(8,), policy_std="per_task")
    obs = torch.randn(6, 5)
    task = torch.tensor([1, 1, 3, 3, 3, 1])
    mean, log_std = actor(obs, task)
    logp = ppo.gaussian_log_prob(torch.randn(6, 2), mean, log_std)
    logp.sum().backward()
    g = actor.log_std.grad
    assert torch.all(g[[0, 2]] == 0)
    assert torch.all(g[[1, 3]] != 0)


def test_state_dependent_log_std_is_clipped_and_squashed_actions_stay_in_the_box():
    torch.manual_seed(0)
    actor = Actor(obs_dim=5, act_dim=2, num_tasks=4, hidden=(8,), log_std_min=-1.0, log_std_max=0.5)
    with torch.no_grad():
        actor.head.bias.copy_(torch.tensor([30.0, -30.0, 9.0, -9.0]))  # mean +-30, log-std +-9
    obs, task = torch.randn(6, 5), torch.zeros(6, dtype=torch.long)
    mean, log_std = actor(obs, task)
    assert torch.all(log_std[:, 0] == 0.5) and torch.all(log_std[:, 1] == -1.0)
    u, logp, action = actor.sample(obs, task)
    torch.testing.assert_close(logp, ppo.gaussian_log_prob(u, mean, log_std))
    torch.testing.assert_close(action, torch.tanh(u))  # MT50 reference: tanh-squashed
    torch.testing.assert_close(actor.act_deterministic(obs, task), torch.tanh(mean))
    actor.squash_tanh = False  # MT10 reference: the env's box clips the Gaussian sample
    assert torch.all(actor.act_deterministic(obs, task) == torch.tensor([1.0, -1.0]))


def test_reference_initialisation():
    torch.manual_seed(0)
    actor = Actor(obs_dim=50, act_dim=4, num_tasks=10, hidden=(400, 400))
    w = actor.body[0].weight  # He-uniform: U(+-sqrt(6 / fan_in)), zero bias
    bound = (6 / 50) ** 0.5
    assert w.abs().max() <= bound and w.abs().max() > 0.95 * bound
    assert torch.all(actor.body[0].bias == 0)
    assert actor.head.weight.abs().max() <= 1e-3 and actor.head.bias.abs().max() <= 1e-3
    assert isinstance(actor.body[1], torch.nn.ReLU)


def test_gaussian_log_prob_matches_torch_distributions():
    mean, log_std, a = torch.randn(4, 3), torch.randn(4, 3) * 0.3, torch.randn(4, 3)
    ref = torch.distributions.Normal(mean, log_std.exp())
    torch.testing.assert_close(ppo.gaussian_log_prob(a, mean, log_std), ref.log_prob(a).sum(-1))
    torch.testing.assert_close(ppo.gaussian_entropy(log_std), ref.entropy().sum(-1))
