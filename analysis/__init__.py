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
:func:`load_report_spec` merges a config's section over them.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

DEFAULT_REPORT_PATH = Path(__file__).with_name("default_report.yaml")


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
    probably not the file you meant).
    """
    spec = default_report_spec()
    if config is None:
        return spec
    path = Path(config)
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError as e:
        raise ValueError(f"{path}: config file not found") from e
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML: {e}") from e
    report = doc.get("report") if isinstance(doc, dict) else None
    if report is None:
        raise ValueError(f"{path}: no 'report:' section (see {DEFAULT_REPORT_PATH} for its shape)")
    if not isinstance(report, dict):
        raise ValueError(f"{path}: 'report:' must be a mapping (see {DEFAULT_REPORT_PATH})")  # noqa: TRY004
    return _merge(spec, report)
