"""Per-task gradients: the vmap path equals the K-backward reference, the combined update
equals plain PPO's gradient when both sides use `sum`, and the diagnostics are exact."""

import math

import pytest
import torch

from toppo.algo import diagnostics, pertask
from toppo.algo.learner import Learner
from toppo.specs.config import make_config
from toppo.specs.variants import resolve


def _learner(**overrides) -> Learner:
    base = dict(benchmark="MT10", hidden_sizes=(16, 16), popart=True, critic_heads="per_task",
                ln_critic=True, stratified_minibatches=True, policy_std="per_task")
    cfg = make_config(base, **overrides)
    return Learner(cfg, obs_dim=49, act_dim=4, device=torch.device("cpu"))


def _batch(K=10, m=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    return {"obs": r(K, m, 49), "task": torch.arange(K)[:, None].expand(K, m), "action": r(K, m, 4),
            "logp": r(K, m) - 3, "adv": r(K, m), "target": r(K, m) * 5, "old_value": r(K, m)}


@pytest.mark.parametrize("impl", ["vmap", "fused"])
@pytest.mark.parametrize("ln", [False, True])
@pytest.mark.parametrize("side", ["actor", "critic"])
def test_per_task_grads_equal_the_loop_reference(side, ln, impl):
    torch.manual_seed(0)
    learner = _learner(ln_actor=ln, ln_critic=ln)
    module = getattr(learner, side)
    loss_fn = getattr(learner, f"{side}_task_loss")(1.0)
    fast, aux_fast = pertask.per_task_grads(module, loss_fn, _batch(), impl)
    ref, aux_ref = pertask.per_task_grads(module, loss_fn, _batch(), "loop")
    assert fast.keys() == ref.keys()
    for name in fast:
        torch.testing.assert_close(fast[name], ref[name], rtol=1e-4, atol=1e-6)
    for key in aux_fast:
        torch.testing.assert_close(aux_fast[key], aux_ref[key])


@pytest.mark.parametrize("impl", ["vmap", "fused"])
def test_per_task_rows_only_receive_their_own_task(impl):
    learner = _learner()
    grads, _ = pertask.per_task_grads(learner.critic, learner.critic_task_loss(1.0), _batch(), impl)
    head = grads["head.weight"]  # (K tasks, K outputs, hidden)
    K = head.shape[0]
    off_diagonal = head[~torch.eye(K, dtype=torch.bool)]
    assert torch.all(off_diagonal == 0)
    grads, _ = pertask.per_task_grads(learner.actor, learner.actor_task_loss(1.0), _batch(), impl)
    ls = grads["log_std"]
    assert torch.all(ls[~torch.eye(K, dtype=torch.bool)] == 0)


def test_fused_per_task_grads_refuse_a_parameter_without_a_rule():
    learner = _learner()
    learner.actor.extra = torch.nn.Parameter(torch.zeros(3))  # not a Linear's, LayerNorm's or a task's row
    with pytest.raises(ValueError, match=r"no per-task gradient rule for \['extra'\]"):
        pertask.per_task_grads(learner.actor, learner.actor_task_loss(1.0), _batch(), "fused")


def test_fused_grads_lie_side_by_side_in_the_matrix_the_combiner_reads():
    """``fused`` writes the shared parameters' per-task gradients into one (K, P) matrix, so
    split_shared returns it without a copy (whole or a leading run of parameters); other
    gradients are copied into a new one. Either way the matrix is the rows concatenated."""
    learner = _learner()
    for side in ("actor", "critic"):
        module = getattr(learner, side)
        loss_fn = getattr(learner, f"{side}_task_loss")(1.0)
        for impl, shares in (("fused", True), ("vmap", False)):
            grads, _ = pertask.per_task_grads(module, loss_fn, _batch(), impl)
            for per_task in (module.per_task_param_names(), set(grads) - {n for n in grads
                                                                         if n.startswith("body.")}):
                names, G = pertask.split_shared(grads, per_task)
                assert torch.equal(G, torch.cat([grads[n].flatten(1) for n in names], 1))
                assert (G.data_ptr() == grads[names[0]].data_ptr()) == shares
                assert (G.untyped_storage().data_ptr()
                        == grads[names[-1]].untyped_storage().data_ptr()) == shares


def test_fused_toppo_update_follows_the_vmap_one():
    """Two updates of a TOPPO-like learner with the fused per-task gradients end where the
    default vmap path ends, up to float rounding (the paths are not bit-identical)."""
    finals = []
    for impl in ("vmap", "fused"):
        torch.manual_seed(5)
        learner = _learner(actor_combiner="pcgrad", critic_combiner="fairgrad", num_epochs=2,
                           num_minibatches=4, rollout_steps_per_task=64, diagnostics_samples=16,
                           per_task_grad_impl=impl)
        for u in range(2):
            learner.update(_rollout(seed=u), u)
        finals.append(_params(learner))
    for a, b in zip(*finals):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


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


def _params(learner: Learner) -> list[torch.Tensor]:
    return [p.detach().clone() for side in learner.sides.values() for p in side.parameters()]


def test_toppo_minibatch_step_changes_parameters_and_clips():
    torch.manual_seed(2)
    learner = _learner(actor_combiner="pcgrad", critic_combiner="fairgrad", max_grad_norm=0.5)
    before = _params(learner)
    stats = learner.minibatch_step(_batch(), "test")
    assert all(math.isfinite(float(v)) for v in stats.values())
    assert any(not torch.equal(b, p) for b, p in zip(before, _params(learner)))


@pytest.mark.parametrize("overrides", [
    {"popart": False, "critic_heads": "shared", "stratified_minibatches": False},  # mtppo-like
    {"actor_combiner": "pcgrad", "critic_combiner": "fairgrad"},  # TOPPO-like
])
def test_actor_step_does_not_depend_on_the_critic_targets_scale(overrides):
    """Per-side optimisers and clips: scaling the critic's targets by 100 (its loss by 1e4,
    its gradient far above the clip) leaves the actor's update bit-for-bit unchanged."""
    steps = []
    for scale in (1.0, 100.0):
        torch.manual_seed(3)
        learner = _learner(max_grad_norm=0.5, **overrides)
        mb = _batch()
        if not learner.cfg.stratified_minibatches:
            mb = {k: v.reshape(-1, *v.shape[2:]) for k, v in mb.items()}
        mb["target"], mb["old_value"] = mb["target"] * scale, mb["old_value"] * scale
        for i in range(3):
            stats = learner.minibatch_step(mb, f"step {i}")
        steps.append(([p.detach().clone() for p in learner.actor.parameters()],
                      float(stats["value_loss"])))
    (actor1, loss1), (actor100, loss100) = steps
    assert loss100 > 1000 * loss1  # the critic's loss really is ~1e4 times larger
    for a, b in zip(actor1, actor100):
        assert torch.equal(a, b)


def _rollout(K=10, M=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    return {"obs": r(K, M, 49), "task": torch.arange(K)[:, None].expand(K, M), "action": r(K, M, 4),
            "logp": r(K, M) - 3, "adv": r(K, M), "ret": r(K, M) * 5 + 3, "value": r(K, M)}


def test_diagnostics_cover_both_sides_bodies_and_do_not_change_training():
    finals = []
    for diagnose in (False, True):
        torch.manual_seed(4)
        learner = _learner(diagnostics=diagnose, num_epochs=2, num_minibatches=4,
                           rollout_steps_per_task=64, diagnostics_samples=16)
        out = learner.update(_rollout(), 0)
        finals.append(_params(learner))
    assert all(torch.equal(a, b) for a, b in zip(*finals))
    for side in ("actor", "critic"):
        assert out[f"{side}_gradnorm_spread"] >= 1 and math.isfinite(out[f"{side}_gram_cond"])
        assert f"{side}_gradnorm_t9" in out
    assert out["value_abs_err_before"] > 0 and "explained_variance_after" in out


@pytest.mark.parametrize("variant", ["mtppo", "mtppo_mhc", "toppo"])
def test_diagnostics_use_the_same_parameter_set_in_every_variant(variant):
    """Body only: the heads differ between variants (shared vs per-task), the body does not."""
    from toppo.algo.networks import body_param_names

    learner = Learner(resolve(variant, {"hidden_sizes": (16, 16)}), 49, 4, torch.device("cpu"))
    for module in learner.sides.values():
        names = body_param_names(module)
        assert names and all(n.startswith("body.") for n in names)
        assert sum(p.numel() for n, p in module.named_parameters() if n in names) == \
            sum(p.numel() for p in module.body.parameters())


def test_gradient_diagnostics_hand_computed():
    G = torch.tensor([[3.0, 0.0], [0.0, 1.0]])
    d = diagnostics.gradient_diagnostics(G, "critic")
    assert d["critic_gradnorm_max"] == 3 and d["critic_gradnorm_min"] == 1
    assert d["critic_gradnorm_spread"] == 3
    assert d["critic_cos_mean"] == 0 and d["critic_cos_min"] == 0
    assert d["critic_gram_cond"] == pytest.approx(9.0)
    assert d["critic_gradnorm_t0"] == 3


def test_non_finite_loss_stops_with_the_update_named():
    from toppo.algo.learner import TrainingDiverged

    learner = _learner()
    mb = _batch()
    mb["target"][3, 2] = float("nan")
    with pytest.raises(TrainingDiverged, match="update 7, epoch 2, minibatch 5"):
        learner.minibatch_step(mb, "update 7, epoch 2, minibatch 5")


@pytest.mark.parametrize(("variant", "actor", "critic"), [
    # MT50, obs 39 + 50 one-hot = 89, actions 4, hidden [400, 400, 400]:
    # body 89*400+400 + 2*(400*400+400) = 356,800; the reference's actor head (mean and
    # log-std) 400*8+8, the paper's a mean head 400*4+4 and 50x4 log-std rows; critic head
    # 400+1, or 50*(400+1) with a per-task head; LN-c adds 3*(400+400).
    ("mtppo_ref", 356_800 + 3_208, 356_800 + 401),
    ("toppo_ref", 356_800 + 3_208, 356_800 + 2_400 + 20_050),
    ("mtppo", 356_800 + 1_604 + 200, 356_800 + 401),
    ("mtppo_mhc", 356_800 + 1_604 + 200, 356_800 + 20_050),
    ("mtppo_popart", 356_800 + 1_604 + 200, 356_800 + 401),
    ("toppo", 356_800 + 1_604 + 200, 356_800 + 2_400 + 401),
])
def test_mt50_parameter_counts(variant, actor, critic):
    cfg = resolve(variant, {"benchmark": "MT50"})
    counts = Learner(cfg, 39 + 50, 4, torch.device("cpu")).param_counts()
    assert counts == {"actor": actor, "critic": critic, "total": actor + critic}
    # the paper's TOPPO: "717K total parameters", within 0.2% with its shared value head
    # (per-task heads would add 19,649, 2.7%)
    if variant == "toppo":
        assert abs(counts["total"] - 717_000) / 717_000 < 0.002


def test_reference_mt10_has_no_critic_network():
    counts = Learner(resolve("ref_mt10"), 39 + 10, 4, torch.device("cpu")).param_counts()
    assert counts == {"actor": 16 * 400 + 0 + 356_800 - 89 * 400 + 49 * 400 - 16 * 400 + 3_208,
                      "critic": 0, "total": 49 * 400 + 400 + 2 * 160_400 + 3_208}


def test_sigma_rows_stay_outside_every_combiner(monkeypatch):
    """"The per-task log-stddev σi ... receives gradient only from task i ... only the fully
    task-shared parameters θa, θc feed the per-side combiner": with a combiner that returns
    zeros, the shared actor parameters get no gradient and the (K, A) log-std rows still get
    exactly their own task's gradient."""
    from toppo.specs import registry

    def zeros(G: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(G[0])

    monkeypatch.setitem(registry.COMBINERS, "zeros", registry.Combiner(zeros))
    learner = _learner(actor_combiner="zeros", popart=False, critic_heads="shared")
    mb = learner.normalize_minibatch(_batch())
    own, _ = pertask.per_task_grads(learner.actor, learner.actor_task_loss(1.0 / learner.K), mb,
                                    "vmap")
    learner.optimizers["actor"].zero_grad(set_to_none=True)
    G = pertask.assign_combined(learner.actor, own, learner.actor.per_task_param_names(), "zeros")
    assert G.shape[0] == learner.K and G.shape[1] == sum(
        p.numel() for n, p in learner.actor.named_parameters() if n != "log_std")
    for name, p in learner.actor.named_parameters():
        if name == "log_std":
            rows = own["log_std"]  # (K tasks, K rows, A): task k's gradient only in row k
            torch.testing.assert_close(p.grad, rows.sum(0))
            torch.testing.assert_close(p.grad, torch.stack([rows[k, k] for k in range(learner.K)]))
            assert p.grad.abs().sum() > 0
        else:
            assert torch.all(p.grad == 0), name


def test_value_clip_acts_in_popart_normalised_units():
    """clip_vloss with PopArt: the value may move vf_clip_coef from the rollout-time value in
    the critic's own (normalised) units, so a task with returns in the thousands is clipped
    as tightly as one in units -- the same loss for the same normalised numbers."""
    torch.manual_seed(3)
    learner = _learner(clip_vloss=True, vf_clip_coef=0.2, popart=True, critic_heads="shared")
    K, M = learner.K, 8
    ret = torch.randn(K, M) * torch.logspace(0, 3, K)[:, None] + 10.0  # scales 1 .. 1000
    roll = {"obs": torch.randn(K, M, 49), "task": torch.arange(K)[:, None].expand(K, M),
            "action": torch.randn(K, M, 4), "logp": torch.randn(K, M) - 3,
            "adv": torch.randn(K, M), "ret": ret, "value": ret + torch.randn(K, M)}
    data = learner.prepare_batch(roll)
    sigma = learner.popart.sigma.to(torch.float32)
    torch.testing.assert_close(data["target"], (ret - learner.popart.mu.float()[:, None])
                               / sigma[:, None])
    # the clipped loss of one task, computed by hand in normalised units
    from toppo.algo import ppo
    v = learner.critic(data["obs"][0], data["task"][0]).detach()
    old, target = data["old_value"][0], data["target"][0]
    clipped = old + (v - old).clamp(-0.2, 0.2)
    want = 0.5 * torch.max((v - target) ** 2, (clipped - target) ** 2).mean()
    got = ppo.critic_loss(v, old, target, True, 0.2, vf_coef=1.0)
    torch.testing.assert_close(got, want)
    # in raw units the same clip would allow a move of 0.2 * sigma_k: far wider for big tasks
    assert float(sigma[-1]) > 100 * float(sigma[0])
