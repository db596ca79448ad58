"""Named variants: the Meta-World+ reference presets, plain MT-PPO, single modules, the
cumulative ablation, the combiner grid.

Each variant is a set of overrides on ``TrainConfig`` defaults, defined once here. The
defaults are the Meta-World+ MT50 PPO script; ``mtppo`` departs from it only by the named
deviations of ``MTPPO_DEVIATIONS`` (docs/fidelity.md says why), and every ablation row
adds exactly one module to ``mtppo``. Combiners need per-task gradients and therefore
task-stratified minibatches; the other modules keep plain PPO's random minibatches.
"""

from __future__ import annotations

from typing import Any

from toppo.config import COMBINER_NAMES, ConfigError, TrainConfig, make_config

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

_MHC = {"critic_heads": "per_task"}
_POPART = {**_MHC, "popart": True}
_LNC = {"ln_critic": True}
_STRAT = {"stratified_minibatches": True}
_FG_CRITIC = {**_STRAT, "critic_combiner": "fairgrad", "fairgrad_alpha": 1.0}
_PC_ACTOR = {**_STRAT, "actor_combiner": "pcgrad"}

VARIANTS: dict[str, dict[str, Any]] = {
    # the published baseline, run inside this harness (benchmark fixed by the preset)
    "ref_mt10": REFERENCE_MT10,
    "ref_mt50": REFERENCE_MT50,
    # plain multi-task PPO: the MT50 reference plus MTPPO_DEVIATIONS
    "mtppo": dict(MTPPO_DEVIATIONS),
    # cumulative ablation rows: MT-PPO -> +multi-head critic -> +PopArt -> +LN-c
    #   -> +FairGrad-critic -> +PCGrad-actor (TOPPO)
    "mtppo_mhc": {**MTPPO_DEVIATIONS, **_MHC},
    "mtppo_popart": {**MTPPO_DEVIATIONS, **_POPART},
    "mtppo_popart_lnc": {**MTPPO_DEVIATIONS, **_POPART, **_LNC},
    "mtppo_popart_lnc_fgc": {**MTPPO_DEVIATIONS, **_POPART, **_LNC, **_FG_CRITIC},
    "toppo": {**MTPPO_DEVIATIONS, **_POPART, **_LNC, **_FG_CRITIC, **_PC_ACTOR},
    # single-module rows (MT-PPO + one module; +multi-head critic is mtppo_mhc above and
    # +PopArt on top of it is mtppo_popart, so the two rows separate head and normalisation)
    "mtppo_lnc": {**MTPPO_DEVIATIONS, **_LNC},
    "mtppo_fgc": {**MTPPO_DEVIATIONS, **_FG_CRITIC},
    "mtppo_pcga": {**MTPPO_DEVIATIONS, **_PC_ACTOR},
    "mtppo_strat": {**MTPPO_DEVIATIONS, **_STRAT},
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

REFERENCE = ["ref_mt10", "ref_mt50"]
CUMULATIVE = ["mtppo", "mtppo_mhc", "mtppo_popart", "mtppo_popart_lnc", "mtppo_popart_lnc_fgc",
              "toppo"]
SINGLE = ["mtppo", "mtppo_mhc", "mtppo_popart", "mtppo_lnc", "mtppo_fgc", "mtppo_pcga",
          "mtppo_strat"]

# Per-side combiner grid on top of PopArt + LN-c. Cells whose config equals a named
# variant reuse that name, so no configuration is trained twice.
COMBINER_GRID: dict[tuple[str, str], str] = {}
for _a in COMBINER_NAMES:
    for _c in COMBINER_NAMES:
        _overrides = {**MTPPO_DEVIATIONS, **_POPART, **_LNC, "actor_combiner": _a,
                      "critic_combiner": _c}
        if (_a, _c) != ("sum", "sum"):
            _overrides.update(_STRAT)
        if _c == "fairgrad":
            _overrides["fairgrad_alpha"] = 1.0
        _same = [n for n, o in VARIANTS.items() if make_config(o) == make_config(_overrides)]
        _name = _same[0] if _same else f"grid_a-{_a}_c-{_c}"
        if not _same:
            VARIANTS[_name] = _overrides
            LABELS[_name] = f"actor {_a} / critic {_c}"
        COMBINER_GRID[(_a, _c)] = _name
del _a, _c, _overrides, _same, _name


def resolve(name: str, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The validated config of variant ``name`` with ``overrides`` applied on top. A preset
    that fixes its benchmark (the reference scripts) refuses another one."""
    if name not in VARIANTS:
        raise ConfigError(f"unknown variant '{name}'; known variants: {', '.join(VARIANTS)}")
    overrides = dict(overrides or {})
    fixed = VARIANTS[name].get("benchmark")
    if fixed is not None and overrides.get("benchmark", fixed) != fixed:
        raise ConfigError(f"variant '{name}' reproduces the {fixed} script; it cannot run on "
                          f"benchmark '{overrides['benchmark']}' (use "
                          f"ref_{overrides['benchmark'].lower()} or mtppo)")
    return make_config(VARIANTS[name], **overrides)
