"""Read run directories (docs/design.md) into long pandas DataFrames, validating as we go.

A run directory is any directory containing ``eval.csv``; :func:`find_run_dirs` accepts run
directories themselves or any root above them (``results/runs/paper``). Every frame gets a
``run_dir`` column so an error or a table footnote can name the run it came from.

    evals = load_evals(["results/runs/paper"])          # one row per (run, evaluation, task)
    manifests = load_manifests(["results/runs/paper"])  # one row per run, nested keys dotted
    train = load_train_metrics(["results/runs/paper"])  # one row per (run, PPO update)
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from toppo.specs.logschema import EVAL_COLUMNS  # the contract of docs/design.md
from toppo.specs.registry import BENCHMARKS, REWARD_VERSIONS
from toppo.specs.runfiles import (  # noqa: F401  (the writers re-exported)
    SUPERSEDED,
    write_bytes_atomic,
    write_text_atomic,
)

RUN_KEY = ["variant", "benchmark", "reward_version", "seed"]
_INT_COLUMNS = ["seed", "step", "task_index", "episodes"]


class LogError(ValueError):
    """A run directory or log file that cannot be used; the message names the file."""


PathLike = str | os.PathLike


# ---------------------------------------------------------------- atomic output
# ---------------------------------------------------------------- discovery
def _as_list(paths: PathLike | Iterable[PathLike]) -> list[Path]:
    if isinstance(paths, str | os.PathLike):
        return [Path(paths)]
    return [Path(p) for p in paths]




def find_run_dirs(paths: PathLike | Iterable[PathLike]) -> list[Path]:
    """Run directories (containing ``eval.csv``) at or below each path, sorted, without repeats.

    A recursive search skips folders named ``superseded`` (runs the trainer set aside after
    a config change or a restart); name such a run directory explicitly to read it."""
    found: set[Path] = set()
    for p in _as_list(paths):
        if not p.exists():
            raise LogError(f"{p}: no such file or directory")
        if p.is_file():
            if p.name != "eval.csv":
                raise LogError(f"{p}: expected a run directory, a root of run directories or an eval.csv")
            found.add(p.parent.resolve())
        elif (p / "eval.csv").is_file():
            found.add(p.resolve())
        else:
            found.update(e.parent.resolve() for e in p.rglob("eval.csv")
                         if SUPERSEDED not in e.relative_to(p).parts[:-1])
    return sorted(found)


def _require_runs(paths: PathLike | Iterable[PathLike]) -> list[Path]:
    runs = find_run_dirs(paths)
    if not runs:
        raise LogError(f"no run directories (folders with eval.csv) under {', '.join(map(str, _as_list(paths)))}")
    return runs


# ---------------------------------------------------------------- eval.csv
TEXT_COLUMNS = ("benchmark", "reward_version", "variant", "task")
_NUMERIC_COLUMNS = [*_INT_COLUMNS, "success_rate", "mean_return"]
# only an empty field is missing: "nan" or "inf" is a value, refused as not finite
_NA = {"keep_default_na": False, "na_values": [""]}


def _read_raw_eval(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, dtype={c: str for c in TEXT_COLUMNS}, **_NA)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise LogError(f"{path}: cannot parse as CSV: {e}") from e
    missing = [c for c in EVAL_COLUMNS if c not in df.columns]
    if missing:
        raise LogError(f"{path}: missing column(s) {', '.join(missing)} (required: {', '.join(EVAL_COLUMNS)})")
    if df.empty:
        raise LogError(f"{path}: no evaluation rows yet (run not evaluated?)")
    return df


class _Plain(NamedTuple):
    """A plain CSV file (:func:`_plain_csv`): header line, body (a view, not a copy), rows,
    and the length of the first row with its newline."""

    head: bytes
    body: memoryview
    rows: int
    first: int


def _plain_csv(path: Path) -> _Plain | None:
    """A CSV file whose body's newlines count its rows as ``read_csv`` parses them: a
    header line, rows, a newline at the end, no quotes or carriage returns; None for any
    other file. (Blank lines, which ``read_csv`` skips, show as fewer rows parsed than
    counted: :func:`_parse_together` refuses those.)"""
    raw = path.read_bytes()
    start = raw.find(b"\n") + 1
    if start <= 1 or len(raw) == start or not raw.endswith(b"\n") or b'"' in raw or b"\r" in raw:
        return None
    return _Plain(raw[: start - 1], memoryview(raw)[start:], raw.count(b"\n", start), raw.find(b"\n", start) + 1 - start)


def _parse_together(head: bytes, bodies: list[memoryview], rows: int, **read_csv: object) -> pd.DataFrame | None:
    """The bodies of plain CSV files (:func:`_plain_csv`) sharing one header, parsed by one
    ``read_csv`` call, their rows in order; None on a parse error or when the rows parsed
    are not the ``rows`` of the bodies' lines."""
    try:
        df = pd.read_csv(io.BytesIO(b"".join([head, b"\n", *bodies])), **read_csv)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        return None
    return df if len(df) == rows else None


def _read_evals_at_once(runs: list[Path]) -> pd.DataFrame | None:
    """The ``eval.csv`` of every run parsed in one ``read_csv`` (text columns categorical,
    ``run_dir`` a column), files in run order (:func:`_run_sort_key` of their first rows,
    parsed together first); None wherever that could read differently from one file at a
    time (:func:`_read_raw_eval`, whose errors name the file): a file not plain
    (:func:`_plain_csv`) or without rows, headers that differ, a parse error, a missing
    column, or a column not parsed as numbers that should be.
    """
    files = [_plain_csv(run / "eval.csv") for run in runs]
    if None in files or len({f.head for f in files}) != 1:
        return None

    def parse(lines: list[memoryview], rows: int) -> pd.DataFrame | None:
        df = _parse_together(files[0].head, lines, rows, dtype={c: "category" for c in TEXT_COLUMNS}, **_NA)
        if df is None or any(c not in df for c in EVAL_COLUMNS) \
                or not all(pd.api.types.is_numeric_dtype(df[c]) for c in _NUMERIC_COLUMNS):
            return None
        return df

    firsts = parse([f.body[: f.first] for f in files], len(files))
    if firsts is None:
        return None
    keys = [_run_sort_key(first) for first in firsts[RUN_KEY].to_dict("records")]
    order = sorted(range(len(runs)), key=keys.__getitem__)
    rows = [files[i].rows for i in order]
    df = parse([files[i].body for i in order], sum(rows))
    if df is None:
        return None
    df["run_dir"] = pd.Categorical.from_codes(np.repeat(order, rows), categories=[str(r) for r in runs])
    return df


def _codes(column: pd.Series) -> np.ndarray:
    """A categorical column's codes, any other column's values (for comparing rows fast)."""
    return column.cat.codes.to_numpy() if isinstance(column.dtype, pd.CategoricalDtype) else column.to_numpy()


def _validate_evals(df: pd.DataFrame) -> pd.DataFrame:
    """Check and type the rows of one or many eval.csv files (``run_dir`` names each row's file).

    Files are concatenated in order, so an offending row is reported as file + line number.
    The text columns and ``run_dir`` come back categorical (:func:`_as_text` turns them back).
    """
    for c in (*TEXT_COLUMNS, "run_dir"):
        if not isinstance(df[c].dtype, pd.CategoricalDtype):
            df[c] = df[c].astype("category")

    def bad_line(mask: pd.Series, what: str) -> LogError:
        i = int(np.flatnonzero(mask.to_numpy())[0])
        line = int(df.groupby("run_dir", sort=False, observed=True).cumcount().iloc[i]) + 2
        row = df.iloc[i].drop("run_dir").to_dict()
        return LogError(f"{Path(df['run_dir'].iloc[i]) / 'eval.csv'}, line {line}: {what} (row: {row})")

    for col in EVAL_COLUMNS:
        if col != "mean_return" and df[col].isna().any():
            raise bad_line(df[col].isna(), f"empty value in column '{col}'")
    for col in _NUMERIC_COLUMNS:
        given = df[col].notna()  # not empty (an empty mean_return is allowed)
        if not pd.api.types.is_numeric_dtype(df[col]):
            num = pd.to_numeric(df[col], errors="coerce")  # "nan" -> NaN, refused below
            nan_text = df[col].astype(str).str.strip().str.lower().isin(["nan", "+nan", "-nan"])
            if (given & num.isna() & ~nan_text).any():
                raise bad_line(given & num.isna() & ~nan_text, f"column '{col}' is not numeric")
            df[col] = num
        if (given & ~np.isfinite(df[col])).any():
            raise bad_line(given & ~np.isfinite(df[col]), f"column '{col}' is not finite")
        if col in _INT_COLUMNS and not pd.api.types.is_integer_dtype(df[col]):
            if (df[col] != np.round(df[col])).any():
                raise bad_line(df[col] != np.round(df[col]), f"column '{col}' must be an integer")
            df[col] = df[col].astype(np.int64)
    if ((df.success_rate < 0) | (df.success_rate > 1)).any():
        raise bad_line((df.success_rate < 0) | (df.success_rate > 1), "success_rate outside [0, 1]")
    if (df.episodes < 1).any():
        raise bad_line(df.episodes < 1, "episodes must be >= 1")
    if (df.step < 0).any():
        raise bad_line(df.step < 0, "step must be >= 0")
    unknown = ~df.benchmark.isin(list(BENCHMARKS))
    if unknown.any():
        raise bad_line(unknown, f"unknown benchmark (known: {', '.join(BENCHMARKS)})")
    index = df.task_index.to_numpy()
    of_bench = {b: (df.benchmark == b).to_numpy() for b in BENCHMARKS}
    size = np.zeros(len(df), dtype=np.int64)
    for bench, rows in of_bench.items():
        size[rows] = len(BENCHMARKS[bench])
    out_of_range = pd.Series((index < 0) | (index >= size), index=df.index)
    if out_of_range.any():
        raise bad_line(out_of_range, "task_index outside the benchmark's tasks ("
                       + ", ".join(f"{b}: 0..{len(t) - 1}" for b, t in BENCHMARKS.items()) + ")")
    expected = np.full(len(df), -2)  # each row's task name from its benchmark, as a code of df.task (-2: absent)
    for bench, rows in of_bench.items():
        codes = df.task.cat.categories.get_indexer(BENCHMARKS[bench])
        expected[rows] = np.where(codes < 0, -2, codes)[index[rows]]
    wrong = pd.Series(_codes(df.task) != expected, index=df.index)
    if wrong.any():
        i = int(np.flatnonzero(wrong.to_numpy())[0])
        raise bad_line(wrong, f"task {df.task.iloc[i]!r} is not task {df.task_index.iloc[i]} of "
                              f"{df.benchmark.iloc[i]} ({BENCHMARKS[df.benchmark.iloc[i]][index[i]]!r})")
    run_code = pd.factorize(df["run_dir"])[0]
    # each row against the first row of its file (the files' rows are contiguous); only where
    # one differs, the per-file count of values that names it
    first = np.flatnonzero(np.r_[True, run_code[1:] != run_code[:-1]])
    starts = first[np.cumsum(np.r_[False, run_code[1:] != run_code[:-1]])]
    if any((_codes(df[col]) != _codes(df[col])[starts]).any() for col in RUN_KEY) \
            or len(first) != len(np.unique(run_code)):
        mixed = df[RUN_KEY].groupby(run_code, sort=False).nunique()
    else:
        mixed = pd.DataFrame(1, index=[0], columns=RUN_KEY)
    if (mixed > 1).any(axis=None):
        code = mixed.index[(mixed > 1).any(axis=1)][0]
        col = mixed.columns[(mixed.loc[code] > 1)][0]
        run = df["run_dir"].to_numpy()[run_code == code][0]
        values = sorted(df.loc[df.run_dir == run, col].astype(str).unique().tolist())
        raise LogError(f"{Path(run) / 'eval.csv'}: one run per file expected, but column '{col}' has values {values}")
    span = int(df.task_index.max()) + 1
    dup = pd.Series(run_code, index=df.index).mul(int(df.step.max()) + 1).add(df.step).mul(span) \
        .add(df.task_index).duplicated(keep="first")
    if dup.any():
        raise bad_line(dup, "duplicate (step, task_index): this evaluation was logged twice")
    return df


def _as_text(evals: pd.DataFrame) -> pd.DataFrame:
    """The text columns and ``run_dir`` of validated rows as plain text (object) columns."""
    for c in (*TEXT_COLUMNS, "run_dir"):
        evals[c] = evals[c].astype(object)
    return evals


def read_eval_csv(path: PathLike) -> pd.DataFrame:
    """One ``eval.csv``, validated against the contract; errors name the file and line.

    The returned frame has a ``run_dir`` column (the file's folder).
    """
    path = Path(path)
    evals = _validate_evals(_read_raw_eval(path).assign(run_dir=str(path.parent.resolve())))
    _check_against_manifests(evals)
    return _as_text(evals)


def _check_unique_runs(frame: pd.DataFrame, what: str) -> None:
    """Two run directories holding the same (variant, benchmark, reward_version, seed) is an error."""
    owners = frame[[*RUN_KEY, "run_dir"]].drop_duplicates()
    dup = owners[owners.duplicated(RUN_KEY, keep=False)]
    if not dup.empty:
        key = dup.iloc[0][RUN_KEY].to_dict()
        dirs = dup.loc[(dup[RUN_KEY] == dup.iloc[0][RUN_KEY]).all(axis=1), "run_dir"].tolist()
        raise LogError(f"{what}: run {key} appears in more than one directory: {' and '.join(dirs)}; "
                       "pass only one of them")


def _run_sort_key(first: pd.Series | dict) -> tuple:
    """(variant, benchmark, reward_version, seed) of a file's first row, for ordering runs
    (unvalidated yet, so a non-numeric seed sorts last instead of failing here)."""
    seed = pd.to_numeric(first["seed"], errors="coerce")
    return (*(str(first[c]) for c in RUN_KEY[:3]), np.isnan(seed), 0 if np.isnan(seed) else seed)


def load_evals(paths: PathLike | Iterable[PathLike], unfinished: bool = False) -> pd.DataFrame:
    """All ``eval.csv`` under ``paths`` in one long frame (design.md columns + ``run_dir``).

    Runs are ordered by (variant, benchmark, reward_version, seed); each file keeps its row order.
    ``unfinished`` (a partial report, ``analysis.partial``): a run whose manifest is not
    complete may have evaluated past the manifest's ``env_steps`` (written when its trainer
    started), up to the last update in its ``train_metrics.csv``.
    """
    runs = _require_runs(paths)
    evals = _read_evals_at_once(runs)
    if evals is None:  # one file at a time, as the errors name the file
        frames = [_read_raw_eval(run / "eval.csv").assign(run_dir=str(run)) for run in runs]
        frames.sort(key=lambda frame: _run_sort_key(frame.iloc[0]))
        evals = pd.concat(frames, ignore_index=True)
    evals = _validate_evals(evals)
    _check_unique_runs(evals.drop_duplicates("run_dir"), "eval.csv")
    _check_against_manifests(evals, unfinished)
    return _as_text(evals)


def _check_against_manifests(evals: pd.DataFrame, unfinished: bool = False) -> None:
    """Each run's eval.csv agrees with its manifest.json (when it has one; an invalid one is an
    error): same run key, no evaluation past the manifest's env_steps (``unfinished``: past
    the last logged update of a run not complete), and for a complete run the last
    evaluation at exactly env_steps."""
    per_run = evals.groupby("run_dir", sort=False, observed=True) \
        .agg(**{key: (key, "first") for key in RUN_KEY}, last=("step", "max"))
    for run, first in per_run.iterrows():
        if not (Path(run) / "manifest.json").exists():
            continue
        m = read_manifest(run)
        where = f"{Path(run) / 'eval.csv'} disagrees with {Path(run) / 'manifest.json'}"
        for key in RUN_KEY:
            if str(first[key]) != str(m[key]):
                raise LogError(f"{where}: {key} {first[key]!r} in eval.csv, {m[key]!r} in the manifest")
        last = int(first["last"])
        if unfinished and m["status"] != "complete":
            logged = _last_logged_step(Path(run))
            if logged is not None and last > logged:
                raise LogError(f"{Path(run) / 'eval.csv'}: an evaluation at step {last}, past the "
                               f"last update in train_metrics.csv (step {logged})")
        elif last > m["env_steps"]:
            raise LogError(f"{where}: an evaluation at step {last}, past the manifest's "
                           f"env_steps {m['env_steps']}")
        if m["status"] == "complete" and last != m["env_steps"]:
            raise LogError(f"{where}: the run is complete at env_steps {m['env_steps']} but its last "
                           f"evaluation is at step {last}")


def _last_logged_step(run: Path) -> int | None:
    """The step of the last row of the run's train_metrics.csv (None: no rows)."""
    try:
        steps = pd.read_csv(run / "train_metrics.csv", usecols=["step"]).step
    except (FileNotFoundError, pd.errors.EmptyDataError, ValueError):
        return None
    return int(steps.max()) if len(steps) else None


# ---------------------------------------------------------------- manifest.json
# keys every manifest.json has (docs/design.md), with what their values must be
_MANIFEST_KEYS = {
    "status": ("'running' or 'complete'", lambda v: v in ("running", "complete")),
    "variant": ("a non-empty string", lambda v: isinstance(v, str) and v != ""),
    "benchmark": (f"one of {', '.join(BENCHMARKS)}", lambda v: v in BENCHMARKS),
    "reward_version": (f"one of {', '.join(REWARD_VERSIONS)}", lambda v: v in REWARD_VERSIONS),
    "seed": ("an integer >= 0", lambda v: _is_int(v) and v >= 0),
    "config_hash": ("a string", lambda v: isinstance(v, str)),
    "env_steps": ("an integer >= 0", lambda v: _is_int(v) and v >= 0),
    "total_steps": ("an integer >= 1", lambda v: _is_int(v) and v >= 1),
    "updates": ("an integer >= 0", lambda v: _is_int(v) and v >= 0),
    "param_count": ("an object with integer 'total' >= 0",
                    lambda v: isinstance(v, dict) and _is_int(v.get("total")) and v["total"] >= 0),
}


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


class MissingManifest(LogError):
    """The run directory has no manifest.json."""


def read_manifest(run_dir: PathLike) -> dict:
    """``manifest.json`` of a run as a dict, validated (LogError naming the file and key if
    absent, not JSON, or a key is missing or invalid; MissingManifest if absent)."""
    path = Path(run_dir) / "manifest.json"
    try:
        m = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise MissingManifest(f"{path}: missing (every run directory has a manifest.json)") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LogError(f"{path}: not valid JSON: {e}") from e
    except OSError as e:
        raise LogError(f"{path}: cannot read: {e.strerror or e}") from e
    if not isinstance(m, dict):
        raise LogError(f"{path}: expected a JSON object, got {type(m).__name__}")
    for key, (what, ok) in _MANIFEST_KEYS.items():
        if key not in m:
            raise LogError(f"{path}: missing key '{key}'")
        if not ok(m[key]):
            raise LogError(f"{path}: key '{key}' must be {what}, got {m[key]!r}")
    return m


def load_manifests(paths: PathLike | Iterable[PathLike], missing_ok: bool = False) -> pd.DataFrame:
    """One row per run: every manifest key, nested keys dotted (``param_count.total``), ``run_dir``.

    With ``missing_ok`` runs without a manifest.json are skipped instead of raising; an
    invalid manifest is always an error.
    """
    rows = []
    for run in _require_runs(paths):
        try:
            m = read_manifest(run)
        except MissingManifest:
            if missing_ok:
                continue
            raise
        rows.append({**m, "run_dir": str(run)})
    if not rows:
        return pd.DataFrame(columns=[*RUN_KEY, "run_dir"])
    frame = pd.json_normalize(rows, sep=".")
    frame["seed"] = frame["seed"].astype(np.int64)
    _check_unique_runs(frame, "manifest.json")
    return frame.sort_values(RUN_KEY, ignore_index=True)


# ---------------------------------------------------------------- train_metrics.csv
def _run_identity(run: Path) -> dict:
    """(variant, benchmark, reward_version, seed) of a run: from its manifest, else its eval.csv."""
    try:
        m = read_manifest(run)
        return {k: m[k] for k in RUN_KEY}
    except MissingManifest:
        row = pd.read_csv(run / "eval.csv", nrows=1)
        if row.empty:
            raise LogError(f"{run}: cannot tell which run this is (no manifest.json, empty eval.csv)") from None
        return {k: row.iloc[0][k] for k in RUN_KEY}


def _read_train_at_once(runs: list[tuple[Path, dict]]) -> list[pd.DataFrame] | None:
    """The ``train_metrics.csv`` of ``(run, identity)`` pairs, one ``read_csv`` per header
    line, with the run key and ``run_dir``; None wherever that could read differently from
    one file at a time (``load_train_metrics``'s ``read``, whose errors name the file): a
    file not plain (:func:`_plain_csv`) or without rows, a parse error, a missing ``update``
    or ``step``, a column not numeric, or a complete run whose update count disagrees."""
    by_head: dict[bytes, list[tuple[Path, dict, _Plain]]] = {}
    for run, identity in runs:
        plain = _plain_csv(run / "train_metrics.csv")
        if plain is None:
            return None
        by_head.setdefault(plain.head, []).append((run, identity, plain))
    frames = []
    for head, files in by_head.items():
        rows = [f.rows for _, _, f in files]
        df = _parse_together(head, [f.body for _, _, f in files], sum(rows))
        if df is None or "update" not in df or "step" not in df \
                or not all(pd.api.types.is_numeric_dtype(t) for t in df.dtypes):
            return None
        for (run, _, _), n in zip(files, rows, strict=True):
            m = read_manifest(run) if (run / "manifest.json").exists() else None
            if m is not None and m["status"] == "complete" and n != m["updates"]:
                return None
        columns = {k: np.repeat(np.array([i[k] for _, i, _ in files], dtype=object), rows) for k in RUN_KEY}
        frames.append(df.assign(**columns, run_dir=np.repeat(np.array([str(r) for r, _, _ in files], dtype=object),
                                                              rows)))
    return frames


def load_train_metrics(paths: PathLike | Iterable[PathLike],
                       variants: Iterable[str] | None = None) -> pd.DataFrame:
    """All ``train_metrics.csv`` (one row per PPO update) with the run key and ``run_dir``.

    ``variants`` restricts reading to those variants. Runs without the file are skipped; an
    empty frame (with the key columns) if none has one.
    """
    wanted = None if variants is None else set(variants)

    def read(run: Path, identity: dict) -> pd.DataFrame | None:
        path = run / "train_metrics.csv"
        try:
            df = pd.read_csv(path)
        except pd.errors.EmptyDataError:
            return None
        except pd.errors.ParserError as e:
            raise LogError(f"{path}: cannot parse as CSV: {e}") from e
        missing = [c for c in ("update", "step") if c not in df.columns]
        if missing:
            raise LogError(f"{path}: missing column(s) {', '.join(missing)}")
        if (run / "manifest.json").exists():
            m = read_manifest(run)
            if m["status"] == "complete" and len(df) != m["updates"]:
                raise LogError(f"{path} disagrees with {run / 'manifest.json'}: {len(df)} update "
                               f"rows, the complete run has {m['updates']} updates")
        return df.assign(**identity, run_dir=str(run))

    runs = [(run, identity) for run in _require_runs(paths) if (run / "train_metrics.csv").is_file()
            for identity in [_run_identity(run)] if wanted is None or identity["variant"] in wanted]
    frames = _read_train_at_once(runs)
    if frames is None:  # one file at a time, as the errors name the file
        frames = [f for f in (read(run, identity) for run, identity in runs) if f is not None]
        firsts = pd.concat([f.iloc[:1] for f in frames]) if frames else None
    else:  # every file has rows: its first row's key is its identity
        firsts = pd.DataFrame([{**identity, "run_dir": str(run)} for run, identity in runs])
    if not frames:
        return pd.DataFrame(columns=[*RUN_KEY, "update", "step", "run_dir"])
    _check_unique_runs(firsts, "train_metrics.csv")
    train = pd.concat(frames, ignore_index=True)
    train["seed"] = train["seed"].astype(np.int64)
    return train.sort_values([*RUN_KEY, "update"], ignore_index=True)
