"""The registry: every name the harness knows, defined once. Everything else reads it.

    BENCHMARKS       benchmark -> its task names, in env order (task_index = position)
    REWARD_VERSIONS  metaworld reward function versions
    COMBINERS        per-task gradient combiner -> its function and the config fields it takes
    VARIANTS         named variant -> overrides on TrainConfig's defaults (a variant row)
    LABELS           named variant -> its row label in tables and figures
    GROUPS           named variant groups (the workflow config's grid and the report name them)
    COMBINER_GRID    (actor combiner, critic combiner) -> the variant of that grid cell

Readers: ``toppo.config`` (validation), ``toppo.variants`` (resolving a name), the trainer's
CLI choices, ``toppo.grid`` (the workflow config's names, which its JSON schema leaves to it),
the Snakemake wildcard constraints (``workflow/rules/common.smk``), the report spec's rows
(``analysis``), the baselines file's validation, the synthetic logs and the log readers.
Adding a combiner, a variant row or a benchmark: docs/extending.md.

Imports nothing heavy (no torch): ``analysis`` reads it without torch. A combiner's function is
named by ``module:attribute`` and imported when it is first used (``Combiner.load``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# ---------------------------------------------------------------------- benchmarks
# metaworld 3.x ``metaworld.env_dict.MT10_V3`` / ``MT50_V3``, the order
# ``gym.make_vec("Meta-World/<name>")`` builds them in (tests/test_rundir.py checks these lists
# against the installed metaworld).
BENCHMARKS: dict[str, tuple[str, ...]] = {
    "MT10": ("reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-open-v3",
             "drawer-close-v3", "button-press-topdown-v3", "peg-insert-side-v3", "window-open-v3",
             "window-close-v3"),
    "MT50": ("assembly-v3", "basketball-v3", "bin-picking-v3", "box-close-v3",
             "button-press-topdown-v3", "button-press-topdown-wall-v3", "button-press-v3",
             "button-press-wall-v3", "coffee-button-v3", "coffee-pull-v3", "coffee-push-v3",
             "dial-turn-v3", "disassemble-v3", "door-close-v3", "door-lock-v3", "door-open-v3",
             "door-unlock-v3", "hand-insert-v3", "drawer-close-v3", "drawer-open-v3",
             "faucet-open-v3", "faucet-close-v3", "hammer-v3", "handle-press-side-v3",
             "handle-press-v3", "handle-pull-side-v3", "handle-pull-v3", "lever-pull-v3",
             "pick-place-wall-v3", "pick-out-of-hole-v3", "pick-place-v3", "plate-slide-v3",
             "plate-slide-side-v3", "plate-slide-back-v3", "plate-slide-back-side-v3",
             "peg-insert-side-v3", "peg-unplug-side-v3", "soccer-v3", "stick-push-v3",
             "stick-pull-v3", "push-v3", "push-wall-v3", "push-back-v3", "reach-v3",
             "reach-wall-v3", "shelf-place-v3", "sweep-into-v3", "sweep-v3", "window-open-v3",
             "window-close-v3"),
}
REWARD_VERSIONS: tuple[str, ...] = ("v1", "v2")


def num_tasks(benchmark: str) -> int:
    return len(BENCHMARKS[benchmark])


# ---------------------------------------------------------------------- combiners
@dataclass(frozen=True)
class Combiner:
    """A per-task gradient combiner: ``function(G, **options)`` maps (K tasks, P params)
    gradients to one (P,) direction (toppo/combiners.py states the contract).

    function  ``"module:attribute"`` (imported on first use) or the callable itself
    options   the function's keyword -> the TrainConfig field that sets it
    random    the function takes ``generator=`` (a torch.Generator or None)
    """

    function: str | Callable[..., Any]
    options: Mapping[str, str] = field(default_factory=dict)
    random: bool = False

    def load(self) -> Callable[..., Any]:
        if callable(self.function):
            return self.function
        module, _, name = self.function.partition(":")
        return getattr(importlib.import_module(module), name)


COMBINERS: dict[str, Combiner] = {
    "sum": Combiner("toppo.combiners:sum"),
    "pcgrad": Combiner("toppo.combiners:pcgrad", random=True),
    "cagrad": Combiner("toppo.combiners:cagrad", {"c": "cagrad_c"}),
    "fairgrad": Combiner("toppo.combiners:fairgrad", {"alpha": "fairgrad_alpha"}),
}

# ---------------------------------------------------------------------- variants
# Each variant is a set of overrides on ``TrainConfig`` defaults. The defaults are the
# Meta-World+ MT50 PPO script; ``mtppo`` departs from it only by the named deviations of
# ``MTPPO_DEVIATIONS`` (docs/fidelity.md says why), and every ablation row adds exactly one
# module to ``mtppo``. Combiners need per-task gradients and therefore task-stratified
# minibatches; the other modules keep plain PPO's random minibatches.

# The Meta-World+ PPO scripts (rainx0r/metaworld-algorithms@30c9991,
# examples/multi_task/ppo_mt50.py and ppo_mt10.py), setting by setting on our defaults.
REFERENCE_MT50: dict[str, Any] = {"benchmark": "MT50", "bootstrap_truncation": False}
REFERENCE_MT10: dict[str, Any] = {
    "benchmark": "MT10", "bootstrap_truncation": False,
    "squash_tanh": False,  # ppo_mt10.py:47
    "baseline": "linear",  # ppo_mt10.py:54-55 (vf_config=None, baseline_type="linear")
    "adv_norm": "none",  # ppo_mt10.py:59
}
# Where mtppo, the base of every TOPPO row, departs from REFERENCE_MT50 (on both benchmarks).
MTPPO_DEVIATIONS: dict[str, Any] = {"bootstrap_truncation": True}

# The modules, each one switch (or two that only make sense together)
MHC = {"critic_heads": "per_task"}
POPART = {**MHC, "popart": True}
LNC = {"ln_critic": True}
STRAT = {"stratified_minibatches": True}
FG_CRITIC = {**STRAT, "critic_combiner": "fairgrad", "fairgrad_alpha": 1.0}
PC_ACTOR = {**STRAT, "actor_combiner": "pcgrad"}

VARIANTS: dict[str, dict[str, Any]] = {
    # the published baseline, run inside this harness (benchmark fixed by the preset)
    "ref_mt10": REFERENCE_MT10,
    "ref_mt50": REFERENCE_MT50,
    # plain multi-task PPO: the MT50 reference plus MTPPO_DEVIATIONS
    "mtppo": dict(MTPPO_DEVIATIONS),
    # cumulative ablation rows: MT-PPO -> +multi-head critic -> +PopArt -> +LN-c
    #   -> +FairGrad-critic -> +PCGrad-actor (TOPPO)
    "mtppo_mhc": {**MTPPO_DEVIATIONS, **MHC},
    "mtppo_popart": {**MTPPO_DEVIATIONS, **POPART},
    "mtppo_popart_lnc": {**MTPPO_DEVIATIONS, **POPART, **LNC},
    "mtppo_popart_lnc_fgc": {**MTPPO_DEVIATIONS, **POPART, **LNC, **FG_CRITIC},
    "toppo": {**MTPPO_DEVIATIONS, **POPART, **LNC, **FG_CRITIC, **PC_ACTOR},
    # single-module rows (MT-PPO + one module; +multi-head critic is mtppo_mhc above and
    # +PopArt on top of it is mtppo_popart, so the two rows separate head and normalisation)
    "mtppo_lnc": {**MTPPO_DEVIATIONS, **LNC},
    "mtppo_fgc": {**MTPPO_DEVIATIONS, **FG_CRITIC},
    "mtppo_pcga": {**MTPPO_DEVIATIONS, **PC_ACTOR},
    "mtppo_strat": {**MTPPO_DEVIATIONS, **STRAT},
}

LABELS: dict[str, str] = {
    "ref_mt10": "Meta-World+ PPO (MT10 script)",
    "ref_mt50": "Meta-World+ PPO (MT50 script)",
    "mtppo": "MT-PPO",
    "mtppo_mhc": "+ multi-head critic",
    "mtppo_popart": "+ PopArt",
    "mtppo_popart_lnc": "+ PopArt + LN-c",
    "mtppo_popart_lnc_fgc": "+ PopArt + LN-c + FairGrad-c",
    "toppo": "TOPPO",
    "mtppo_lnc": "MT-PPO + LN-c",
    "mtppo_fgc": "MT-PPO + FairGrad-c",
    "mtppo_pcga": "MT-PPO + PCGrad-a",
    "mtppo_strat": "MT-PPO + stratified",
}

# Per-side combiner grid on top of PopArt + LN-c, every registered combiner on each side.
# The cells that are named variants keep their names (GRID_NAMED; tests/test_config.py checks
# that each is the same config as its cell and that no other cell equals a named variant),
# so no configuration is trained twice; the others are grid_a-<actor>_c-<critic>.
GRID_BASE: dict[str, Any] = {**MTPPO_DEVIATIONS, **POPART, **LNC}
GRID_NAMED: dict[tuple[str, str], str] = {
    ("sum", "sum"): "mtppo_popart_lnc",
    ("sum", "fairgrad"): "mtppo_popart_lnc_fgc",
    ("pcgrad", "fairgrad"): "toppo",
}


def grid_overrides(actor: str, critic: str) -> dict[str, Any]:
    """The overrides of the combiner-grid cell (actor, critic)."""
    out = {**GRID_BASE, "actor_combiner": actor, "critic_combiner": critic}
    if (actor, critic) != ("sum", "sum"):
        out.update(STRAT)
    if critic == "fairgrad":
        out["fairgrad_alpha"] = 1.0
    return out


COMBINER_GRID: dict[tuple[str, str], str] = {}
for _a in COMBINERS:
    for _c in COMBINERS:
        _name = GRID_NAMED.get((_a, _c), f"grid_a-{_a}_c-{_c}")
        if _name not in VARIANTS:
            VARIANTS[_name] = grid_overrides(_a, _c)
            LABELS[_name] = f"actor {_a} / critic {_c}"
        COMBINER_GRID[(_a, _c)] = _name
del _a, _c, _name

# Named variant groups: a workflow config's grid group and the report spec's ablation rows
# may name one instead of listing its variants.
GROUPS: dict[str, list[str]] = {
    "reference": ["ref_mt10", "ref_mt50"],
    "main": ["mtppo", "toppo"],  # Table 3
    "cumulative": ["mtppo", "mtppo_mhc", "mtppo_popart", "mtppo_popart_lnc",
                   "mtppo_popart_lnc_fgc", "toppo"],
    "single": ["mtppo", "mtppo_mhc", "mtppo_popart", "mtppo_lnc", "mtppo_fgc", "mtppo_pcga",
               "mtppo_strat"],
    "combiners": list(COMBINER_GRID.values()),
}


def variant_list(spec: str | list[str]) -> list[str]:
    """A list of variant names, or the name of a group (GROUPS) as its list. An unknown group
    name is a KeyError naming the known ones; the variant names themselves are not checked."""
    if isinstance(spec, str):
        if spec not in GROUPS:
            raise KeyError(f"unknown variant group {spec!r}; known groups (toppo.registry.GROUPS): "
                           f"{', '.join(GROUPS)}")
        return list(GROUPS[spec])
    return list(spec)
