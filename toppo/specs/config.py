"""Training configuration: every hyperparameter is a named, documented field.

The paper's hyperparameter table is not public. Defaults are the Meta-World+ MT-PPO
reference for MT50 (rainx0r/metaworld-algorithms, ``examples/multi_task/ppo_mt50.py``),
except where a field's help names a deliberate difference; ``docs/fidelity.md`` lists
every field next to the reference's value with file and line. Variants
(``toppo.specs.registry.VARIANTS``, resolved by ``toppo.specs.variants``) are overrides on these
defaults; command-line ``key=value`` pairs override the variant.

A field's help is the docstring written under it, read once by :func:`field_help`
(``python -m toppo.train --help`` lists every field with its default and its help).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import inspect
import json
import math
import textwrap
from dataclasses import dataclass, fields
from typing import Any

from toppo.specs.registry import BENCHMARKS, COMBINERS, REWARD_VERSIONS

POPART_MODES = ("welford", "ema")
ADV_NORMS = ("minibatch", "none", "task")
BASELINES = ("mlp", "linear")
POLICY_STDS = ("head", "per_task")
INITS = ("he_uniform", "orthogonal")
DEVICES = ("auto", "cpu", "cuda")
EVAL_MODES = ("overlap", "inline")
WANDB_MODES = ("online", "offline")
ENV_BACKENDS = ("metaworld", "envpool")


# Fields that decide where and how a run is executed, never a logged number: left out of
# the config hash, and filled with their defaults when a resolved config lacks them.
UNHASHED_FIELDS = ("device", "torch_threads", "cores", "env_workers", "progress_every_s",
                   "checkpoint_every_updates", "eval_mode", "eval_workers", "tensorboard",
                   "wandb_project", "wandb_entity", "wandb_mode")
# Fields added after results were recorded (a new combiner's option, say): left out of the
# config hash while they hold their default, so every config recorded before the field
# existed keeps its hash; a resolved config that lacks one takes the default
# (docs/extending.md). Set away from the default, such a field is hashed like any other.
ADDED_FIELDS: tuple[str, ...] = ("env_backend",)
# Fields split into several: the old name -> its replacements, which a resolved config written
# before the split takes from the old value. The hash keeps the old name and value while the
# replacements agree, so every config recorded before the split keeps its hash.
SPLIT_FIELDS: dict[str, tuple[str, ...]] = {
    "fairgrad_alpha": ("actor_fairgrad_alpha", "critic_fairgrad_alpha"),
}
# Fields that take a count or ``auto``.
AUTO_COUNT_FIELDS = ("env_workers", "eval_workers")


class ConfigError(ValueError):
    """A configuration key or value that cannot be used; the message names the key."""


@dataclass(frozen=True)
class TrainConfig:
    # --- experiment -------------------------------------------------------------------
    benchmark: str = "MT10"
    """MT10 or MT50 (metaworld 3.x, one env per task)"""
    reward_version: str = "v2"
    """metaworld reward function version: v1 or v2"""
    seed: int = 0
    """seeds torch, numpy and the environments (and their goals)"""
    total_steps: int = 20_000_000
    """training env steps summed over tasks (MT10 20M, MT50 100M)"""
    device: str = "auto"
    """auto (cuda if available), cpu or cuda"""
    torch_threads: int = 0
    """torch intra-op threads on CPU; 0: torch's default (1 in portable numerics:
    toppo.harness.numerics.threads)"""
    cores: int = 0
    """CPU cores this job may use (env_workers=auto); 0 = the process's affinity"""

    # --- environments -----------------------------------------------------------------
    envs_per_task: int = 1
    """env copies per task stepped in parallel"""
    env_workers: int | str = "auto"
    """0: step in the trainer; N: N worker processes; auto: the job's cores less its eval workers
    (toppo.specs.cores); the same results for every count"""
    async_envs: bool = False
    """gymnasium AsyncVectorEnv, a subprocess per env (env_workers=0)"""
    max_episode_steps: int = 500
    """metaworld's time limit; ends by truncation (bootstrapped)"""
    env_backend: str = "metaworld"
    """training envs only: metaworld's Python envs, or envpool (EnvPool's C++ port, opt-in: MT10 and
    V2 rewards only, fresh goals at every reset, its own threads so env_workers=0; docs/envpool.md);
    evaluation always on metaworld's envs"""

    # --- PPO core ---------------------------------------------------------------------
    rollout_steps_per_task: int = 10_000
    """env steps per task collected per update"""
    num_epochs: int = 16
    """passes over the rollout per update"""
    num_minibatches: int = 32
    """minibatches per epoch"""
    learning_rate: float = 3e-4
    """Adam step size, the same for each side's own optimiser"""
    adam_eps: float = 1e-5
    """Adam's epsilon"""
    anneal_lr: bool = False
    """linear decay of the learning rate to 0 over the budget"""
    gamma: float = 0.99
    """discount factor"""
    gae_lambda: float = 0.97
    """GAE's lambda"""
    bootstrap_truncation: bool = True
    """DEVIATION: V(final obs) at the time limit (ref: terminal)"""
    baseline: str = "mlp"
    """mlp critic, or linear: per-task feature baseline (MT10 reference)"""
    adv_norm: str = "minibatch"
    """minibatch (over all tasks), none (MT10 ref) or task (per task)"""
    clip_coef: float = 0.2
    """PPO surrogate clip"""
    clip_vloss: bool = False
    """PPO value clipping, in the critic's own (PopArt-normalised) units"""
    vf_clip_coef: float = 0.2
    """value clip range when clip_vloss is on"""
    ent_coef: float = 5e-3
    """weight of the policy's entropy bonus in the actor loss"""
    vf_coef: float = 1e-3
    """weight of the critic loss inside the critic's own optimiser"""
    max_grad_norm: float = 1.0
    """grad-norm clip of each side separately, after combining"""
    target_kl: float = 0.0
    """early-stop the epoch loop above this approx-KL; 0 = off"""

    # --- networks ---------------------------------------------------------------------
    hidden_sizes: tuple[int, ...] = (400, 400, 400)
    """widths of the hidden layers of the actor's and the critic's bodies"""
    activation: str = "relu"
    """the hidden layers' activation: relu or tanh"""
    init: str = "he_uniform"
    """he_uniform (zero bias, uniform(1e-3/3e-3) heads) or orthogonal"""
    policy_std: str = "head"
    """head: state-dependent log-std outputs; per_task: (K, A) rows"""
    log_std_init: float = 0.0
    """initial per-task log-std (policy_std=per_task)"""
    log_std_min: float = -20.0
    """lower log-std clip (policy_std=head), as the reference"""
    log_std_max: float = 2.0
    """upper log-std clip (policy_std=head), as the reference"""
    squash_tanh: bool = True
    """tanh-squashed Gaussian (MT50 reference; MT10 reference: off)"""
    ln_actor: bool = False
    """LayerNorm before each activation in the actor body (LN-a)"""
    ln_critic: bool = False
    """LayerNorm before each activation in the critic body (LN-c)"""
    critic_heads: str = "shared"
    """shared: one value output; per_task: one output per task"""

    # --- Critic Balancing ---------------------------------------------------------------
    popart: bool = False
    """per-task PopArt value normalisation: per-task target statistics; with critic_heads=per_task
    also each task's output row rescaled to preserve outputs (Hessel et al.), with a shared head the
    statistics only (docs/fidelity.md says why)"""
    popart_mode: str = "welford"
    """welford (exact running stats) or ema"""
    popart_beta: float = 3e-4
    """EMA step size per PPO update (popart_mode=ema; Hessel et al.)"""
    popart_min_sigma: float = 1e-4
    """floor on the per-task scale"""
    stratified_minibatches: bool = False
    """equal samples per task in every minibatch"""
    actor_combiner: str = "sum"
    """per-task gradient combiner on the shared actor params"""
    critic_combiner: str = "sum"
    """per-task gradient combiner on the shared critic params"""
    cagrad_c: float = 0.4
    """CAGrad's conflict-averse radius c"""
    actor_fairgrad_alpha: float = 1.0
    """FairGrad's alpha on the actor (1 = proportional fairness)"""
    critic_fairgrad_alpha: float = 1.0
    """FairGrad's alpha on the critic"""
    per_task_grad_impl: str = "vmap"
    """vmap (torch.func), loop (reference, K backwards) or fused (faster, not bitwise: toppo.algo.pertask)"""

    # --- evaluation -------------------------------------------------------------------
    eval_every_steps: int = 1_000_000
    """cadence in training env steps (summed over tasks)"""
    eval_episodes: int = 50
    """episodes per task, pseudorandom goals (50 covers all goals)"""
    eval_envs_per_task: int = 10
    """eval env copies per task stepped together"""
    eval_mode: str = "overlap"
    """overlap: worker process(es) evaluate while training goes on; inline: the trainer does,
    between updates"""
    eval_workers: int | str = "auto"
    """eval worker processes (eval_mode=overlap), each evaluation split by task; auto: the cores'
    share of evaluation work at the cadence (toppo.specs.cores)"""

    # --- diagnostics and bookkeeping ----------------------------------------------------
    diagnostics: bool = True
    """per-task grad norms, cosines, Gram cond. (actor and critic bodies)"""
    diagnostics_samples: int = 256
    """random samples per task the diagnostics use"""
    checkpoint_every_updates: int = 1
    """write checkpoints/latest.pt every N updates"""
    progress_every_s: float = 10.0
    """seconds between progress lines"""
    # live curves (toppo.harness.livelog; optional packages, the CSV logs stay the record)
    tensorboard: bool = True
    """event files in {run}/tensorboard/ when tensorboard is installed"""
    wandb_project: str = ""
    """a Weights & Biases run per cell in this project; "" = none"""
    wandb_entity: str = ""
    """W&B entity (team or user); "" = the logged-in default"""
    wandb_mode: str = "online"
    """online or offline (synced later with `wandb sync`)"""

    # ------------------------------------------------------------------------------------
    @property
    def num_tasks(self) -> int:
        return len(BENCHMARKS[self.benchmark])

    @property
    def steps_per_update(self) -> int:
        return self.rollout_steps_per_task * self.num_tasks

    @property
    def num_updates(self) -> int:
        return -(-self.total_steps // self.steps_per_update)

    def eval_due(self, update: int) -> bool:
        """Whether the trainer evaluates after update ``update`` (1-based): when the step
        count crosses a multiple of ``eval_every_steps``, and after the last update."""
        every, per = self.eval_every_steps, self.steps_per_update
        return update == self.num_updates or update * per // every > (update - 1) * per // every

    @property
    def num_evaluations(self) -> int:
        return sum(map(self.eval_due, range(1, self.num_updates + 1)))

    @property
    def minibatch_per_task(self) -> int:
        """Samples of each task in one stratified minibatch."""
        return self.rollout_steps_per_task // self.num_minibatches

    @property
    def needs_per_task_grads(self) -> bool:
        return self.actor_combiner != "sum" or self.critic_combiner != "sum" or self.diagnostics

    @property
    def has_critic(self) -> bool:
        return self.baseline == "mlp"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["hidden_sizes"] = list(self.hidden_sizes)
        return d

    def config_hash(self) -> str:
        """Hash of everything that changes the result (device and bookkeeping excluded;
        eval_mode/eval_workers only decide where evaluations run, on the same frozen weights
        with the same single-threaded CPU policy: eval.csv is byte-identical, tested)."""
        d = self.to_dict()
        for k in UNHASHED_FIELDS:
            d.pop(k)
        defaults = TrainConfig().to_dict()
        for k in ADDED_FIELDS:
            if d[k] == defaults[k]:
                d.pop(k)
        for old, parts in SPLIT_FIELDS.items():
            if len({d[p] for p in parts}) == 1:
                d[old] = d[parts[0]]
                for p in parts:
                    d.pop(p)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]

    def validate(self) -> TrainConfig:
        def bad(key: str, why: str) -> ConfigError:
            return ConfigError(f"config key '{key}': {why} (got {getattr(self, key)!r})")

        for f in fields(self):  # every float field, whichever are added (issue 11)
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise bad(f.name, "must be a finite number")
        if self.benchmark not in BENCHMARKS:
            raise bad("benchmark", f"unknown benchmark, expected one of {sorted(BENCHMARKS)}")
        for side in ("actor_combiner", "critic_combiner"):
            if getattr(self, side) not in COMBINERS:
                raise bad(side, f"unknown combiner, expected one of {tuple(COMBINERS)}")
        for key, allowed in (("reward_version", REWARD_VERSIONS), ("device", DEVICES),
                             ("popart_mode", POPART_MODES), ("activation", ("relu", "tanh")),
                             ("adv_norm", ADV_NORMS), ("baseline", BASELINES),
                             ("policy_std", POLICY_STDS), ("init", INITS),
                             ("critic_heads", ("shared", "per_task")), ("eval_mode", EVAL_MODES),
                             ("wandb_mode", WANDB_MODES), ("env_backend", ENV_BACKENDS),
                             ("per_task_grad_impl", ("vmap", "loop", "fused"))):
            if getattr(self, key) not in allowed:
                raise bad(key, f"expected one of {allowed}")
        if self.log_std_min >= self.log_std_max:
            raise bad("log_std_min", f"must be below log_std_max={self.log_std_max}")
        if not self.has_critic:
            critic_side = [k for k, on in (
                ("popart", self.popart), ("ln_critic", self.ln_critic),
                ("critic_heads", self.critic_heads != "shared"),
                ("critic_combiner", self.critic_combiner != "sum"),
                ("clip_vloss", self.clip_vloss)) if on]
            if critic_side:
                raise bad("baseline", f"the linear baseline has no critic network, so "
                          f"{', '.join(critic_side)} cannot apply; use baseline=mlp")
            if self.bootstrap_truncation:
                raise bad("baseline", "the linear baseline is fitted to Monte-Carlo returns of "
                          "whole episodes and has no value for a truncated state; set "
                          "bootstrap_truncation=false (as the MT10 reference)")
            T = self.rollout_steps_per_task // self.envs_per_task
            if T % self.max_episode_steps:
                raise bad("baseline", f"the linear baseline is fitted on whole episodes: "
                          f"rollout_steps_per_task/envs_per_task={T} must be a multiple of "
                          f"max_episode_steps={self.max_episode_steps}")
        for key, least in (("env_workers", 0), ("eval_workers", 1)):
            value = getattr(self, key)
            if not (value == "auto" or (isinstance(value, int) and not isinstance(value, bool)
                                        and value >= least)):
                raise bad(key, f"must be an integer of at least {least}, or auto")
        if self.async_envs and self.env_workers not in (0, "auto"):
            raise bad("env_workers", "async_envs steps every env in its own subprocess already; "
                      "set env_workers=0 with async_envs=true")
        if self.env_backend == "envpool":
            self._check_envpool(bad)
        positive = [
            "total_steps", "envs_per_task", "max_episode_steps", "rollout_steps_per_task",
            "num_epochs", "num_minibatches", "eval_every_steps", "eval_episodes",
            "eval_envs_per_task", "checkpoint_every_updates", "diagnostics_samples",
        ]
        for key in positive:
            if getattr(self, key) <= 0:
                raise bad(key, "must be a positive integer")
        nonneg = ["learning_rate", "adam_eps", "clip_coef", "vf_clip_coef", "ent_coef",
                  "vf_coef", "max_grad_norm", "target_kl", "cagrad_c", "popart_beta",
                  "popart_min_sigma", "torch_threads", "cores", "seed"]
        for key in nonneg:
            if getattr(self, key) < 0:
                raise bad(key, "must be non-negative")
        for key in ("gamma", "gae_lambda"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise bad(key, "must lie in [0, 1]")
        for key in ("actor_fairgrad_alpha", "critic_fairgrad_alpha"):
            if getattr(self, key) <= 0:
                raise bad(key, "must be positive")
        if not self.hidden_sizes or any(h <= 0 for h in self.hidden_sizes):
            raise bad("hidden_sizes", "must be a non-empty list of positive widths")
        if self.rollout_steps_per_task % self.envs_per_task:
            raise bad("rollout_steps_per_task", f"must be divisible by envs_per_task={self.envs_per_task}")
        if self.minibatch_per_task < 1:
            raise bad(
                "num_minibatches",
                f"a minibatch cannot hold every task: {self.rollout_steps_per_task} rollout steps "
                f"per task split into {self.num_minibatches} minibatches leaves <1 sample per task",
            )
        needs_strat = self.actor_combiner != "sum" or self.critic_combiner != "sum"
        if needs_strat and not self.stratified_minibatches:
            raise bad("stratified_minibatches",
                      "per-task gradient combiners need task-stratified minibatches; set it to true")
        return self

    def _check_envpool(self, bad) -> None:
        """What EnvPool 1.2.5's Meta-World cannot train (docs/envpool.md), refused by key
        before any env is built; the same rules as toppo.algo.envpool_envs.check_supported."""
        if self.reward_version != "v2":
            raise bad("reward_version", "env_backend=envpool has only metaworld's V2 reward "
                      "functions (envpool 1.2.5 ports no V1); use reward_version=v2 or "
                      "env_backend=metaworld")
        if self.benchmark != "MT10":
            raise bad("benchmark", "env_backend=envpool trains MT10 only: in envpool 1.2.5 the "
                      "goals of MT50's hammer-v3 and shelf-place-v3 drift at every reset and 8 more "
                      "MT50 rewards differ from metaworld's (docs/envpool.md); use "
                      "env_backend=metaworld")
        if self.max_episode_steps > 500:
            raise bad("max_episode_steps", "env_backend=envpool: metaworld's max_path_length "
                      "is 500")
        if self.async_envs:
            raise bad("async_envs", "env_backend=envpool steps its envs on EnvPool's own "
                      "threads, not in gymnasium subprocesses; set async_envs=false")
        if self.env_workers not in (0, "auto"):
            raise bad("env_workers", "env_backend=envpool steps its envs on EnvPool's own "
                      "threads in the trainer's process; set env_workers=0 or auto (auto gives "
                      "0 with envpool)")


FIELD_TYPES = {f.name: f.type for f in fields(TrainConfig)}


@functools.cache
def field_help() -> dict[str, str]:
    """Each TrainConfig field's help, in one line: the docstring under the field (this file's
    source, read once). A field without one is absent (tests/test_train_help.py)."""
    body = ast.parse(textwrap.dedent(inspect.getsource(TrainConfig))).body[0].body
    return {stmt.target.id: " ".join(doc.value.value.split())
            for stmt, doc in zip(body, body[1:])
            if isinstance(stmt, ast.AnnAssign) and isinstance(doc, ast.Expr)
            and isinstance(doc.value, ast.Constant) and isinstance(doc.value.value, str)}


def cli_value(value: Any) -> str:
    """A YAML config value as the ``value`` of a ``key=value`` trainer argument (what
    :func:`parse_value` parses): booleans lower case, lists comma-separated."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def parse_value(key: str, raw: str) -> Any:
    """Parse a ``key=value`` override string into the type of the field ``key``."""
    if key not in FIELD_TYPES:
        raise ConfigError(
            f"unknown config key '{key}'; known keys: {', '.join(sorted(FIELD_TYPES))}"
        )
    default = getattr(TrainConfig(), key)
    if key in AUTO_COUNT_FIELDS:
        if raw.strip().lower() == "auto":
            return "auto"
        if not raw.strip().isdigit():
            raise ConfigError(f"config key '{key}': expected a count or auto (got {raw!r})")
        return int(raw)
    try:
        if isinstance(default, bool):
            low = raw.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if isinstance(default, int):
            try:
                return int(raw.replace("_", ""))
            except ValueError:
                as_float = float(raw)  # accept 2e7 for step counts
                if not as_float.is_integer():
                    raise
                return int(as_float)
        if isinstance(default, float):
            value = float(raw)
            if not math.isfinite(value):
                raise ConfigError(f"config key '{key}': must be a finite number (got {raw!r})")
            return value
        if isinstance(default, tuple):  # 400,400,400 or [400, 400, 400] or "400 400 400"
            inner = raw.strip().strip("[]()").strip()
            parts = [p.strip() for p in inner.split(",")] if "," in inner else inner.split()
            if not parts or "" in parts:
                raise ConfigError(f"config key '{key}': empty entry in {raw!r}")
            return tuple(int(p) for p in parts)
    except ConfigError:
        raise
    except ValueError as exc:
        raise ConfigError(f"config key '{key}': cannot parse {raw!r} as {type(default).__name__}") from exc
    return raw


def coerce_value(key: str, value: Any) -> Any:
    """A value as YAML gives it (a number, a boolean, a list, or text, which
    :func:`parse_value` reads) in the type of the field ``key``; ConfigError otherwise."""
    if isinstance(value, str):
        return parse_value(key, value)
    if key not in FIELD_TYPES:
        raise ConfigError(
            f"unknown config key '{key}'; known keys: {', '.join(sorted(FIELD_TYPES))}"
        )
    default = getattr(TrainConfig(), key)
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if key in AUTO_COUNT_FIELDS:  # a count ("auto" is text)
        if number and isinstance(value, int):
            return value
    elif isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, int):
        if number and float(value).is_integer():
            return int(value)  # accept 2e7 for step counts
    elif isinstance(default, float):
        if number:
            if not math.isfinite(value):
                raise ConfigError(f"config key '{key}': must be a finite number (got {value!r})")
            return float(value)
    elif isinstance(default, tuple):
        if isinstance(value, (list, tuple)) and value and all(
                isinstance(v, int) and not isinstance(v, bool) for v in value):
            return tuple(value)
    raise ConfigError(f"config key '{key}': cannot use {value!r} as {type(default).__name__}")


def make_config(base: dict[str, Any] | None = None, **overrides: Any) -> TrainConfig:
    """Build and validate a TrainConfig, refusing unknown keys by name."""
    values = dict(base or {})
    values.update(overrides)
    unknown = sorted(set(values) - set(FIELD_TYPES))
    if unknown:
        raise ConfigError(f"unknown config key(s): {', '.join(unknown)}")
    if "hidden_sizes" in values:
        values["hidden_sizes"] = tuple(int(h) for h in values["hidden_sizes"])
    return TrainConfig(**values).validate()


def config_from_dict(d: dict[str, Any]) -> TrainConfig:
    """Rebuild a TrainConfig from a resolved ``config.yaml`` mapping, which names every
    field. A mapping that lacks a field that changes results was written by an older
    trainer, whose defaults for it differed: it is refused by name rather than completed
    with today's defaults (execution-only fields, ``UNHASHED_FIELDS``, and fields added
    since, ``ADDED_FIELDS``, take defaults; a field split since, ``SPLIT_FIELDS``, gives its
    value to its replacements)."""
    if not isinstance(d, dict):
        raise ConfigError(f"a resolved config must be a mapping of fields, got {type(d).__name__}")
    d = dict(d)
    for old, parts in SPLIT_FIELDS.items():
        if old in d:
            value = d.pop(old)
            for p in parts:
                d.setdefault(p, value)
    missing = [k for k in FIELD_TYPES if k not in d and k not in (*UNHASHED_FIELDS, *ADDED_FIELDS)]
    if missing:
        raise ConfigError(f"resolved config lacks key(s) {', '.join(missing)}: it was written by "
                          f"an older version of the trainer, whose defaults differ; retrain it")
    return make_config(d)


__all__ = [
    "ADDED_FIELDS",
    "ConfigError",
    "SPLIT_FIELDS",
    "ENV_BACKENDS",
    "TrainConfig",
    "config_from_dict",
    "coerce_value",
    "make_config",
    "parse_value",
]
