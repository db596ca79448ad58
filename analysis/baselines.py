"""Published baselines: the versioned table ``analysis/data/baselines.csv``, validated.

One row per (method, benchmark, reward version, budget, protocol, aggregator) as a cited
source states it; the columns are documented in ``docs/baselines.md``. :func:`load_baselines`
reads the file and refuses (:class:`BaselineError`, naming the file, the CSV line (the
header is line 1) and the column) anything that is not exactly what the columns allow; it
never drops, fills or coerces a row. The frame's index is the CSV line of each row, so a
selected row can always be traced back (``row.name``).

Empty cells: ``dispersion``, ``eval_episodes``, ``param_count``, ``arxiv`` and ``notes`` may be
empty (not stated by the source); so may ``n_seeds`` and ``budget_steps`` when the source does
not state them (a conversion that needs them then refuses). ``dispersion_kind`` must be
``none`` (or empty) exactly when ``dispersion`` is empty. Empty numbers load as NaN, empty
text as ``""``; integers load as Python ints (exact) in object columns.

How the value was obtained: ``value_kind`` ``exact`` (printed in the cited source and checked),
``derived`` (exact arithmetic on printed numbers) or ``read_off`` (read off a figure), both
with their ``tolerance`` in percent points, or ``unverified`` (transcribed from a secondary
source); every kind but ``unverified`` names its ``provenance`` (repository@commit:path or
URL). ``at_step`` is the step of a ``curve_peak`` / ``seed_peak`` number. ``aggregator`` may be
``worst-K`` (mean of each seed's K worst tasks); ``dispersion_kind`` may be ``unstated`` (an
error bar whose kind the source does not give). Rows are keyed by (method, benchmark,
reward_version, budget_steps, protocol, aggregator, source). :func:`typed_row` validates a
number typed on the command line by the same rules.

Protocol: one of the protocols we compute (:data:`analysis.protocol_spec.PROTOCOL_NAMES`) or
:data:`UNSTATED_PROTOCOL` (``unstated``), a baselines-only value for a number whose source does
not state (or whose source we have not read to say) when in training, or how, it was read. It
is never a protocol we compute: :mod:`analysis.conversion` refuses to convert such a row and
``analysis.tables`` never compares it with our numbers.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.protocol_spec import (
    AGGREGATORS,
    DISPERSIONS,
    PROTOCOL_NAMES,
    is_aggregator,
    worst_k_of,
)
from toppo.specs.registry import BENCHMARKS, REWARD_VERSIONS, num_tasks

DEFAULT_PATH = Path(__file__).with_name("data") / "baselines.csv"

COLUMNS: tuple[str, ...] = (
    "method", "benchmark", "reward_version", "budget_steps", "protocol", "aggregator", "value",
    "dispersion", "dispersion_kind", "n_seeds", "eval_episodes", "param_count", "source", "arxiv",
    "location", "notes", "value_kind", "tolerance", "at_step", "provenance",
)
INT_COLUMNS: tuple[str, ...] = ("budget_steps", "n_seeds", "eval_episodes", "param_count", "at_step")
TEXT_COLUMNS: tuple[str, ...] = ("method", "source", "arxiv", "location", "notes", "provenance")
FLOAT_COLUMNS: tuple[str, ...] = ("value", "dispersion", "tolerance")
KEY_COLUMNS: tuple[str, ...] = ("method", "benchmark", "reward_version", "budget_steps", "protocol", "aggregator",
                                "source")
# how the value was obtained: printed in the cited source and checked by us (exact); exact
# arithmetic on printed numbers, rounding in tolerance (derived); read off a plot, tolerance
# in percent points (read_off); transcribed from a secondary source, not checked against the
# cited one (unverified)
VALUE_KINDS: tuple[str, ...] = ("exact", "derived", "read_off", "unverified")
NEEDS_TOLERANCE: tuple[str, ...] = ("derived", "read_off")
NEEDS_PROVENANCE: tuple[str, ...] = ("exact", "derived", "read_off")
# an error bar is drawn or printed but its kind (std, sem, CI) is not stated: baselines only
UNSTATED_DISPERSION = "unstated"
BASELINE_DISPERSIONS: tuple[str, ...] = (*DISPERSIONS, UNSTATED_DISPERSION)
_REQUIRED_TEXT = ("method", "source", "location")
_ARXIV = re.compile(r"^\d{4}\.\d{4,5}(v\d+)?$")
_MAX_EXACT_INT = 2**53
UNSTATED_PROTOCOL = "unstated"
# what the protocol column accepts: our computable protocols, plus "the source does not say"
BASELINE_PROTOCOLS: tuple[str, ...] = (*PROTOCOL_NAMES, UNSTATED_PROTOCOL)


class BaselineError(ValueError):
    """The baselines file is not valid. ``path``, ``line`` (1 = header) and ``column`` say where."""

    def __init__(self, path: str | Path, line: int | None, column: str | None, problem: str):
        self.path, self.line, self.column, self.problem = str(path), line, column, problem
        where = self.path if line is None else f"{self.path}:{line}"
        if column is not None:
            where += f": column '{column}'"
        super().__init__(f"{where}: {problem}")


class SelectionError(ValueError):
    """A selection (:func:`select`) that matches no row; the message says what exists."""


def _int_cell(text: str, path: Path | str, line: int | None, column: str) -> int:
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise BaselineError(path, line, column, f"not an integer: {text!r}") from None
    if not d.is_finite() or d != d.to_integral_value():
        raise BaselineError(path, line, column, f"not an integer: {text!r}")
    value = int(d)
    if not 1 <= value < _MAX_EXACT_INT:
        raise BaselineError(path, line, column, f"must be an integer >= 1, got {text!r}")
    return value


def _float_cell(text: str, path: Path | str, line: int | None, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise BaselineError(path, line, column, f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise BaselineError(path, line, column, f"not a finite number: {text!r}")
    return value


def _enum_cell(text: str, allowed: Iterable[str], path: Path | str, line: int | None, column: str) -> str:
    allowed = tuple(allowed)
    if text not in allowed:
        raise BaselineError(path, line, column, f"unknown value {text!r}; expected one of {', '.join(allowed)}")
    return text


def _parse_row(cells: dict[str, str], path: Path | str, line: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for col in TEXT_COLUMNS:
        out[col] = cells[col].strip()
    for col in _REQUIRED_TEXT:
        if not out[col]:
            raise BaselineError(path, line, col, "must not be empty (every row names its method and where "
                                                 "in the source the number is)")
    if out["arxiv"] and not _ARXIV.match(out["arxiv"]):
        raise BaselineError(path, line, "arxiv", f"not an arXiv id like 2505.11289: {out['arxiv']!r}")
    out["benchmark"] = _enum_cell(cells["benchmark"].strip(), tuple(BENCHMARKS), path, line, "benchmark")
    out["reward_version"] = _enum_cell(cells["reward_version"].strip(), REWARD_VERSIONS, path, line,
                                       "reward_version")
    out["protocol"] = _enum_cell(cells["protocol"].strip(), BASELINE_PROTOCOLS, path, line, "protocol")
    aggregator = cells["aggregator"].strip()
    if not is_aggregator(aggregator):
        raise BaselineError(path, line, "aggregator", f"unknown value {aggregator!r}; expected one of "
                                                      f"{', '.join(AGGREGATORS)} or worst-K (K >= 1)")
    k = worst_k_of(aggregator)
    if k is not None and k > num_tasks(out["benchmark"]):
        raise BaselineError(path, line, "aggregator", f"{aggregator}: {out['benchmark']} has only "
                                                      f"{num_tasks(out['benchmark'])} tasks")
    out["aggregator"] = aggregator
    value_text = cells["value"].strip()
    if not value_text:
        raise BaselineError(path, line, "value", "must not be empty")
    value = _float_cell(value_text, path, line, "value")
    if not 0.0 <= value <= 100.0:
        raise BaselineError(path, line, "value", f"must be a percentage in [0, 100], got {value_text!r}")
    out["value"] = value
    disp_text = cells["dispersion"].strip()
    kind = cells["dispersion_kind"].strip()
    if kind:
        _enum_cell(kind, BASELINE_DISPERSIONS, path, line, "dispersion_kind")
    if disp_text:
        disp = _float_cell(disp_text, path, line, "dispersion")
        if disp < 0:
            raise BaselineError(path, line, "dispersion", f"must be >= 0, got {disp_text!r}")
        if kind in ("", "none"):
            raise BaselineError(path, line, "dispersion_kind",
                                f"dispersion {disp_text} is given, so its kind must be std, sem, ci95 or "
                                f"{UNSTATED_DISPERSION} (an error bar whose kind the source does not state), "
                                f"got {kind!r}")
        out["dispersion"] = disp
    else:
        if kind not in ("", "none"):
            raise BaselineError(path, line, "dispersion", f"empty, but dispersion_kind is {kind!r} "
                                                          "(use dispersion_kind none when the source states no spread)")
        out["dispersion"] = math.nan
    out["dispersion_kind"] = kind
    for col in INT_COLUMNS:
        text = cells[col].strip()
        out[col] = math.nan if not text else _int_cell(text, path, line, col)
    _parse_provenance(cells, out, path, line)
    return out


def _parse_provenance(cells: dict[str, str], out: dict[str, Any], path: Path | str, line: int | None) -> None:
    """``value_kind``, ``tolerance``, ``at_step`` and ``provenance``, checked against each other."""
    kind = _enum_cell(cells["value_kind"].strip(), VALUE_KINDS, path, line, "value_kind")
    out["value_kind"] = kind
    tol_text = cells["tolerance"].strip()
    if kind in NEEDS_TOLERANCE:
        if not tol_text:
            raise BaselineError(path, line, "tolerance", f"value_kind {kind} needs the tolerance of the value, "
                                                         "in percent points")
        tol = _float_cell(tol_text, path, line, "tolerance")
        if tol < 0:
            raise BaselineError(path, line, "tolerance", f"must be >= 0, got {tol_text!r}")
        out["tolerance"] = tol
    elif tol_text:
        raise BaselineError(path, line, "tolerance", f"only a derived or read_off value has a tolerance; "
                                                     f"value_kind is {kind}")
    else:
        out["tolerance"] = math.nan
    if kind in NEEDS_PROVENANCE and not out["provenance"]:
        raise BaselineError(path, line, "provenance", f"value_kind {kind} needs the provenance we checked it "
                                                      "against (repository@commit:path, or a URL)")
    step = out.get("at_step")
    if not (isinstance(step, float) and math.isnan(step)) and step is not None \
            and out.get("protocol") not in ("curve_peak", "seed_peak"):
        raise BaselineError(path, line, "at_step", "only a curve_peak or seed_peak number is read at a step "
                                                   f"of its own; protocol is {out.get('protocol')!r}")


TYPED_PATH = "command line"


def typed_row(cells: dict[str, Any]) -> pd.Series:
    """A number typed on the command line as a baselines row, validated by the same rules as a
    row of the file (:class:`BaselineError` with path ``command line``, no line, and the column).

    ``cells`` maps columns to text (None or missing: empty). ``method``, ``source`` and
    ``location`` default to ``typed number`` / ``command line``; ``value_kind`` to ``exact``
    with provenance ``typed on the command line``. The Series is named None (no CSV line)."""
    full = {c: "" for c in COLUMNS}
    full.update({"method": "typed number", "source": TYPED_PATH, "location": TYPED_PATH, "value_kind": "exact",
                 "provenance": "typed on the command line"})
    full.update({k: "" if v is None else str(v) for k, v in cells.items()})
    unknown = sorted(set(full) - set(COLUMNS))
    if unknown:
        raise ValueError(f"typed_row: unknown columns {unknown}")
    return pd.Series(_parse_row(full, TYPED_PATH, None), name=None)


def load_baselines(path: str | Path = DEFAULT_PATH) -> pd.DataFrame:
    """Read and validate a baselines CSV (default: the packaged one).

    Returns one row per CSV record with the columns of :data:`COLUMNS`, indexed by CSV line
    (``line``). Raises :class:`BaselineError` (naming the file, line and column) on a missing
    or unknown column, an unknown benchmark / reward version / protocol (one of
    :data:`BASELINE_PROTOCOLS`) / aggregator / dispersion kind, a value outside [0, 100], a negative dispersion, a count below 1, a
    non-integer budget or count, a row with the wrong number of cells, or two rows with the same
    (method, benchmark, reward_version, budget_steps, protocol, aggregator).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BaselineError(path, None, None, "baselines file not found") from None
    except UnicodeDecodeError as e:
        raise BaselineError(path, None, None, f"not UTF-8 text: {e}") from None
    reader = csv.reader(text.splitlines(keepends=True), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise BaselineError(path, 1, None, "empty file (expected a header: " + ",".join(COLUMNS) + ")") from None
    header = [h.strip() for h in header]
    if header and header[0].startswith("\ufeff"):
        header[0] = header[0][1:]
    for col in COLUMNS:
        if col not in header:
            raise BaselineError(path, 1, col, "missing from the header")
    for col in header:
        if col not in COLUMNS:
            raise BaselineError(path, 1, col, "unknown column (known: " + ", ".join(COLUMNS) + ")")
    dupes = {c for c in header if header.count(c) > 1}
    if dupes:
        raise BaselineError(path, 1, sorted(dupes)[0], "appears twice in the header")
    rows, lines, seen = [], [], {}
    end = reader.line_num
    while True:
        start = end + 1
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            raise BaselineError(path, reader.line_num, None, f"malformed CSV: {e}") from None
        end = reader.line_num
        if not record or all(not c.strip() for c in record) and len(record) <= 1:
            continue  # a blank line is not a row
        if len(record) != len(header):
            raise BaselineError(path, start, None, f"{len(record)} cells, but the header has {len(header)}")
        row = _parse_row(dict(zip(header, record, strict=True)), path, start)
        key = tuple("" if isinstance(row[c], float) and math.isnan(row[c]) else row[c] for c in KEY_COLUMNS)
        if key in seen:
            raise BaselineError(path, start, None, f"same (method, benchmark, reward_version, budget_steps, protocol, "
                                                   f"aggregator, source) as line {seen[key]}: {key}")
        seen[key] = start
        rows.append(row)
        lines.append(start)
    index = pd.Index(lines, name="line", dtype="int64")
    data = {col: pd.Series([r[col] for r in rows], index=index,
                           dtype=object if col in INT_COLUMNS or col not in FLOAT_COLUMNS else "float64")
            for col in COLUMNS}
    return pd.DataFrame(data, index=index)


def _matches(series: pd.Series, wanted: Any) -> pd.Series:
    if isinstance(wanted, str):
        return series.astype(str).str.casefold() == wanted.casefold()
    if isinstance(wanted, int | float):
        return pd.to_numeric(series, errors="coerce") == wanted
    return series == wanted


def select(df: pd.DataFrame, method: str | None = None, benchmark: str | None = None,
           reward_version: str | None = None, budget_steps: int | None = None, protocol: str | None = None,
           aggregator: str | None = None, source: str | None = None, line: int | None = None) -> pd.DataFrame:
    """The rows matching every given filter (text compared case-insensitively; ``source`` is a
    substring; ``line`` the CSV line). A ``method`` (or ``line``) with no row at all is a
    :class:`SelectionError` naming the methods that exist; so is a ``method`` whose rows all
    fail the other filters (the message lists that method's rows)."""
    if line is not None:
        if line not in df.index:
            raise SelectionError(f"no baseline row at CSV line {line} (rows are on lines "
                                 f"{', '.join(map(str, df.index))})")
        df = df.loc[[line]]
    if method is not None:
        by_method = df[_matches(df["method"], method)]
        if by_method.empty:
            raise SelectionError(f"no baseline row for method {method!r}; methods present: "
                                 f"{', '.join(sorted(df['method'].astype(str).unique())) or 'none'}")
        df = by_method
    mask = pd.Series(True, index=df.index)
    for col, wanted in (("benchmark", benchmark), ("reward_version", reward_version),
                        ("budget_steps", budget_steps), ("protocol", protocol), ("aggregator", aggregator)):
        if wanted is not None:
            mask &= _matches(df[col], wanted)
    if source is not None:
        mask &= df["source"].astype(str).str.casefold().str.contains(source.casefold(), regex=False)
    out = df[mask]
    if out.empty and method is not None:
        raise SelectionError(f"method {method!r} has no row matching "
                             + ", ".join(f"{k}={v!r}" for k, v in (("benchmark", benchmark),
                                                                   ("reward_version", reward_version),
                                                                   ("budget_steps", budget_steps),
                                                                   ("protocol", protocol), ("aggregator", aggregator),
                                                                   ("source", source)) if v is not None)
                             + "; its rows are:\n" + describe_rows(df))
    return out


def describe_row(row: pd.Series, line: bool = True) -> str:
    """One line naming a row: (CSV line,) method, benchmark, reward, budget, protocol, value, source."""
    budget = row["budget_steps"]
    budget_text = "budget ?" if isinstance(budget, float) and math.isnan(budget) else f"{int(budget):,} steps"
    return (f"{f'line {row.name}: ' if line and row.name is not None else ''}{row['method']} {row['benchmark']} "
            f"{row['reward_version']} {budget_text} {row['protocol']}/{row['aggregator']} = {row['value']:g}"
            f"{value_kind_text(row)} ({row['source']}; {row['location']})")


def value_kind_text(row: pd.Series | dict) -> str:
    """`` (read off a figure, +-0.5)``, `` (derived, +-0.06)``, `` (unverified)``, or ``""`` for exact."""
    kind = str(row.get("value_kind", "") or "exact")
    tol = row.get("tolerance")
    tol_text = "" if tol is None or (isinstance(tol, float) and math.isnan(tol)) else f", +-{float(tol):g}"
    return {"exact": "", "derived": f" (derived{tol_text})", "read_off": f" (read off a figure{tol_text})",
            "unverified": " (unverified)"}.get(kind, f" ({kind})")


def describe_rows(df: pd.DataFrame) -> str:
    return "\n".join("  " + describe_row(r) for _, r in df.iterrows())
