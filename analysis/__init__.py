"""Analysis of TOPPO run logs: protocols, metrics, LaTeX tables and figures.

    logs       run directories -> long DataFrames (eval.csv, manifest.json, train_metrics.csv)
    protocols  evaluation history -> (seeds, tasks) score matrix -> reported number
    metrics    aggregates over (seeds, tasks) matrices and their uncertainty (rliable)
    tables     booktabs LaTeX (table3, ablations, protocol breakdown, per task)
    figures    training curves, worst-k curves, gradient-norm spread, success heatmap
    synthetic  run directories with known contents, for tests and benchmarks

Command line: ``python -m analysis tables|figures|convert --help``.

The *report spec* (which rows, protocols and bootstrap settings) is the ``report:`` section
of the workflow config; :data:`DEFAULT_REPORT_PATH` holds the defaults, and
:func:`load_report_spec` merges a config's section over them. :data:`REPORT_SCHEMA_PATH` is
the one JSON schema of that section, used by Snakemake (config.schema.yaml refers to it) and
here; :func:`check_report` adds what a schema cannot know (variant and baseline names).
"""

from __future__ import annotations

import copy
import csv
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

DEFAULT_REPORT_PATH = Path(__file__).with_name("default_report.yaml")
REPORT_SCHEMA_PATH = Path(__file__).with_name("report.schema.yaml")


def report_errors(report: Any) -> list[str]:
    """Every way ``report`` breaks :data:`REPORT_SCHEMA_PATH`, as ``report.<key path>: why``
    (toppo.specs.schema: the one reading of schema errors, shared with the workflow config's)."""
    from toppo.specs.schema import schema_errors

    return schema_errors(report, REPORT_SCHEMA_PATH, root="report")


ABLATION_PARTS = ("cumulative", "single", "combiners")


def ablation_rows(spec: dict[str, Any], part: str) -> list[str]:
    """The variants of ablation part ``part`` (ABLATION_PARTS) of a report spec: its
    ``ablations.<part>``, a list of variant names as table 3's ``ours`` or the name of a
    variant group (toppo.specs.registry.GROUPS); absent, the group named ``part``."""
    from toppo.specs.registry import variant_list

    return variant_list(spec["ablations"].get(part, part))


def reference_check_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The ``reference_check`` section of a report spec over the default report's
    (analysis/default_report.yaml: protocol, gains), its ``variants`` resolved to a list as
    :func:`ablation_rows` resolves a part (a list of names, or the name of a variant group)."""
    from toppo.specs.registry import variant_list

    own = {**default_report_spec()["reference_check"], **(spec.get("reference_check") or {})}
    return {**own, "variants": variant_list(own["variants"])}


def check_report(report: Any, source: str | Path, baseline_methods: Iterable[str] | None = None) -> None:
    """Refuse (ValueError naming ``source`` and the key) a ``report:`` section that breaks the
    schema, names a variant or variant group toppo.specs.registry does not define, or (with ``baseline_methods``, the
    methods of the baselines file in use) a baseline that is neither one of those methods nor
    one of the default report's table-3 baselines (the paper's comparison methods, shown as
    "--" where the file has no row for them)."""
    errors = report_errors(report)
    if not errors:
        from toppo.specs.registry import BENCHMARKS, REWARD_VERSIONS, VARIANTS

        methods = None
        if baseline_methods is not None:
            defaults = yaml.safe_load(DEFAULT_REPORT_PATH.read_text())["report"]
            methods = set(baseline_methods) | {
                m for b in defaults["table3"]["blocks"] for m in b.get("baselines", [])}
        t3, ab = report["table3"], report["ablations"]
        settings = [("report.table3", t3), ("report.ablations", ab)] + [
            (f"report.table3.blocks[{i}]", block) for i, block in enumerate(t3["blocks"])]
        for where, part in settings:
            for key, known in (("benchmark", BENCHMARKS), ("reward_version", REWARD_VERSIONS)):
                if key in part and part[key] not in known:
                    errors.append(f"{where}.{key}: unknown {part[key]!r} (toppo.specs.registry: "
                                  f"{', '.join(known)})")
        named = [(f"report.table3.blocks[{i}].ours", block.get("ours", []))
                 for i, block in enumerate(report["table3"]["blocks"])]
        for part in ABLATION_PARTS:
            try:
                named.append((f"report.ablations.{part}", ablation_rows(report, part)))
            except KeyError as exc:
                errors.append(f"report.ablations.{part}: {exc.args[0]}")
        try:
            check = reference_check_spec(report)
            named.append(("report.reference_check.variants", check["variants"]))
            named += [(f"report.reference_check.gains[{i}]", pair)
                      for i, pair in enumerate(check["gains"])]
        except KeyError as exc:
            errors.append(f"report.reference_check.variants: {exc.args[0]}")
        for where, names in named:
            for name in names:
                if name not in VARIANTS:
                    errors.append(f"{where}: unknown variant {name!r} "
                                  f"(toppo.specs.registry: {', '.join(VARIANTS)})")
        for i, block in enumerate(report["table3"]["blocks"]):
            for name in block.get("baselines", []) if methods is not None else []:
                if name not in methods:
                    errors.append(f"report.table3.blocks[{i}].baselines: {name!r} is not a method "
                                  f"of the baselines file nor a default table-3 baseline (known: "
                                  f"{', '.join(sorted(methods))})")
    if errors:
        raise ValueError(f"{source}: invalid 'report:' section: " + "; ".join(errors))


def baseline_methods(path: str | Path) -> set[str]:
    """The ``method`` names of a baselines CSV (its full validation is analysis.baselines')."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return {row["method"].strip() for row in csv.DictReader(f) if row.get("method")}
    except OSError as e:
        raise ValueError(f"{path}: cannot read the baselines file: {e.strerror or e}") from e
    except (KeyError, UnicodeDecodeError, csv.Error) as e:
        raise ValueError(f"{path}: not a baselines CSV with a 'method' column ({e})") from e


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``: nested dicts merge, anything else (lists too) replaces."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def default_report_spec() -> dict[str, Any]:
    """The built-in ``report:`` spec (analysis/default_report.yaml)."""
    return yaml.safe_load(DEFAULT_REPORT_PATH.read_text())["report"]


def load_report_spec(config: str | Path | None = None) -> dict[str, Any]:
    """The ``report:`` section of a workflow config YAML merged over the defaults.

    ``None`` gives the defaults. A config without a ``report:`` key is an error (it is
    probably not the file you meant), and so is a section that breaks the report schema
    (:func:`check_report`; baseline names are checked where the baselines file is known).
    """
    spec = default_report_spec()
    if config is None:
        check_report(spec, DEFAULT_REPORT_PATH)
        return spec
    path = Path(config)
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError as e:
        raise ValueError(f"{path}: config file not found") from e
    except OSError as e:
        raise ValueError(f"{path}: cannot read: {e.strerror or e}") from e
    except yaml.YAMLError as e:
        from toppo.specs.schema import yaml_error_line

        raise ValueError(yaml_error_line(path, e)) from None
    report = doc.get("report") if isinstance(doc, dict) else None
    if report is None:
        raise ValueError(f"{path}: no 'report:' section (see {DEFAULT_REPORT_PATH} for its shape)")
    if not isinstance(report, dict):
        raise ValueError(f"{path}: 'report:' must be a mapping (see {DEFAULT_REPORT_PATH})")  # noqa: TRY004
    merged = _merge(spec, report)
    check_report(merged, path)
    return merged
