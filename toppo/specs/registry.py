"""The registry: every name the harness knows, defined once. Everything else reads it.

    BENCHMARKS       benchmark -> its task names, in env order (task_index = position)
    REWARD_VERSIONS  metaworld reward function versions
    COMBINERS        per-task gradient combiner -> its function and the config fields it takes
    VARIANTS         named variant -> overrides on TrainConfig's defaults (a variant row)
    LABELS           named variant -> its row label in tables and figures
    GROUPS           named variant groups (the workflow config's grid and the report name them)
    PAPER_COMBINERS  the combiners the paper's combiner grid crosses, named (not every registered one)
    COMBINER_GRID    the paper's grid: (actor combiner, critic combiner) -> the variant of that cell
    COMBINER_PAIRS   the same for every pair of registered combiners (each one a variant)

Readers: ``toppo.specs.config`` (validation), ``toppo.specs.variants`` (resolving a name), the trainer's
CLI choices, ``toppo.specs.grid`` (the workflow config's names, which its JSON schema leaves to it),
the Snakemake wildcard constraints (``workflow/rules/common.smk``), the report spec's rows
(``analysis``), the baselines file's validation, the synthetic logs and the log readers.
Adding a combiner, a variant row or a benchmark: docs/extending.md.

Imports nothing heavy (no torch): ``analysis`` reads it without torch. A combiner's function is
named by ``module:attribute`` and imported when it is first used (``Combiner.load``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
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
    gradients to one (P,) direction (toppo/algo/combiners.py states the contract).

    function  ``"module:attribute"`` (imported on first use) or the callable itself
    options   the function's keyword -> the TrainConfig field that sets it; a field named
              ``"{side}_..."`` is set per side (``actor_fairgrad_alpha``, ``critic_...``)
    random    the function takes ``generator=`` (a torch.Generator or None)
    gram      the function takes ``gram=``, G G^T as float64 numpy, when its caller formed it
    """

    function: str | Callable[..., Any]
    options: Mapping[str, str] = field(default_factory=dict)
    random: bool = False
    gram: bool = False

    def load(self) -> Callable[..., Any]:
        if callable(self.function):
            return self.function
        module, _, name = self.function.partition(":")
        return getattr(importlib.import_module(module), name)


COMBINERS: dict[str, Combiner] = {
    "sum": Combiner("toppo.algo.combiners:sum"),
    "pcgrad": Combiner("toppo.algo.combiners:pcgrad", random=True, gram=True),
    "cagrad": Combiner("toppo.algo.combiners:cagrad", {"c": "cagrad_c"}, gram=True),
    "fairgrad": Combiner("toppo.algo.combiners:fairgrad", {"alpha": "{side}_fairgrad_alpha"},
                         gram=True),
}

# ---------------------------------------------------------------------- variants
# Each variant is a set of overrides on ``TrainConfig`` defaults (the Meta-World+ MT50 PPO
# script). Two families of rows, each built on its own MT-PPO:
#
# * the paper's rows: ``mtppo`` is the TOPPO paper's MT-PPO (PAPER_MTPPO: its network and PPO
#   settings as its text states them, docs/fidelity.md's second table), and every ablation row
#   adds named modules to it; ``toppo`` is the paper's TOPPO.
# * the reference rows: ``mtppo_ref`` is Meta-World+'s MT-PPO with one deviation
#   (REF_DEVIATIONS), ``toppo_ref`` the TOPPO modules on it -- a check the paper does not have
#   (a weak base makes a fake gain; the reference_check report shows TOPPO's gain over both).
#   ``ref_mt10``/``ref_mt50`` are the reference scripts themselves.
#
# Combiners need per-task gradients and therefore task-stratified minibatches; the other
# modules keep plain PPO's random minibatches.

# The Meta-World+ PPO scripts (rainx0r/metaworld-algorithms@30c9991,
# examples/multi_task/ppo_mt50.py and ppo_mt10.py), setting by setting on our defaults.
REFERENCE_MT50: dict[str, Any] = {"benchmark": "MT50", "bootstrap_truncation": False}
REFERENCE_MT10: dict[str, Any] = {
    "benchmark": "MT10", "bootstrap_truncation": False,
    "squash_tanh": False,  # ppo_mt10.py:47
    "baseline": "linear",  # ppo_mt10.py:54-55 (vf_config=None, baseline_type="linear")
    "adv_norm": "none",  # ppo_mt10.py:59
}
# Where mtppo_ref, the base of the reference rows, departs from REFERENCE_MT50 (both benchmarks).
REF_DEVIATIONS: dict[str, Any] = {"bootstrap_truncation": True}
# The paper's MT-PPO: the reference base with the settings the paper's text states for all its
# configurations (docs/fidelity.md, "Against the paper's text"): per-task log-std rows ("fully
# task-shared except per-task sigma") and PPO's value clip ("We retain PPO's value clip").
PAPER_MTPPO: dict[str, Any] = {**REF_DEVIATIONS, "policy_std": "per_task", "clip_vloss": True}

# The modules, each one switch (or two that only make sense together)
POPART = {"popart": True}  # per-task statistics; with the critic's head as the base has it
MHC = {"critic_heads": "per_task"}  # one value output per task (this harness's own row)
LNC = {"ln_critic": True}
STRAT = {"stratified_minibatches": True}
FG_CRITIC = {**STRAT, "critic_combiner": "fairgrad"}
PC_ACTOR = {**STRAT, "actor_combiner": "pcgrad"}
# The reference rows' PopArt, as recorded: per-task value heads rescaled as in Hessel et al.
REF_POPART = {**MHC, **POPART}

VARIANTS: dict[str, dict[str, Any]] = {
    # the published baseline, run inside this harness (benchmark fixed by the preset)
    "ref_mt10": REFERENCE_MT10,
    "ref_mt50": REFERENCE_MT50,
    # the reference family: Meta-World+'s MT-PPO (plus REF_DEVIATIONS) and TOPPO's modules on it
    "mtppo_ref": dict(REF_DEVIATIONS),
    "toppo_ref": {**REF_DEVIATIONS, **REF_POPART, **LNC, **FG_CRITIC, **PC_ACTOR},
    # the paper's MT-PPO
    "mtppo": dict(PAPER_MTPPO),
    # the paper's cumulative ablation, in its order: MT-PPO -> ... -> + FG-c -> + PopArt (TOPPO).
    # Rows 2-3 (the public text does not say where LN-c and PCGrad-a enter): + LN-c, then
    # + PCGrad-a; row 4 adds FG-c, so the row before TOPPO has LN-c and FG-c and no PopArt.
    "mtppo_lnc_pcga": {**PAPER_MTPPO, **LNC, **PC_ACTOR},
    "mtppo_lnc_pcga_fgc": {**PAPER_MTPPO, **LNC, **PC_ACTOR, **FG_CRITIC},
    "toppo": {**PAPER_MTPPO, **LNC, **PC_ACTOR, **FG_CRITIC, **POPART},
    # single-module rows (the paper's MT-PPO + one module); mtppo_mhc is this harness's own row
    # (per-task value heads, which the paper's shared network does not have)
    "mtppo_popart": {**PAPER_MTPPO, **POPART},
    "mtppo_lnc": {**PAPER_MTPPO, **LNC},
    "mtppo_fgc": {**PAPER_MTPPO, **FG_CRITIC},
    "mtppo_pcga": {**PAPER_MTPPO, **PC_ACTOR},
    "mtppo_strat": {**PAPER_MTPPO, **STRAT},
    "mtppo_mhc": {**PAPER_MTPPO, **MHC},
}

LABELS: dict[str, str] = {
    "ref_mt10": "Meta-World+ PPO (MT10 script)",
    "ref_mt50": "Meta-World+ PPO (MT50 script)",
    "mtppo_ref": "MT-PPO (Meta-World+ reference)",
    "toppo_ref": "TOPPO on the reference MT-PPO",
    "mtppo": "MT-PPO",
    "mtppo_lnc_pcga": "+ LN-c + PCGrad-a",
    "mtppo_lnc_pcga_fgc": "+ LN-c + PCGrad-a + FG-c",
    "toppo": "TOPPO",
    "mtppo_popart": "MT-PPO + PopArt",
    "mtppo_lnc": "MT-PPO + LN-c",
    "mtppo_fgc": "MT-PPO + FairGrad-c",
    "mtppo_pcga": "MT-PPO + PCGrad-a",
    "mtppo_strat": "MT-PPO + stratified",
    "mtppo_mhc": "MT-PPO + multi-head critic",
}

# Per-side combiner grids on the paper's MT-PPO with PopArt and LN-c. Every pair of registered
# combiners is a variant (COMBINER_PAIRS), so a config can name any cell; a grid trains only the
# cells a config asks for. The paper's grid crosses PAPER_COMBINERS (COMBINER_GRID, the group
# `combiners`); another grid is a grid group's `variants: {combiners: [...]}` (variant_list).
# The cell that is a named variant keeps its name (GRID_NAMED; tests/test_config.py checks that
# it is the same config as its cell and that no other cell equals a named variant), so no
# configuration is trained twice; the others are grid_a-<actor>_c-<critic>.
GRID_BASE: dict[str, Any] = {**PAPER_MTPPO, **POPART, **LNC}
GRID_NAMED: dict[tuple[str, str], str] = {("pcgrad", "fairgrad"): "toppo"}
# The combiners of the paper's grid (its Table D.2, "Per-side combiner asymmetry on MT50"): the
# three it ports to PPO ("PCGrad, CAGrad, FairGrad") and the plain gradient, sum. Named here,
# not read from COMBINERS: registering a combiner leaves the paper's grid as it is.
PAPER_COMBINERS: tuple[str, ...] = ("sum", "pcgrad", "cagrad", "fairgrad")


def grid_overrides(actor: str, critic: str) -> dict[str, Any]:
    """The overrides of the combiner-grid cell (actor, critic)."""
    out = {**GRID_BASE, "actor_combiner": actor, "critic_combiner": critic}
    if (actor, critic) != ("sum", "sum"):
        out.update(STRAT)
    return out


def combiner_grid(combiners: Iterable[str]) -> dict[tuple[str, str], str]:
    """The grid crossing ``combiners`` on each side: (actor, critic) -> the variant of that
    cell, actor-major in the given order. A name not in COMBINERS is a KeyError naming them."""
    combiners = list(combiners)
    unknown = [c for c in combiners if c not in COMBINERS]
    if unknown:
        raise KeyError(f"unknown combiner(s) {', '.join(map(repr, unknown))}; registered "
                       f"combiners (toppo.specs.registry.COMBINERS): {', '.join(COMBINERS)}")
    return {(a, c): GRID_NAMED.get((a, c), f"grid_a-{a}_c-{c}") for a in combiners for c in combiners}


COMBINER_PAIRS: dict[tuple[str, str], str] = combiner_grid(COMBINERS)
for (_a, _c), _name in COMBINER_PAIRS.items():
    if _name not in VARIANTS:
        VARIANTS[_name] = grid_overrides(_a, _c)
        LABELS[_name] = f"actor {_a} / critic {_c}"
del _a, _c, _name
COMBINER_GRID: dict[tuple[str, str], str] = combiner_grid(PAPER_COMBINERS)

# Named variant groups: a workflow config's grid group and the report spec's ablation rows
# may name one instead of listing its variants.
GROUPS: dict[str, list[str]] = {
    "reference": ["ref_mt10", "ref_mt50"],
    "main": ["mtppo", "toppo"],  # Table 3
    # the paper's cumulative table (MT50, V1 and V2)
    "cumulative": ["mtppo", "mtppo_lnc", "mtppo_lnc_pcga", "mtppo_lnc_pcga_fgc", "toppo"],
    "single": ["mtppo", "mtppo_popart", "mtppo_lnc", "mtppo_fgc", "mtppo_pcga", "mtppo_strat",
               "mtppo_mhc"],
    "combiners": list(COMBINER_GRID.values()),
    # the reference check: TOPPO's gain over the paper's MT-PPO and over the reference's
    "reference_check": ["mtppo", "toppo", "mtppo_ref", "toppo_ref"],
}


def variant_list(spec: str | list[str] | Mapping[str, list[str]]) -> list[str]:
    """A list of variant names; the name of a group (GROUPS) as its list; or
    ``{"combiners": [...]}``, the variants of the grid crossing those combiners on each side
    (combiner_grid). An unknown group or combiner name is a KeyError naming the known ones;
    the variant names themselves are not checked."""
    if isinstance(spec, Mapping):
        return list(combiner_grid(spec["combiners"]).values())
    if isinstance(spec, str):
        if spec not in GROUPS:
            raise KeyError(f"unknown variant group {spec!r}; known groups (toppo.specs.registry.GROUPS): "
                           f"{', '.join(GROUPS)}")
        return list(GROUPS[spec])
    return list(spec)
