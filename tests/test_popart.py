"""PopArt: statistics are exact and the critic's unnormalised outputs survive an update."""

import numpy as np
import pytest
import torch

from toppo.algo.networks import Critic
from toppo.algo.popart import PopArt


def test_welford_statistics_match_numpy_over_several_updates():
    torch.manual_seed(0)
    pa = PopArt(3, mode="welford")
    head = torch.nn.Linear(4, 3)
    batches = [torch.randn(3, 50, dtype=torch.float64) * torch.tensor([[1.0], [10.0], [100.0]]) + 5
               for _ in range(4)]
    for b in batches:
        pa.update(b, head)
    allx = torch.cat(batches, 1).numpy()
    np.testing.assert_allclose(pa.mu.numpy(), allx.mean(1), rtol=1e-12)
    np.testing.assert_allclose(pa.sigma.numpy(), allx.std(1), rtol=1e-12)


def test_ema_is_one_step_of_beta_per_update_hand_computed():
    # Hessel et al.'s per-update form: mu <- (1-b) mu + b mean(G), nu <- (1-b) nu + b mean(G^2),
    # whatever the number of targets in the update
    pa = PopArt(2, mode="ema", beta=0.25)
    head = torch.nn.Linear(2, 2)
    pa.update(torch.tensor([[4.0, 4.0, 4.0, 4.0], [1.0, 3.0, 1.0, 3.0]]), head)
    torch.testing.assert_close(pa.mu, torch.tensor([0.25 * 4, 0.25 * 2], dtype=torch.float64))
    torch.testing.assert_close(pa.nu, torch.tensor([0.75 + 0.25 * 16, 0.75 + 0.25 * 5], dtype=torch.float64))
    pa.update(torch.tensor([[0.0, 0.0, 0.0, 0.0], [2.0, 2.0, 2.0, 2.0]]), head)
    mu = torch.tensor([0.75 * 1.0, 0.75 * 0.5 + 0.25 * 2], dtype=torch.float64)
    nu = torch.tensor([0.75 * 4.75, 0.75 * 2.0 + 0.25 * 4], dtype=torch.float64)
    torch.testing.assert_close(pa.mu, mu)
    torch.testing.assert_close(pa.nu, nu)
    torch.testing.assert_close(pa.sigma, (nu - mu**2).sqrt())


@pytest.mark.parametrize("mode", ["welford", "ema"])
def test_update_preserves_unnormalised_outputs(mode):
    torch.manual_seed(1)
    K = 5
    critic = Critic(obs_dim=7, num_tasks=K, hidden=(16, 16), per_task_head=True, layer_norm=True)
    pa = PopArt(K, mode=mode, beta=0.1)
    obs = torch.randn(40, 7)
    task = torch.arange(40) % K
    scales = torch.tensor([1.0, 10.0, 100.0, 1000.0, 0.1])[:, None]
    for _ in range(3):
        with torch.no_grad():
            before = pa.denormalize(critic(obs, task), task)
        pa.update(torch.randn(K, 64) * scales + 50 * torch.rand(K, 1), critic.head)
        with torch.no_grad():
            after = pa.denormalize(critic(obs, task), task)
        # float32 outputs: the error scale is eps * (|mu| + sigma * |normalised output|)
        scale = float(pa.mu.abs().max() + pa.sigma.max()) + before.abs().max().item()
        torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-6 * scale)
    assert pa.sigma.max() / pa.sigma.min() > 20  # statistics really differ per task


def test_normalize_roundtrip():
    pa = PopArt(2)
    pa.update(torch.tensor([[1.0, 3.0], [10.0, 30.0]]), torch.nn.Linear(1, 2))
    x, task = torch.tensor([2.0, 20.0]), torch.tensor([0, 1])
    torch.testing.assert_close(pa.normalize(x, task), torch.zeros(2, dtype=x.dtype))
    torch.testing.assert_close(pa.denormalize(pa.normalize(x, task), task), x)
