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

from analysis.protocol_spec import AGGREGATORS, DISPERSIONS, PROTOCOL_NAMES, REWARD_VERSIONS

DEFAULT_PATH = Path(__file__).with_name("data") / "baselines.csv"

COLUMNS: tuple[str, ...] = (
    "method", "benchmark", "reward_version", "budget_steps", "protocol", "aggregator", "value",
    "dispersion", "dispersion_kind", "n_seeds", "eval_episodes", "param_count", "source", "arxiv",
    "location", "notes",
)
BENCHMARKS: tuple[str, ...] = ("MT10", "MT50")
INT_COLUMNS: tuple[str, ...] = ("budget_steps", "n_seeds", "eval_episodes", "param_count")
TEXT_COLUMNS: tuple[str, ...] = ("method", "source", "arxiv", "location", "notes")
KEY_COLUMNS: tuple[str, ...] = ("method", "benchmark", "reward_version", "budget_steps", "protocol", "aggregator")
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


def _int_cell(text: str, path: Path, line: int, column: str) -> int:
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


def _float_cell(text: str, path: Path, line: int, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise BaselineError(path, line, column, f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise BaselineError(path, line, column, f"not a finite number: {text!r}")
    return value


def _enum_cell(text: str, allowed: Iterable[str], path: Path, line: int, column: str) -> str:
    allowed = tuple(allowed)
    if text not in allowed:
        raise BaselineError(path, line, column, f"unknown value {text!r}; expected one of {', '.join(allowed)}")
    return text


def _parse_row(cells: dict[str, str], path: Path, line: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for col in TEXT_COLUMNS:
        out[col] = cells[col].strip()
    for col in _REQUIRED_TEXT:
        if not out[col]:
            raise BaselineError(path, line, col, "must not be empty (every row names its method and where "
                                                 "in the source the number is)")
    if out["arxiv"] and not _ARXIV.match(out["arxiv"]):
        raise BaselineError(path, line, "arxiv", f"not an arXiv id like 2505.11289: {out['arxiv']!r}")
    out["benchmark"] = _enum_cell(cells["benchmark"].strip(), BENCHMARKS, path, line, "benchmark")
    out["reward_version"] = _enum_cell(cells["reward_version"].strip(), REWARD_VERSIONS, path, line,
                                       "reward_version")
    out["protocol"] = _enum_cell(cells["protocol"].strip(), BASELINE_PROTOCOLS, path, line, "protocol")
    out["aggregator"] = _enum_cell(cells["aggregator"].strip(), AGGREGATORS, path, line, "aggregator")
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
        _enum_cell(kind, DISPERSIONS, path, line, "dispersion_kind")
    if disp_text:
        disp = _float_cell(disp_text, path, line, "dispersion")
        if disp < 0:
            raise BaselineError(path, line, "dispersion", f"must be >= 0, got {disp_text!r}")
        if kind in ("", "none"):
            raise BaselineError(path, line, "dispersion_kind",
                                f"dispersion {disp_text} is given, so its kind must be std, sem or ci95, got {kind!r}")
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
    return out


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
                                                   f"aggregator) as line {seen[key]}: {key}")
        seen[key] = start
        rows.append(row)
        lines.append(start)
    index = pd.Index(lines, name="line", dtype="int64")
    data = {col: pd.Series([r[col] for r in rows], index=index,
                           dtype=object if col in INT_COLUMNS or col not in ("value", "dispersion") else "float64")
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
    return (f"{f'line {row.name}: ' if line else ''}{row['method']} {row['benchmark']} {row['reward_version']} {budget_text} "
            f"{row['protocol']}/{row['aggregator']} = {row['value']:g} ({row['source']}; {row['location']})")


def describe_rows(df: pd.DataFrame) -> str:
    return "\n".join("  " + describe_row(r) for _, r in df.iterrows())
