"""The PPO learner: networks, PopArt, optimiser and the update on one rollout.

Holds no environments, so the update can be timed and tested on synthetic batches.
A rollout arrives regrouped per task, every tensor shaped (K tasks, M samples, ...).
"""

from __future__ import annotations

import time
from typing import Any

import torch

from toppo import pertask, ppo
from toppo.config import TrainConfig
from toppo.networks import build_actor, build_critic, param_count
from toppo.popart import PopArt


class TrainingDiverged(RuntimeError):
    """A non-finite loss or gradient; the message names the update, epoch and minibatch."""


class Learner:
    def __init__(self, cfg: TrainConfig, obs_dim: int, act_dim: int, device: torch.device):
        self.cfg, self.device, self.K = cfg, device, cfg.num_tasks
        self.actor = build_actor(cfg, obs_dim, act_dim).to(device)
        self.critic = build_critic(cfg, obs_dim).to(device)
        self.popart = PopArt(self.K, cfg.popart_mode, cfg.popart_beta, cfg.popart_min_sigma).to(device)
        self.params = list(self.actor.parameters()) + list(self.critic.parameters())
        self.optimizer = torch.optim.Adam(self.params, lr=cfg.learning_rate, eps=cfg.adam_eps)

    def param_counts(self) -> dict[str, int]:
        a, c = param_count(self.actor), param_count(self.critic)
        return {"actor": a, "critic": c, "total": a + c}

    def value(self, obs: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """Unnormalised value estimate (PopArt's normalised output mapped back)."""
        v = self.critic(obs, task)
        return self.popart.denormalize(v, task) if self.cfg.popart else v

    # ------------------------------------------------------------------ losses
    def actor_task_loss(self, scale: float):
        """Loss of the samples given (one task's slice, or a whole minibatch) times ``scale``."""
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
                                   cfg.clip_vloss, cfg.vf_clip_coef, cfg.vf_coef)
            return loss * scale, {"value_loss": loss.detach()}
        return loss_fn

    # ------------------------------------------------------------------ update
    def prepare_batch(self, roll: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-task data with critic targets in the critic's own units. With PopArt the
        statistics are updated once here, before the minibatch loop, and the rollout-time
        values are re-expressed in the new normalisation (what the rescaled head predicts)."""
        if self.cfg.popart:
            self.popart.update(roll["ret"], self.critic.head)
            target = self.popart.normalize(roll["ret"], roll["task"])
            old_value = self.popart.normalize(roll["value"], roll["task"])
        else:
            target, old_value = roll["ret"], roll["value"]
        return {"obs": roll["obs"], "task": roll["task"], "action": roll["action"],
                "logp": roll["logp"], "adv": ppo.normalize_per_task(roll["adv"]),
                "target": target, "old_value": old_value}

    def critic_diagnostics(self, data: dict[str, torch.Tensor], max_per_task: int = 256) -> dict[str, float]:
        """Per-task critic gradients (each task's mean loss) at the current parameters, on
        the first ``max_per_task`` samples of every task."""
        m = min(data["adv"].shape[1], max_per_task)
        mb = {k: v[:, :m] for k, v in data.items()}
        grads, _ = pertask.per_task_grads(self.critic, self.critic_task_loss(1.0), mb,
                                          self.cfg.per_task_grad_impl)
        _, G = pertask.split_shared(grads, self.critic.per_task_param_names())
        return pertask.gradient_diagnostics(G, "critic")

    def minibatch_step(self, mb: dict[str, torch.Tensor], where: str) -> dict[str, torch.Tensor]:
        """One optimiser step on a minibatch: (K, m, ...) when stratified, else (B, ...)."""
        cfg, K = self.cfg, self.K
        self.optimizer.zero_grad(set_to_none=True)
        if cfg.actor_combiner != "sum" or cfg.critic_combiner != "sum":
            # per-task losses are each task's share of the minibatch mean (so `sum` of them
            # is plain PPO's loss); shared parameters get the side's combined direction
            stats: dict[str, torch.Tensor] = {}
            for module, loss_fn, combiner in (
                    (self.actor, self.actor_task_loss(1.0 / K), cfg.actor_combiner),
                    (self.critic, self.critic_task_loss(1.0 / K), cfg.critic_combiner)):
                grads, aux = pertask.per_task_grads(module, loss_fn, mb, cfg.per_task_grad_impl)
                pertask.assign_combined(module, grads, module.per_task_param_names(), combiner,
                                        cagrad_c=cfg.cagrad_c, fairgrad_alpha=cfg.fairgrad_alpha)
                stats.update({k: v.mean() for k, v in aux.items()})
            loss = stats["policy_loss"] + stats["value_loss"]
        else:  # plain PPO: one backward of the minibatch-mean loss
            if cfg.stratified_minibatches:
                mb = {k: v.reshape(-1, *v.shape[2:]) for k, v in mb.items()}
            a_loss, stats = self.actor_task_loss(1.0)(self.actor, mb)
            c_loss, c_stats = self.critic_task_loss(1.0)(self.critic, mb)
            stats.update(c_stats)
            loss = a_loss + c_loss
            loss.backward()
        gn_actor = torch.nn.utils.get_total_norm([p.grad for p in self.actor.parameters()])
        gn_critic = torch.nn.utils.get_total_norm([p.grad for p in self.critic.parameters()])
        total_norm = torch.sqrt(gn_actor**2 + gn_critic**2)
        if not bool(torch.isfinite(loss.detach()) & torch.isfinite(total_norm)):
            raise TrainingDiverged(f"non-finite loss or gradient at {where} "
                                   f"(loss={float(loss.detach())}, grad norm={float(total_norm)})")
        # one global clip over both sides, after the per-task gradients were combined
        torch.nn.utils.clip_grads_with_norm_(self.params, cfg.max_grad_norm, total_norm)
        self.optimizer.step()
        return {**stats, "grad_norm_actor": gn_actor, "grad_norm_critic": gn_critic}

    def update(self, roll: dict[str, torch.Tensor], update_idx: int) -> dict[str, Any]:
        """``num_epochs`` passes of ``num_minibatches`` steps over one rollout."""
        cfg, K = self.cfg, self.K
        t0 = time.perf_counter()
        if cfg.anneal_lr:
            self.optimizer.param_groups[0]["lr"] = (1.0 - update_idx / cfg.num_updates) * cfg.learning_rate
        data = self.prepare_batch(roll)
        diag = self.critic_diagnostics(data) if cfg.diagnostics else {}
        M = data["adv"].shape[1]
        flat = {k: v.reshape(K * M, *v.shape[2:]) for k, v in data.items()}
        rows = torch.arange(K, device=self.device)[:, None]
        sums: dict[str, torch.Tensor] = {}
        n_mb = 0
        for epoch in range(cfg.num_epochs):
            if cfg.stratified_minibatches:
                batches = ({k: v[rows, idx] for k, v in data.items()} for idx in
                           ppo.stratified_minibatches(K, M, cfg.num_minibatches, device=self.device))
            else:
                batches = ({k: v[idx] for k, v in flat.items()} for idx in
                           ppo.random_minibatches(K * M, cfg.num_minibatches, device=self.device))
            for j, mb in enumerate(batches):
                where = f"update {update_idx + 1}, epoch {epoch + 1}, minibatch {j + 1}"
                for k, v in self.minibatch_step(mb, where).items():
                    sums[k] = sums.get(k, 0.0) + v.detach()
                n_mb += 1
            if cfg.target_kl > 0 and float(sums["approx_kl"]) / n_mb > cfg.target_kl:
                break
        out = {k: float(v) / n_mb for k, v in sums.items()}
        out.update(diag)
        if cfg.popart:
            out.update(self.popart.summary())
        out["learn_time_s"] = time.perf_counter() - t0
        return out

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                "popart": self.popart.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, s: dict[str, Any]) -> None:
        self.actor.load_state_dict(s["actor"])
        self.critic.load_state_dict(s["critic"])
        self.popart.load_state_dict(s["popart"])
        self.optimizer.load_state_dict(s["optimizer"])
