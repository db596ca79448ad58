"""Named variants: plain MT-PPO, single modules, the cumulative ablation, the combiner grid.

Each variant is a set of overrides on ``TrainConfig`` defaults, defined once here.
Combiners need per-task gradients and therefore task-stratified minibatches; PopArt and
LN-c do not change the sampler, so their rows keep plain PPO's random minibatches.
"""

from __future__ import annotations

from typing import Any

from toppo.config import COMBINER_NAMES, ConfigError, TrainConfig, make_config

_POPART = {"popart": True}
_LNC = {"ln_critic": True}
_STRAT = {"stratified_minibatches": True}
_FG_CRITIC = {**_STRAT, "critic_combiner": "fairgrad", "fairgrad_alpha": 1.0}
_PC_ACTOR = {**_STRAT, "actor_combiner": "pcgrad"}

VARIANTS: dict[str, dict[str, Any]] = {
    # plain multi-task PPO (Meta-World+ MT-PPO baseline settings)
    "mtppo": {},
    # cumulative ablation rows: MT-PPO -> +PopArt -> +LN-c -> +FairGrad-critic -> +PCGrad-actor
    "mtppo_popart": {**_POPART},
    "mtppo_popart_lnc": {**_POPART, **_LNC},
    "mtppo_popart_lnc_fgc": {**_POPART, **_LNC, **_FG_CRITIC},
    "toppo": {**_POPART, **_LNC, **_FG_CRITIC, **_PC_ACTOR},
    # single-module rows (MT-PPO + one module; +PopArt is mtppo_popart above)
    "mtppo_lnc": {**_LNC},
    "mtppo_fgc": {**_FG_CRITIC},
    "mtppo_pcga": {**_PC_ACTOR},
    "mtppo_strat": {**_STRAT},
}

LABELS: dict[str, str] = {
    "mtppo": "MT-PPO",
    "mtppo_popart": "+ PopArt",
    "mtppo_popart_lnc": "+ PopArt + LN-c",
    "mtppo_popart_lnc_fgc": "+ PopArt + LN-c + FairGrad-c",
    "toppo": "TOPPO",
    "mtppo_lnc": "MT-PPO + LN-c",
    "mtppo_fgc": "MT-PPO + FairGrad-c",
    "mtppo_pcga": "MT-PPO + PCGrad-a",
    "mtppo_strat": "MT-PPO + stratified",
}

CUMULATIVE = ["mtppo", "mtppo_popart", "mtppo_popart_lnc", "mtppo_popart_lnc_fgc", "toppo"]
SINGLE = ["mtppo", "mtppo_popart", "mtppo_lnc", "mtppo_fgc", "mtppo_pcga", "mtppo_strat"]

# Per-side combiner grid on top of PopArt + LN-c. Cells whose config equals a named
# variant reuse that name, so no configuration is trained twice.
COMBINER_GRID: dict[tuple[str, str], str] = {}
for _a in COMBINER_NAMES:
    for _c in COMBINER_NAMES:
        _overrides = {**_POPART, **_LNC, "actor_combiner": _a, "critic_combiner": _c}
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
    """The validated config of variant ``name`` with ``overrides`` applied on top."""
    if name not in VARIANTS:
        raise ConfigError(f"unknown variant '{name}'; known variants: {', '.join(VARIANTS)}")
    return make_config(VARIANTS[name], **(overrides or {}))
