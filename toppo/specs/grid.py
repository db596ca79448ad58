"""The workflow config's grid: its cells, their run directories and their trainer configs.

One definition for everything that reads a workflow config (``config/config.yaml`` with the
``--configfile`` files merged over it): the Snakefile (``workflow/rules/common.smk``),
``python -m analysis status`` and the tests. A cell is one (benchmark, reward version,
variant, seed); a cell listed by several groups of the grid is one cell (one training job).

Checks what the config's JSON schema cannot know (``GridError``, naming the key): benchmark,
reward version, variant and variant-group names (``toppo.specs.registry``), override keys (``toppo.specs.config.TrainConfig`` fields, not
the ones the workflow sets itself), that every benchmark in the grid has a budget and
resources, and that each (benchmark, reward, variant) resolves to a valid TrainConfig.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import yaml

from toppo.specs.config import FIELD_TYPES, ConfigError, TrainConfig, coerce_value
from toppo.specs.registry import BENCHMARKS, GROUPS, REWARD_VERSIONS, VARIANTS, variant_list
from toppo.specs.schema import schema_errors, yaml_error_line
from toppo.specs.variants import resolve

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO / "config" / "config.yaml"  # the paper grid; --configfile merges over it
CONFIG_SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"

# Keys the workflow sets itself, per cell or per job (never a trainer override).
WORKFLOW_KEYS = {
    "benchmark": "the grid's benchmarks",
    "reward_version": "the grid's reward_versions",
    "seed": "the grid's seeds",
    "total_steps": "budgets",
    "device": "device",
    "torch_threads": "resources.<benchmark>.threads",
    "cores": "resources.<benchmark>.threads",
    "tensorboard": "tensorboard",
    "wandb_project": "wandb.project",
    "wandb_entity": "wandb.entity",
    "wandb_mode": "wandb.mode",
}


class GridError(ValueError):
    """A workflow config the grid cannot be built from; the message names the key."""


class Cell(NamedTuple):
    benchmark: str
    reward: str
    variant: str
    seed: int

    def __str__(self) -> str:  # the run directory below the scale's runs root
        return f"{self.benchmark}-{self.reward}/{self.variant}/seed{self.seed}"


def seeds_of(spec: int | list[int]) -> list[int]:
    """A count n means seeds 0..n-1; a list is taken as given."""
    return list(range(spec)) if isinstance(spec, int) else sorted(spec)


def group_variants(group: dict[str, Any]) -> list[str]:
    """A grid group's variants: its ``variants`` list, or the variant group it names
    (toppo.specs.registry.GROUPS; a GridError naming the grid group for an unknown name)."""
    try:
        return variant_list(group["variants"])
    except KeyError as exc:
        raise GridError(f"grid group '{group['name']}': {exc.args[0]}") from None


def group_cells(group: dict[str, Any]) -> list[Cell]:
    """The cells of one grid group, in (benchmark, reward, variant, seed) order."""
    return sorted(Cell(b, r, v, s) for b in group["benchmarks"] for r in group["reward_versions"]
                  for v in group_variants(group) for s in seeds_of(group["seeds"]))


def grid_cells(config: dict[str, Any]) -> list[Cell]:
    """Every cell of a workflow config's grid, once each, sorted (no validation)."""
    return sorted({c for group in config["grid"] for c in group_cells(group)})


def live_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The config's live-curve settings (``tensorboard``, ``wandb``; toppo.harness.livelog) as
    TrainConfig fields. Execution only (not hashed), like device and threads: changing them
    re-runs nothing."""
    wandb = config.get("wandb") or {}
    return {"tensorboard": bool(config.get("tensorboard", True)),
            **{f"wandb_{key}": wandb[key] for key in ("project", "entity", "mode") if key in wandb}}


def read_config_file(path: str | Path) -> dict[str, Any]:
    """One workflow config file as a mapping; a GridError of one line naming the file, and
    for a YAML syntax error its line and column (Snakemake's own loader names neither)."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as exc:
        raise GridError(yaml_error_line(path, exc)) from None
    except OSError as exc:
        raise GridError(f"{path}: cannot read the workflow config ({exc.strerror or exc})") from None
    if not isinstance(data, dict):
        raise GridError(f"{path}: a workflow config is a mapping of keys")
    return data


def validate_config(config: dict[str, Any], source: str = "") -> None:
    """Apply the workflow's schema (CONFIG_SCHEMA) as Snakemake's ``validate`` does, its
    defaults filled in; a config that breaks it is a GridError of one line, each error as
    ``key path: why`` (toppo.specs.schema), after ``source`` (the config files) where given."""
    from snakemake.utils import validate

    errors = schema_errors(config, CONFIG_SCHEMA)
    if errors:
        raise GridError(f"{source}: {'; '.join(errors)}" if source else "; ".join(errors))
    validate(config, str(CONFIG_SCHEMA))  # the schema's defaults (no error left to raise)


def load_config(configfiles: list[str | Path] = ()) -> dict[str, Any]:
    """The workflow config as Snakemake builds it: ``config/config.yaml`` with each file
    merged over it (mappings key by key, lists replaced), validated by the workflow's
    schema. A file that cannot be read, or a schema error, is a GridError naming it."""
    from snakemake.utils import update_config

    config = read_config_file(DEFAULT_CONFIG)
    for path in configfiles:
        update_config(config, read_config_file(path))
    validate_config(config, ", ".join(map(str, configfiles)) or str(DEFAULT_CONFIG))
    return config


class Grid:
    """The grid of a validated workflow config (schema applied): cells, groups, run
    directories, each cell's resolved TrainConfig."""

    def __init__(self, config: dict[str, Any]):
        self.config = config
        self.scale: str = config["scale"]
        self.device: str = config["device"]
        self.budgets: dict[str, int] = config["budgets"]
        self.resources: dict[str, dict[str, int]] = config["resources"]
        self.runs_root = f"results/runs/{self.scale}"  # one folder per cell below it
        # every training job's numerics mode, passed as the trainer's --numerics (execution
        # only, like device); None: the trainer's own default (toppo.specs.numerics_mode.mode)
        self.numerics: str | None = config.get("numerics")
        # trainer_overrides apply to every cell; benchmark_overrides.<benchmark> on top of them
        # to that benchmark's cells, each value in its field's type (toppo.specs.config.coerce_value).
        typed_common = _typed_overrides(config.get("trainer_overrides", {}), "trainer_overrides")
        self.typed_overrides: dict[str, dict[str, Any]] = {}
        for where in ("budgets", "resources", "benchmark_overrides"):
            for bench in config.get(where, {}):
                if bench not in BENCHMARKS:
                    raise GridError(f"{where}.{bench}: unknown benchmark; known benchmarks "
                                    f"(toppo.specs.registry): {', '.join(BENCHMARKS)}")
        for bench in BENCHMARKS:
            own = config.get("benchmark_overrides", {}).get(bench, {})
            self.typed_overrides[bench] = {
                **typed_common, **_typed_overrides(own, f"benchmark_overrides.{bench}")}
        for group in config["grid"]:
            for key, known in (("benchmarks", BENCHMARKS), ("reward_versions", REWARD_VERSIONS)):
                for name in group[key]:
                    if name not in known:
                        raise GridError(f"grid group '{group['name']}': {key}: unknown {name!r}; "
                                        f"known (toppo.specs.registry): {', '.join(known)}")
            for variant in group_variants(group):
                if variant not in VARIANTS:
                    raise GridError(f"grid group '{group['name']}': unknown variant '{variant}'; "
                                    f"known variants (toppo.specs.registry): {', '.join(VARIANTS)}; "
                                    f"variant groups: {', '.join(GROUPS)}")
            for bench in group["benchmarks"]:
                for table, what in ((self.budgets, "budgets"), (self.resources, "resources")):
                    if bench not in table:
                        raise GridError(f"{what}.{bench}: missing, and grid group "
                                        f"'{group['name']}' uses {bench}")
        self.groups: dict[str, list[Cell]] = {g["name"]: group_cells(g) for g in config["grid"]}
        self.cells: list[Cell] = grid_cells(config)
        for bench, reward, variant in sorted({c[:3] for c in self.cells}):
            try:
                self.train_config(Cell(bench, reward, variant, 0))
            except ConfigError as exc:
                raise GridError(f"{exc} (variant {variant}, {bench}-{reward})") from None

    def run_dir(self, cell: Cell | tuple) -> str:
        return f"{self.runs_root}/{Cell(*cell)}"

    def train_config(self, cell: Cell | tuple, threads: int | None = None) -> TrainConfig:
        """The cell's resolved TrainConfig, the one its training job hands the trainer as a
        file (workflow/scripts/train_cell.py): the variant, the overrides, the cell and its
        budget; and, execution only (not hashed), the device, ``threads`` (default: the
        benchmark's resources) as torch_threads and cores, and the live-curve settings."""
        bench, reward, variant, seed = cell
        if bench not in self.budgets:
            raise GridError(f"budgets.{bench}: missing")
        if threads is None:
            threads = self.resources.get(bench, {}).get("threads", 0)
        return resolve(variant, {**self.typed_overrides[bench], "benchmark": bench,
                                 "reward_version": reward, "seed": int(seed),
                                 "total_steps": self.budgets[bench], "device": self.device,
                                 "torch_threads": threads, "cores": threads,
                                 **live_settings(self.config)})


def _typed_overrides(mapping: dict[str, Any], where: str) -> dict[str, Any]:
    """``{key: value}`` with each value in its TrainConfig field's type; a workflow-set or
    unknown key, or a bad value, is a GridError naming ``where.key``."""
    typed = {}
    for key, value in mapping.items():
        if key in WORKFLOW_KEYS:
            raise GridError(f"{where}.{key}: set by the workflow from {WORKFLOW_KEYS[key]}; "
                            "set it there instead")
        if key not in FIELD_TYPES:
            raise GridError(f"{where}.{key}: unknown trainer key; known keys: "
                            + ", ".join(sorted(set(FIELD_TYPES) - set(WORKFLOW_KEYS))))
        try:
            typed[key] = coerce_value(key, value)
        except ConfigError as exc:
            raise GridError(f"{where}.{key}: {exc}") from None
    return typed
