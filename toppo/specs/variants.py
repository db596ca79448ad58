"""A named variant (toppo.specs.registry.VARIANTS: the Meta-World+ reference presets, plain MT-PPO,
single modules, the cumulative ablation, the combiner grid) as a validated TrainConfig."""

from __future__ import annotations

from typing import Any

from toppo.specs.config import ConfigError, TrainConfig, make_config
from toppo.specs.registry import VARIANTS


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
