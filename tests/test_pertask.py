"""Per-task gradients: the vmap path equals the K-backward reference, the combined update
equals plain PPO's gradient when both sides use `sum`, and the diagnostics are exact."""

import math

import pytest
import torch

from toppo import pertask
from toppo.config import make_config
from toppo.learner import Learner
from toppo.variants import resolve


def _learner(**overrides) -> Learner:
    cfg = make_config(benchmark="MT10", hidden_sizes=(16, 16), popart=True, ln_critic=True,
                      stratified_minibatches=True, **overrides)
    return Learner(cfg, obs_dim=49, act_dim=4, device=torch.device("cpu"))


def _batch(K=10, m=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    return {"obs": r(K, m, 49), "task": torch.arange(K)[:, None].expand(K, m), "action": r(K, m, 4),
            "logp": r(K, m) - 3, "adv": r(K, m), "target": r(K, m) * 5, "old_value": r(K, m)}


@pytest.mark.parametrize("side", ["actor", "critic"])
def test_vmap_per_task_grads_equal_the_loop_reference(side):
    torch.manual_seed(0)
    learner = _learner()
    module = getattr(learner, side)
    loss_fn = getattr(learner, f"{side}_task_loss")(1.0)
    fast, aux_fast = pertask.per_task_grads(module, loss_fn, _batch(), "vmap")
    ref, aux_ref = pertask.per_task_grads(module, loss_fn, _batch(), "loop")
    assert fast.keys() == ref.keys()
    for name in fast:
        torch.testing.assert_close(fast[name], ref[name], rtol=1e-4, atol=1e-6)
    for key in aux_fast:
        torch.testing.assert_close(aux_fast[key], aux_ref[key])


def test_per_task_rows_only_receive_their_own_task():
    learner = _learner()
    grads, _ = pertask.per_task_grads(learner.critic, learner.critic_task_loss(1.0), _batch(), "vmap")
    head = grads["head.weight"]  # (K tasks, K outputs, hidden)
    K = head.shape[0]
    off_diagonal = head[~torch.eye(K, dtype=torch.bool)]
    assert torch.all(off_diagonal == 0)
    grads, _ = pertask.per_task_grads(learner.actor, learner.actor_task_loss(1.0), _batch(), "vmap")
    ls = grads["log_std"]
    assert torch.all(ls[~torch.eye(K, dtype=torch.bool)] == 0)


def test_sum_combiner_step_equals_plain_backward_of_the_minibatch_mean():
    """With per-task shares 1/K, `sum` of per-task gradients is the plain PPO gradient."""
    torch.manual_seed(1)
    a = _learner(actor_combiner="sum", critic_combiner="sum")
    mb = _batch()
    # force the per-task path with `sum` on both sides
    grads_a, _ = pertask.per_task_grads(a.actor, a.actor_task_loss(1.0 / a.K), mb, "vmap")
    pertask.assign_combined(a.actor, grads_a, a.actor.per_task_param_names(), "sum")
    combined = {n: p.grad.clone() for n, p in a.actor.named_parameters()}
    a.actor.zero_grad()
    flat = {k: v.reshape(-1, *v.shape[2:]) for k, v in mb.items()}
    loss, _ = a.actor_task_loss(1.0)(a.actor, flat)
    loss.backward()
    for n, p in a.actor.named_parameters():
        torch.testing.assert_close(combined[n], p.grad, rtol=1e-4, atol=1e-7)


def test_toppo_minibatch_step_changes_parameters_and_clips():
    torch.manual_seed(2)
    learner = _learner(actor_combiner="pcgrad", critic_combiner="fairgrad", max_grad_norm=0.5)
    before = [p.detach().clone() for p in learner.params]
    stats = learner.minibatch_step(_batch(), "test")
    assert all(math.isfinite(float(v)) for v in stats.values())
    assert any(not torch.equal(b, p) for b, p in zip(before, learner.params))


def test_gradient_diagnostics_hand_computed():
    G = torch.tensor([[3.0, 0.0], [0.0, 1.0]])
    d = pertask.gradient_diagnostics(G, "critic")
    assert d["critic_gradnorm_max"] == 3 and d["critic_gradnorm_min"] == 1
    assert d["critic_gradnorm_spread"] == 3
    assert d["critic_cos_mean"] == 0 and d["critic_cos_min"] == 0
    assert d["critic_gram_cond"] == pytest.approx(9.0)
    assert d["critic_gradnorm_t0"] == 3


def test_non_finite_loss_stops_with_the_update_named():
    from toppo.learner import TrainingDiverged

    learner = _learner()
    mb = _batch()
    mb["target"][3, 2] = float("nan")
    with pytest.raises(TrainingDiverged, match="update 7, epoch 2, minibatch 5"):
        learner.minibatch_step(mb, "update 7, epoch 2, minibatch 5")


@pytest.mark.parametrize(("variant", "actor", "critic"), [
    # MT50, obs 39 + 50 one-hot = 89, actions 4, hidden [400, 400, 400]:
    # body 89*400+400 + 2*(400*400+400) = 356,800; actor mean head 400*4+4, log-std 50*4;
    # critic head 400+1, or 50*(400+1) with per-task PopArt; LN-c adds 3*(400+400).
    ("mtppo", 356_800 + 1_604 + 200, 356_800 + 401),
    ("mtppo_popart", 356_800 + 1_604 + 200, 356_800 + 20_050),
    ("toppo", 356_800 + 1_604 + 200, 356_800 + 2_400 + 20_050),
])
def test_mt50_parameter_counts(variant, actor, critic):
    cfg = resolve(variant, {"benchmark": "MT50"})
    counts = Learner(cfg, 39 + 50, 4, torch.device("cpu")).param_counts()
    assert counts == {"actor": actor, "critic": critic, "total": actor + critic}
    assert (counts["total"] == 715_805) == (variant == "mtppo")  # the paper's ~717K model size
