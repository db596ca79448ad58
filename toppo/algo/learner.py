"""The PPO learner: networks, PopArt, one optimiser per side and the update on one rollout.

Holds no environments, so the update can be timed and tested on synthetic batches.
A rollout arrives regrouped per task, every tensor shaped (K tasks, M samples, ...).

Each side (actor, critic) has its own Adam and its own gradient-norm clip, applied to
that side's gradient after its per-task gradients were combined -- as the Meta-World+
reference, whose policy and value function each have an ``optax.chain(
clip_by_global_norm(1.0), adam)`` (``config/optim.py``). So the actor's step never
depends on the critic's loss scale or combiner, and vice versa.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import torch

from toppo.algo import combiners, diagnostics, pertask, ppo
from toppo.algo.networks import build_actor, build_critic, param_count
from toppo.algo.popart import PopArt
from toppo.specs.config import TrainConfig


class TrainingDiverged(RuntimeError):
    """A non-finite loss or gradient; the message names the update, epoch and minibatch."""


class Learner:
    def __init__(self, cfg: TrainConfig, obs_dim: int, act_dim: int, device: torch.device):
        self.cfg, self.device, self.K = cfg, device, cfg.num_tasks
        self.actor = build_actor(cfg, obs_dim, act_dim).to(device)
        self.critic = build_critic(cfg, obs_dim)
        if self.critic is not None:
            self.critic.to(device)
        self.popart = PopArt(self.K, cfg.popart_mode, cfg.popart_beta, cfg.popart_min_sigma).to(device)
        self.sides = {"actor": self.actor} | ({"critic": self.critic} if self.critic else {})
        self.optimizers = {name: torch.optim.Adam(m.parameters(), lr=cfg.learning_rate,
                                                  eps=cfg.adam_eps)
                           for name, m in self.sides.items()}
        self.combiner = {"actor": cfg.actor_combiner, "critic": cfg.critic_combiner}

    def param_counts(self) -> dict[str, int]:
        a = param_count(self.actor)
        c = param_count(self.critic) if self.critic is not None else 0
        return {"actor": a, "critic": c, "total": a + c}

    def value(self, obs: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """Unnormalised value estimate (PopArt's normalised output mapped back)."""
        v = self.critic(obs, task)
        return self.popart.denormalize(v, task) if self.cfg.popart else v

    # ------------------------------------------------------------------ losses
    def actor_task_loss(self, scale: float):
        """Loss of the samples given (one task's slice, or a whole minibatch) times ``scale``.
        Advantages arrive already normalised (``normalize_minibatch``)."""
        cfg = self.cfg

        def loss_fn(forward, b):
            mean, log_std = forward(b["obs"], b["task"])
            loss, stats = ppo.actor_loss(mean, log_std, b["action"], b["logp"], b["adv"],
                                         cfg.clip_coef, cfg.ent_coef)
            return loss * scale, stats
        return loss_fn

    def critic_task_loss(self, scale: float):
        cfg = self.cfg

        def loss_fn(forward, b):
            loss = ppo.critic_loss(forward(b["obs"], b["task"]), b["old_value"], b["target"],
                                   cfg.clip_vloss, cfg.vf_clip_coef, vf_coef=1.0)
            return cfg.vf_coef * loss * scale, {"value_loss": loss.detach()}
        return loss_fn

    def loss_fn(self, side: str, scale: float):
        """``actor_task_loss`` or ``critic_task_loss`` by side name."""
        return self.actor_task_loss(scale) if side == "actor" else self.critic_task_loss(scale)

    # ------------------------------------------------------------------ update
    def prepare_batch(self, roll: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-task data with critic targets in the critic's own units. With PopArt the
        statistics are updated once here, before the minibatch loop, and the rollout-time
        values are re-expressed in the new normalisation (what the rescaled head predicts).
        ``adv_norm=task`` normalises here, over each task's whole rollout."""
        data = {k: roll[k] for k in ("obs", "task", "action", "logp")}
        data["adv"] = ppo.normalize_advantages(roll["adv"], "task") \
            if self.cfg.adv_norm == "task" else roll["adv"]
        if self.critic is None:
            return data
        if self.cfg.popart:
            self.popart.update(roll["ret"],
                               self.critic.head if self.critic.per_task_head else None)
            data["target"] = self.popart.normalize(roll["ret"], roll["task"])
            data["old_value"] = self.popart.normalize(roll["value"], roll["task"])
        else:
            data["target"], data["old_value"] = roll["ret"], roll["value"]
        return data

    def normalize_minibatch(self, mb: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``adv_norm=minibatch``: normalise over the whole minibatch, all tasks together."""
        if self.cfg.adv_norm != "minibatch":
            return mb
        return {**mb, "adv": ppo.normalize_advantages(mb["adv"], "minibatch")}

    def minibatches(self, data: dict[str, torch.Tensor]) -> Iterator[dict[str, torch.Tensor]]:
        """One epoch's minibatches of the per-task data (K, M, ...), their indices drawn first:
        stratified (K, m, ...), m samples of every task, or plain PPO's random ones over all
        K * M samples (B, ...)."""
        K, M = data["adv"].shape[:2]
        if self.cfg.stratified_minibatches:
            rows = torch.arange(K, device=self.device)[:, None]
            for idx in ppo.stratified_minibatches(K, M, self.cfg.num_minibatches, device=self.device):
                yield {k: v[rows, idx] for k, v in data.items()}
        else:
            flat = {k: v.reshape(K * M, *v.shape[2:]) for k, v in data.items()}
            for idx in ppo.random_minibatches(K * M, self.cfg.num_minibatches, device=self.device):
                yield {k: v[idx] for k, v in flat.items()}

    def update(self, roll: dict[str, torch.Tensor], update_idx: int) -> dict[str, Any]:
        """``num_epochs`` passes of ``num_minibatches`` steps over one rollout; each step moves
        each side (actor, then critic) by its own loss's gradient: one backward of the
        minibatch-mean loss (combiner ``sum``), or per-task gradients combined on the shared
        parameters; then that side's norm clip and Adam step."""
        cfg = self.cfg
        t0 = time.perf_counter()
        if cfg.anneal_lr:
            for opt in self.optimizers.values():
                opt.param_groups[0]["lr"] = (1.0 - update_idx / cfg.num_updates) * cfg.learning_rate
        data = self.prepare_batch(roll)
        sample, out = diagnostics.before_update(self, data, update_idx) if cfg.diagnostics \
            else (None, {})
        sums: dict[str, torch.Tensor] = {}
        n_mb = 0
        for epoch in range(cfg.num_epochs):
            for j, mb in enumerate(self.minibatches(data)):
                where = f"update {update_idx + 1}, epoch {epoch + 1}, minibatch {j + 1}"
                for k, v in self.minibatch_step(mb, where).items():
                    sums[k] = sums.get(k, 0.0) + v.detach()
                n_mb += 1
            if cfg.target_kl > 0 and float(sums["approx_kl"]) / n_mb > cfg.target_kl:
                break
        out.update({k: float(v) / n_mb for k, v in sums.items()})
        if sample is not None:
            out.update(diagnostics.after_update(self, sample))
        if cfg.popart:
            out.update(self.popart.summary())
        out["learn_time_s"] = time.perf_counter() - t0
        return out

    def minibatch_step(self, mb: dict[str, torch.Tensor], where: str) -> dict[str, torch.Tensor]:
        """One step of each side on a minibatch ((K, m, ...) when stratified, else (B, ...)):
        its gradient -- one backward of the minibatch-mean loss (combiner ``sum``), or per-task
        gradients combined on the shared parameters -- then its norm clip and Adam step."""
        mb = self.normalize_minibatch(mb)
        out: dict[str, torch.Tensor] = {}
        for side, module in self.sides.items():
            optimizer = self.optimizers[side]
            optimizer.zero_grad(set_to_none=True)
            if self.combiner[side] == "sum":
                flat = {k: v.reshape(-1, *v.shape[2:]) for k, v in mb.items()} \
                    if self.cfg.stratified_minibatches else mb
                loss, stats = self.loss_fn(side, 1.0)(module, flat)
                loss.backward()
            else:
                loss, stats = self.combined_gradient(side, mb)
            norm = self.clip_gradient(side, loss, where)
            optimizer.step()
            out.update({**stats, f"grad_norm_{side}": norm})
        return out

    def combined_gradient(self, side: str, mb: dict[str, torch.Tensor]
                          ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Write ``side``'s ``.grad``: per-task gradients (each task's loss is its 1/K share of
        the minibatch mean, so their `sum` is the plain loss's gradient) combined on the shared
        parameters, summed on the per-task ones. Returns (the loss, the minibatch's stats)."""
        module = self.sides[side]
        grads, aux = pertask.per_task_grads(module, self.loss_fn(side, 1.0 / self.K), mb,
                                            self.cfg.per_task_grad_impl)
        pertask.assign_combined(module, grads, module.per_task_param_names(), self.combiner[side],
                                blocked=self.cfg.per_task_grad_impl == "fused",
                                **combiners.options(self.combiner[side], self.cfg, side))
        stats = {k: v.mean() for k, v in aux.items()}
        return sum(v for k, v in stats.items() if k.endswith("_loss")), stats

    def clip_gradient(self, side: str, loss: torch.Tensor, where: str) -> torch.Tensor:
        """Clip ``side``'s gradient to ``max_grad_norm``; return its norm before. A non-finite
        loss or norm is ``TrainingDiverged``, naming ``where``."""
        params = [p for p in self.sides[side].parameters() if p.grad is not None]
        norm = torch.nn.utils.get_total_norm([p.grad for p in params])
        if not bool(torch.isfinite(loss.detach()) & torch.isfinite(norm)):
            raise TrainingDiverged(f"non-finite {side} loss or gradient at {where} "
                                   f"(loss={float(loss.detach())}, grad norm={float(norm)})")
        torch.nn.utils.clip_grads_with_norm_(params, self.cfg.max_grad_norm, norm)
        return norm

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {"actor": self.actor.state_dict(),
                "critic": self.critic.state_dict() if self.critic is not None else None,
                "popart": self.popart.state_dict(),
                "optimizers": {n: o.state_dict() for n, o in self.optimizers.items()}}

    def load_state_dict(self, s: dict[str, Any]) -> None:
        self.actor.load_state_dict(s["actor"])
        if self.critic is not None:
            self.critic.load_state_dict(s["critic"])
        self.popart.load_state_dict(s["popart"])
        for n, o in self.optimizers.items():
            o.load_state_dict(s["optimizers"][n])
