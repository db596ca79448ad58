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
from typing import Any

import torch

from toppo.algo import combiners, pertask, ppo
from toppo.algo.networks import body_param_names, build_actor, build_critic, param_count
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

    def diagnostics_sample(self, data: dict[str, torch.Tensor], update_idx: int
                           ) -> dict[str, torch.Tensor]:
        """A random sample of ``diagnostics_samples`` transitions of every task (K, n),
        drawn from its own generator so diagnostics never change the training stream."""
        M = data["adv"].shape[1]
        n = min(M, self.cfg.diagnostics_samples)
        gen = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + update_idx)
        idx = torch.argsort(torch.rand(self.K, M, generator=gen), dim=1)[:, :n].to(self.device)
        rows = torch.arange(self.K, device=self.device)[:, None]
        return self.normalize_minibatch({k: v[rows, idx] for k, v in data.items()})

    def gradient_diagnostics(self, sample: dict[str, torch.Tensor]) -> dict[str, float]:
        """Per-task gradients of each side's loss (each task's mean loss) at the current
        parameters, over the body parameters only -- the set every variant shares -- so
        norm spread, cosines and Gram condition numbers compare across variants."""
        out: dict[str, float] = {}
        for name, module in self.sides.items():
            grads, _ = pertask.per_task_grads(module, self.loss_fn(name, 1.0), sample,
                                              self.cfg.per_task_grad_impl)
            body = body_param_names(module)
            _, G = pertask.split_shared(grads, set(grads) - body)
            out.update(pertask.gradient_diagnostics(G, name))
        return out

    @torch.no_grad()
    def value_fit(self, sample: dict[str, torch.Tensor]) -> dict[str, float]:
        """Mean |V - R| and explained variance on ``sample``, unnormalised units."""
        obs, task = sample["obs"].flatten(0, 1), sample["task"].flatten(0, 1)
        target = sample["target"].flatten(0, 1)
        if self.cfg.popart:
            target = self.popart.denormalize(target, task)
        err = self.value(obs, task) - target
        var = target.var(correction=0)
        return {"value_abs_err": float(err.abs().mean()),
                "explained_variance": float(1 - err.var(correction=0) / var) if var > 0 else float("nan")}

    def _side_step(self, name: str, mb: dict[str, torch.Tensor], combiner: str, where: str
                   ) -> dict[str, torch.Tensor]:
        """Gradient of one side on a minibatch -- combined over per-task gradients, or one
        backward of the minibatch-mean loss -- then that side's clip and Adam step."""
        cfg, module, opt = self.cfg, self.sides[name], self.optimizers[name]
        opt.zero_grad(set_to_none=True)
        if combiner != "sum":
            # each task's loss is its share of the minibatch mean, so `sum` of them is the
            # plain loss; shared parameters get the combined direction
            grads, aux = pertask.per_task_grads(module, self.loss_fn(name, 1.0 / self.K), mb,
                                                cfg.per_task_grad_impl)
            pertask.assign_combined(module, grads, module.per_task_param_names(), combiner,
                                    **combiners.options(combiner, cfg, name))
            stats = {k: v.mean() for k, v in aux.items()}
            loss = sum(v for k, v in stats.items() if k.endswith("_loss"))  # checked below
        else:
            flat = {k: v.reshape(-1, *v.shape[2:]) for k, v in mb.items()} \
                if cfg.stratified_minibatches else mb
            loss, stats = self.loss_fn(name, 1.0)(module, flat)
            loss.backward()
        params = [p for p in module.parameters() if p.grad is not None]
        norm = torch.nn.utils.get_total_norm([p.grad for p in params])
        if not bool(torch.isfinite(loss.detach()) & torch.isfinite(norm)):
            raise TrainingDiverged(f"non-finite {name} loss or gradient at {where} "
                                   f"(loss={float(loss.detach())}, grad norm={float(norm)})")
        torch.nn.utils.clip_grads_with_norm_(params, cfg.max_grad_norm, norm)
        opt.step()
        return {**stats, f"grad_norm_{name}": norm}

    def minibatch_step(self, mb: dict[str, torch.Tensor], where: str) -> dict[str, torch.Tensor]:
        """One step of each side on a minibatch: (K, m, ...) when stratified, else (B, ...)."""
        mb = self.normalize_minibatch(mb)
        stats = self._side_step("actor", mb, self.cfg.actor_combiner, where)
        if self.critic is not None:
            stats.update(self._side_step("critic", mb, self.cfg.critic_combiner, where))
        return stats

    def update(self, roll: dict[str, torch.Tensor], update_idx: int) -> dict[str, Any]:
        """``num_epochs`` passes of ``num_minibatches`` steps over one rollout."""
        cfg, K = self.cfg, self.K
        t0 = time.perf_counter()
        if cfg.anneal_lr:
            for opt in self.optimizers.values():
                opt.param_groups[0]["lr"] = (1.0 - update_idx / cfg.num_updates) * cfg.learning_rate
        data = self.prepare_batch(roll)
        out: dict[str, Any] = {}
        sample = None
        if cfg.diagnostics:
            t_diag = time.perf_counter()
            sample = self.diagnostics_sample(data, update_idx)
            out.update(self.gradient_diagnostics(sample))
            if self.critic is not None:
                out.update({f"{k}_before": v for k, v in self.value_fit(sample).items()})
            out["diagnostics_time_s"] = time.perf_counter() - t_diag
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
        out.update({k: float(v) / n_mb for k, v in sums.items()})
        if sample is not None and self.critic is not None:
            out.update({f"{k}_after": v for k, v in self.value_fit(sample).items()})
        if cfg.popart:
            out.update(self.popart.summary())
        out["learn_time_s"] = time.perf_counter() - t0
        return out

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
