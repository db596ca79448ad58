"""Evaluation protocols: from a run group's whole evaluation history to one reported number.

A *history* is the success of every (seed, task, evaluation) of one (variant, benchmark,
reward_version), shape (seeds, tasks, evals). Each protocol turns it into a (seeds, tasks)
score matrix, and an aggregate statistic (``analysis.metrics``) into one number:

=================  ======================================================================
``final``          the last evaluation of each (seed, task)
``max_over_time``  each (seed, task)'s best success at any evaluation
``last_n``         each (seed, task)'s mean over the last ``n`` evaluations
``curve_peak``     the evaluation where the statistic over seeds and tasks peaks (the peak
                   of the mean curve for ``mean``); the matrix at that evaluation
``seed_peak``      for each seed, its row at the evaluation where that seed's own
                   statistic over tasks peaks (per-seed peak of the task-mean curve)
=================  ======================================================================

:func:`report` gives value and dispersion in percent: ``std`` is the sample std (ddof=1)
over seeds of the per-seed statistic, ``sem`` that over sqrt(seeds), ``ci95`` a bootstrap
interval (``analysis.metrics.bootstrap_ci``). For ``curve_peak`` and ``seed_peak`` the
dispersion is that of the selected matrix (across seeds at the peak), conditional on
where the peak was found.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis import metrics
from analysis.conversion import protocol_unstated, row_protocol
from analysis.metrics import Statistic
from analysis.numfmt import (
    fmt_count,  # noqa: F401  (re-exported: tables, figures, reproduction)
    is_missing,
)
from analysis.protocol_spec import PROTOCOL_NAMES, Protocol, worst_k_of


class ProtocolError(ValueError):
    """Logs that a protocol cannot be applied to (incomplete or mismatched runs, wrong settings)."""


@dataclass(frozen=True)
class History:
    """Success of one (variant, benchmark, reward_version) at every (seed, task, evaluation)."""

    variant: str
    benchmark: str
    reward_version: str
    values: np.ndarray  # (seeds, tasks, evals), success fraction in [0, 1]
    seeds: tuple[int, ...]
    tasks: tuple[str, ...]
    steps: np.ndarray  # (evals,) env steps of each evaluation, shared by all seeds
    episodes: tuple[int, ...]  # distinct evaluation-episode counts found in the logs
    run_dirs: tuple[str, ...]  # one per seed

    @property
    def budget_reached(self) -> int:
        """Env steps of the last evaluation (the training budget the numbers reflect)."""
        return int(self.steps[-1])

    def facts(self) -> dict[str, Any]:
        """The group key, seeds and budget reached (the fields :meth:`RunSet.summary` reads)."""
        return {"variant": self.variant, "benchmark": self.benchmark, "reward_version": self.reward_version,
                "n_seeds": len(self.seeds), "budget_reached": self.budget_reached}

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.values.shape  # type: ignore[return-value]


def as_protocol(protocol: Protocol | str) -> Protocol:
    return Protocol.parse(protocol) if isinstance(protocol, str) else protocol


def describe(protocol: Protocol | str) -> str:
    """The protocol's text form (``final/iqm/std``, ``last_5/mean/sem``), as captions show it."""
    return str(as_protocol(protocol))


def history(evals: pd.DataFrame) -> History:
    """Validate one run group's evaluations and arrange them as a :class:`History`.

    Refuses (ProtocolError naming the run) when the frame mixes groups, a seed is missing
    tasks at some evaluation, or seeds differ in their evaluations (an incomplete run).
    """
    if evals.empty:
        raise ProtocolError("no evaluation rows")
    key_columns = ["variant", "benchmark", "reward_version"]
    if any((evals[c].to_numpy() != evals[c].to_numpy()[0]).any() for c in key_columns) \
            and len(groups := evals[key_columns].drop_duplicates()) != 1:
        raise ProtocolError("one (variant, benchmark, reward_version) at a time, got "
                            + "; ".join("/".join(map(str, r)) for r in groups.itertuples(index=False)))
    variant, benchmark, reward_version = evals[key_columns].iloc[0]
    # rows by (seed, step, task_index), as a stable sort of the frame would order them
    order = np.lexsort((evals["task_index"].to_numpy(), evals["step"].to_numpy(), evals["seed"].to_numpy()))
    col = {c: evals[c].to_numpy()[order] for c in ("seed", "step", "task_index", "task", "success_rate")}
    task_map = pd.DataFrame({"task_index": col["task_index"], "task": col["task"]}).drop_duplicates() \
        .sort_values("task_index")
    if task_map["task_index"].duplicated().any():
        bad = task_map[task_map["task_index"].duplicated(keep=False)]
        raise ProtocolError(f"{variant}/{benchmark}-{reward_version}: task_index {bad.iloc[0].task_index} "
                            f"names different tasks across runs: {sorted(bad.task.tolist())}")
    tasks = tuple(task_map["task"])
    task_ids = task_map["task_index"].to_numpy()
    run_dir = evals["run_dir"].to_numpy()[order] if "run_dir" in evals else None
    ref_steps, ref_label = None, ""
    blocks = []
    seed_starts = np.flatnonzero(np.r_[True, col["seed"][1:] != col["seed"][:-1]])
    for a, b in zip(seed_starts, [*seed_starts[1:], len(order)], strict=True):
        label = f"seed {col['seed'][a]} ({run_dir[a] if run_dir is not None else '?'})"
        step, task_index = col["step"][a:b], col["task_index"][a:b]
        if ((step[1:] == step[:-1]) & (task_index[1:] == task_index[:-1])).any():
            raise ProtocolError(f"{variant}/{benchmark}-{reward_version} {label}: a (step, task_index) is logged twice")
        steps, sizes = np.unique(step, return_counts=True)
        if (sizes != len(task_ids)).any():
            i = int(np.flatnonzero(sizes != len(task_ids))[0])
            missing = sorted(set(task_ids.tolist()) - set(task_index[step == steps[i]].tolist()))
            raise ProtocolError(f"{variant}/{benchmark}-{reward_version} {label}: evaluation at step {steps[i]} "
                                f"covers {sizes[i]} of {len(task_ids)} tasks (missing task_index {missing})")
        if ref_steps is None:
            ref_steps, ref_label = steps, label
        elif len(steps) != len(ref_steps):
            short, long_ = ((label, steps), (ref_label, ref_steps)) if len(steps) < len(ref_steps) else \
                ((ref_label, ref_steps), (label, steps))
            raise ProtocolError(
                f"{variant}/{benchmark}-{reward_version}: run {short[0]} has {len(short[1])} evaluations "
                f"(last at step {short[1][-1]}) but {long_[0]} has {len(long_[1])} (last at step {long_[1][-1]}); "
                "incomplete run? finish it or leave it out")
        elif not np.array_equal(steps, ref_steps):
            i = int(np.flatnonzero(steps != ref_steps)[0])
            raise ProtocolError(f"{variant}/{benchmark}-{reward_version}: evaluation {i} is at step {steps[i]} in "
                                f"run {label} but at step {ref_steps[i]} in {ref_label}; runs must share a schedule")
        blocks.append(col["success_rate"][a:b].astype(float).reshape(len(steps), len(task_ids)).T)
    seeds = tuple(int(s) for s in col["seed"][seed_starts])
    run_dirs = tuple(run_dir[seed_starts]) if run_dir is not None else ("?",) * len(seeds)
    return History(variant=str(variant), benchmark=str(benchmark), reward_version=str(reward_version),
                   values=np.stack(blocks), seeds=seeds, tasks=tasks, steps=np.asarray(ref_steps),
                   episodes=tuple(int(e) for e in sorted(evals["episodes"].unique())), run_dirs=run_dirs)


GROUP_KEY = ["benchmark", "reward_version", "variant"]  # a run group: the rows of one History


def histories(evals: pd.DataFrame) -> dict[tuple[str, str, str], History]:
    """A :class:`History` per (benchmark, reward_version, variant) in the frame."""
    return {key: history(g) for key, g in evals.groupby(GROUP_KEY, sort=True)}


def _as_history(data: pd.DataFrame | History) -> History:
    return data if isinstance(data, History) else history(data)


def check(h: History, protocol: Protocol) -> None:
    """Refuse when the logs do not match the protocol's eval_episodes / reward_version."""
    if protocol.eval_episodes is not None and h.episodes != (int(protocol.eval_episodes),):
        raise ProtocolError(f"protocol {describe(protocol)} needs {protocol.eval_episodes} evaluation episodes "
                            f"per task, but {h.variant}/{h.benchmark}-{h.reward_version} logs used {list(h.episodes)} "
                            f"(runs: {', '.join(h.run_dirs)})")
    if protocol.reward_version is not None and h.reward_version != protocol.reward_version:
        raise ProtocolError(f"protocol {describe(protocol)} is for reward version {protocol.reward_version}, "
                            f"but {h.variant}/{h.benchmark} runs used {h.reward_version}")


def _over_evals(values: np.ndarray, stat: Statistic) -> np.ndarray:
    """The statistic over seeds and tasks at each evaluation of a (seeds, tasks, evals) array."""
    if stat.name in ("mean", "iqm", "median"):
        return metrics.aggregate_curve(values, stat.name)
    if stat.over_evals is not None:
        return stat.over_evals(values)
    return np.array([stat(values[:, :, t]) for t in range(values.shape[2])])


def _final(v: np.ndarray, p: Protocol, s: Statistic) -> tuple[np.ndarray, dict]:
    return v[:, :, -1], {}


def _max_over_time(v: np.ndarray, p: Protocol, s: Statistic) -> tuple[np.ndarray, dict]:
    return v.max(axis=2), {}


def _last_n(v: np.ndarray, p: Protocol, s: Statistic) -> tuple[np.ndarray, dict]:
    n = p.last_n
    if n is None or not 1 <= int(n) <= v.shape[2]:
        raise ProtocolError(f"protocol last_n needs n in 1..{v.shape[2]} (the number of evaluations), got {n!r}")
    return v[:, :, -int(n):].mean(axis=2), {"last_n": int(n)}


def _curve_peak(v: np.ndarray, p: Protocol, s: Statistic) -> tuple[np.ndarray, dict]:
    t = int(np.argmax(_over_evals(v, s)))
    return v[:, :, t], {"peak_eval": t}


def _seed_peak(v: np.ndarray, p: Protocol, s: Statistic) -> tuple[np.ndarray, dict]:
    t = np.array([int(np.argmax(_over_evals(v[i : i + 1], s))) for i in range(v.shape[0])])
    return v[np.arange(v.shape[0]), :, t], {"peak_eval_per_seed": t.tolist()}


PHRASES = {
    "final": "at the final evaluation",
    "max_over_time": "of each task's best evaluation",
    "curve_peak": "at the peak of the curve over seeds and tasks",
    "seed_peak": "at each seed's own peak evaluation",
    "last_n": "averaged over the last {n} evaluations",
}


def phrase(protocol: Protocol | str) -> str:
    """What the protocol reports, in words, for captions (``at the final evaluation``)."""
    p = as_protocol(protocol)
    return PHRASES.get(p.name, p.name).format(n=p.last_n)


PROTOCOL_FUNCTIONS: dict[str, Callable[[np.ndarray, Protocol, Statistic], tuple[np.ndarray, dict]]] = {
    "final": _final,
    "max_over_time": _max_over_time,
    "curve_peak": _curve_peak,
    "seed_peak": _seed_peak,
    "last_n": _last_n,
}
assert set(PROTOCOL_FUNCTIONS) == set(PROTOCOL_NAMES), "every protocol_spec name needs a function here"


def _apply(data: pd.DataFrame | History, protocol: Protocol | str,
           statistic: str | Statistic | None) -> tuple[History, Protocol, Statistic, np.ndarray, dict]:
    h, p = _as_history(data), as_protocol(protocol)
    check(h, p)
    stat = statistic if isinstance(statistic, Statistic) else metrics.statistic(statistic or p.aggregator)
    if p.name not in PROTOCOL_FUNCTIONS:
        raise ProtocolError(f"unknown protocol '{p.name}'; expected one of {', '.join(PROTOCOL_FUNCTIONS)}")
    scores, extra = PROTOCOL_FUNCTIONS[p.name](h.values, p, stat)
    if "peak_eval" in extra:
        extra["peak_step"] = int(h.steps[extra["peak_eval"]])
    return h, p, stat, scores, extra


def score_matrix(data: pd.DataFrame | History, protocol: Protocol | str,
                 statistic: str | Statistic | None = None) -> tuple[np.ndarray, list[int], list[str]]:
    """``(scores (seeds, tasks) in [0, 1], seeds, tasks)`` of a run group under a protocol.

    For ``curve_peak`` / ``seed_peak`` the peak is that of ``statistic`` (default: the
    protocol's aggregator).
    """
    h, _, _, scores, _ = _apply(data, protocol, statistic)
    return scores, list(h.seeds), list(h.tasks)


def report(data: pd.DataFrame | History, protocol: Protocol | str, reps: int = metrics.DEFAULT_REPS,
           seed: int = 0, statistic: str | Statistic | None = None) -> dict[str, Any]:
    """The reported number of a run group under a protocol, in percent.

    Returns ``value``, ``dispersion`` (std / sem; for ci95 the half-width, with ``ci_low`` and
    ``ci_high``; NaN for none or a single seed's std), ``dispersion_kind``, ``n_seeds``,
    ``n_tasks``, ``n_evals``, ``budget_reached`` (env steps of the last evaluation),
    ``per_seed`` (the per-seed statistic), ``protocol``, ``statistic`` and the group key.
    ``statistic`` (e.g. ``"worst-10"``) replaces the protocol's aggregator.
    """
    h, p, stat, scores, extra = _apply(data, protocol, statistic)
    pct = 100.0 * scores
    per_seed = metrics.per_seed_values(pct, stat)
    out: dict[str, Any] = {
        "value": stat(pct), "dispersion": float("nan"), "dispersion_kind": p.dispersion,
        "ci_low": float("nan"), "ci_high": float("nan"),
        "n_seeds": len(h.seeds), "n_tasks": len(h.tasks), "n_evals": h.values.shape[2],
        "budget_reached": h.budget_reached, "per_seed": per_seed.tolist(), "seeds": list(h.seeds),
        "protocol": describe(p), "statistic": stat.name, "variant": h.variant,
        "benchmark": h.benchmark, "reward_version": h.reward_version, "episodes": list(h.episodes), **extra,
    }
    if p.dispersion == "std":
        out["dispersion"] = metrics.seed_std(per_seed)
    elif p.dispersion == "sem":
        out["dispersion"] = metrics.seed_sem(per_seed)
    elif p.dispersion == "ci95":
        lo, hi = metrics.bootstrap_ci(pct, stat, reps=reps, seed=seed)
        out.update(ci_low=lo, ci_high=hi, dispersion=(hi - lo) / 2.0)
    elif p.dispersion != "none":
        raise ProtocolError(f"unknown dispersion '{p.dispersion}'; expected std, sem, ci95 or none")
    return out


def _key_blocks(evals: pd.DataFrame) -> dict[tuple[str, str, str], tuple[int, int]] | None:
    """Each run group's rows as ``(first, end)`` where every group is one block of rows with
    text keys (GROUP_KEY; ``load_evals`` orders the rows so); None otherwise."""
    keys = [evals[c].to_numpy() for c in GROUP_KEY]
    try:
        changed = np.logical_or.reduce([k[1:] != k[:-1] for k in keys])
    except TypeError:  # a pd.NA compared
        return None
    starts = np.flatnonzero(np.r_[True, changed])
    blocks = {tuple(k[a] for k in keys): (a, b) for a, b in zip(starts, [*starts[1:], len(evals)], strict=True)}
    one_each = len(blocks) == len(starts) and all(isinstance(v, str) for key in blocks for v in key)
    return blocks if one_each else None


def _split_groups(evals: pd.DataFrame) -> dict[tuple[str, str, str], pd.DataFrame]:
    """The rows of each run group (GROUP_KEY) in frame order, keys sorted: slices of the
    frame (:func:`_key_blocks`), else copies (``groupby``: rows with a missing key left out)."""
    if evals.empty:
        return {}
    blocks = _key_blocks(evals)
    if blocks is not None:
        return {key: evals.iloc[a:b] for key, (a, b) in sorted(blocks.items())}
    return {key: evals.take(rows) for key, rows in sorted(evals.groupby(GROUP_KEY).indices.items())}


class RunSet:
    """Evaluations of many run groups, with their histories and reports computed once.

    Tables and figures read every number through one RunSet, so a figure and a table
    showing the same quantity use the same code and the same bootstrap settings.
    """

    def __init__(self, evals: pd.DataFrame, manifests: pd.DataFrame | None = None,
                 train: pd.DataFrame | None = None, reps: int = metrics.DEFAULT_REPS, seed: int = 0):
        self.evals, self.manifests, self.train = evals, manifests, train
        self.reps, self.seed = int(reps), int(seed)
        self._groups = _split_groups(evals)
        self._histories: dict[tuple, History] = {}
        self._reports: dict[tuple, dict[str, Any]] = {}
        self._manifest_groups: dict[tuple, pd.DataFrame] | None = None
        self.coverage = None  # analysis.partial.Coverage of a partial report, else None

    @classmethod
    def load(cls, paths, reps: int = metrics.DEFAULT_REPS, seed: int = 0,
             train: bool | Sequence[str] = False, partial: bool = False) -> RunSet:
        """Read every run under ``paths`` (none found: an empty set, every table says 'no runs').

        ``train``: also read train_metrics.csv (True), or only those of the listed variants.
        ``partial``: the cells evaluated so far, each cut at its benchmark and reward
        version's common step (``analysis.partial``); ``coverage`` says which.
        """
        from analysis import logs

        if partial:
            from analysis import partial as part

            evals, manifests, train_frame, coverage = part.load(paths, train)
            runs = cls(evals, manifests, train_frame, reps=reps, seed=seed)
            runs.coverage = coverage
            return runs
        runs = logs.find_run_dirs(paths)  # searched once: each loader is given the run directories
        if not runs:
            return cls(pd.DataFrame(columns=[*logs.EVAL_COLUMNS, "run_dir"]), reps=reps, seed=seed)
        return cls(logs.load_evals(runs), logs.load_manifests(runs, missing_ok=True),
                   logs.load_train_metrics(runs, None if train is True else train) if train else None,
                   reps=reps, seed=seed)

    def groups(self) -> list[tuple[str, str, str]]:
        """(benchmark, reward_version, variant) of every run group present."""
        return list(self._groups)

    def history(self, benchmark: str, reward_version: str, variant: str) -> History | None:
        key = (benchmark, reward_version, variant)
        if key not in self._groups:
            return None
        if key not in self._histories:
            self._histories[key] = history(self._groups[key])
        return self._histories[key]

    def report(self, benchmark: str, reward_version: str, variant: str, protocol: Protocol | str,
               statistic: str | None = None) -> dict[str, Any] | None:
        """:func:`report` of one group (None when it has no runs), cached."""
        p = as_protocol(protocol)
        key = (benchmark, reward_version, variant, p, statistic)
        if key not in self._reports:
            h = self.history(benchmark, reward_version, variant)
            self._reports[key] = None if h is None else report(h, p, reps=self.reps, seed=self.seed,
                                                               statistic=statistic)
        return self._reports[key]

    def _manifest_rows(self, benchmark: str, reward_version: str, variant: str) -> pd.DataFrame:
        m = self.manifests
        if m is None or m.empty:
            return pd.DataFrame()
        if self._manifest_groups is None:  # the manifests split by group once, not filtered per call
            self._manifest_groups = dict(iter(m.groupby(GROUP_KEY, sort=False)))
        return self._manifest_groups.get((benchmark, reward_version, variant), m.iloc[:0])

    def _manifest_value(self, benchmark: str, reward_version: str, variant: str, column: str) -> int | None:
        rows = self._manifest_rows(benchmark, reward_version, variant)
        if rows.empty or column not in rows or rows[column].isna().all():
            return None
        return int(rows[column].dropna().max())

    def param_total(self, benchmark: str, reward_version: str, variant: str) -> int | None:
        """``param_count.total`` from the group's manifests (None if unknown)."""
        return self._manifest_value(benchmark, reward_version, variant, "param_count.total")

    def budget_target(self, benchmark: str, reward_version: str, variant: str) -> int | None:
        """The configured ``total_steps`` from the group's manifests (None if unknown)."""
        return self._manifest_value(benchmark, reward_version, variant, "total_steps")

    def not_complete(self, benchmark: str, reward_version: str, variant: str) -> list[str]:
        """Run directories of the group whose manifest status is not ``complete``."""
        rows = self._manifest_rows(benchmark, reward_version, variant)
        if rows.empty or "status" not in rows:
            return []
        return rows.loc[rows.status != "complete", "run_dir"].tolist()

    def partial_note(self) -> str:
        """The partial report's statement of its cells and budget (analysis.partial), for
        every caption; empty for the full report."""
        return "" if self.coverage is None else self.coverage.sentence()

    def backend_note(self) -> str:
        """Which runs' training envs were not metaworld's (manifest ``env_backend``; a
        manifest without the key predates the setting: metaworld), for every caption and
        figure footnote; empty when all were metaworld's."""
        m = self.manifests
        if m is None or m.empty or "env_backend" not in m:
            return ""
        backend = m.env_backend.fillna("metaworld")
        other = m[backend != "metaworld"]
        if other.empty:
            return ""
        parts = []
        for name, rows in other.groupby("env_backend", sort=True):
            groups = sorted({f"{b}-{r} {v}" for b, r, v in
                             zip(rows.benchmark, rows.reward_version, rows.variant)})
            parts.append(f"training envs on {name} (env_backend={name}) in {len(rows)} of "
                         f"{len(m)} runs ({', '.join(groups)})")
        return "; ".join(parts) + ", evaluation on metaworld's envs"

    def summary(self, reports: list[dict[str, Any] | History | None]) -> str:
        """Plain-text facts of the reports (or histories) present, for captions and figure
        footnotes: ``10 seeds, budget reached 20M env steps (of 20M configured)``."""
        reps = [r.facts() if isinstance(r, History) else r for r in reports if r is not None]
        if not reps:
            return "no runs"

        def span(values: list, fmt=str) -> str:
            lo, hi = min(values), max(values)
            return fmt(lo) if lo == hi else f"{fmt(lo)} to {fmt(hi)}"

        seeds = span([r["n_seeds"] for r in reps])
        text = f"{seeds} seed{'' if seeds == '1' else 's'}, budget reached " \
               f"{span([r['budget_reached'] for r in reps], fmt_count)} env steps"
        keys = {(r["benchmark"], r["reward_version"], r["variant"]) for r in reps}
        targets = [t for k in keys if (t := self.budget_target(*k)) is not None]
        if targets:
            text += f" (of {span(targets, fmt_count)} configured)"
        running = sorted({d for k in keys for d in self.not_complete(*k)})
        if running:
            text += f"; {len(running)} run(s) not marked complete"
        return text


def curve(h: History, protocol: Protocol | str, reps: int = metrics.DEFAULT_REPS,
          seed: int = 0) -> dict[str, np.ndarray]:
    """The protocol's aggregate at every evaluation, in percent, with its band.

    Returns ``steps``, ``value``, ``lower``, ``upper`` (evals,): the band is the stratified
    bootstrap CI for ci95, value -+ std / sem of the per-seed curves, or the value itself for
    none. The protocol's name is not used (a curve shows the whole history).
    """
    p = as_protocol(protocol)
    pct = 100.0 * h.values
    if p.dispersion == "ci95":
        value, lower, upper = metrics.curve_band(pct, p.aggregator, reps=reps, seed=seed)
    else:
        value = metrics.aggregate_curve(pct, p.aggregator)
        lower = upper = value
        if p.dispersion in ("std", "sem") and pct.shape[0] > 1:
            per_seed = np.stack([metrics.aggregate_curve(pct[i : i + 1], p.aggregator) for i in range(pct.shape[0])])
            spread = per_seed.std(axis=0, ddof=1) / (np.sqrt(pct.shape[0]) if p.dispersion == "sem" else 1.0)
            lower, upper = value - spread, value + spread
    return {"steps": h.steps, "value": value, "lower": lower, "upper": upper}


# ---------------------------------------------------------------- published rows
# Which published number (analysis/data/baselines.csv) may stand beside one of ours: the
# protocol a row reports (analysis.conversion.row_protocol) against the one we compute.
UNSTATED_TEXT = "protocol not stated by the source"


def published_protocol(row: pd.Series) -> Protocol | None:
    """The protocol a published row reports (``analysis.conversion.row_protocol``); None when
    it has none we know (``unstated``, an empty cell, or an unparseable row)."""
    try:
        return row_protocol(row)
    except ValueError:
        return None


def published_unstated(row: pd.Series) -> bool:
    """Whether the source does not state the row's protocol (``unstated`` or an empty cell)."""
    return protocol_unstated(row) or is_missing(row.get("protocol"))


def published_protocol_text(row: pd.Series) -> str:
    """A published row's protocol as a footnote names it: ``name/aggregator``, or why not."""
    q = published_protocol(row)
    if q is not None:
        return f"{q.name}/{q.aggregator}"
    return UNSTATED_TEXT if published_unstated(row) else f"unknown protocol {row.get('protocol')}"


def same_protocol(row: pd.Series, protocol) -> bool:
    """Whether a published row reports the same statistic under the same protocol as ours
    (dispersion aside: a different spread is footnoted, not excluded)."""
    p, q = as_protocol(protocol), published_protocol(row)
    return q is not None and (q.name, q.aggregator) == (p.name, p.aggregator) and \
        (p.name != "last_n" or q.last_n == p.last_n)


def _worst_k_row(row: pd.Series) -> bool:
    return worst_k_of(str(row.get("aggregator", ""))) is not None


def pick_published(baselines: pd.DataFrame, method: str, benchmark: str, reward_version: str,
                   budget: int | None, protocol, prefer_source: str | None = None) -> pd.Series | None:
    """The published row of ``method`` to show: from a source containing ``prefer_source`` if
    there is one; same budget as ours if there is one, else the largest budget; among those the
    one with our protocol if there is one. A worst-k row is shown only under a worst-k protocol
    (a table of aggregates over all tasks never shows a tail statistic). None if absent."""
    rows = baselines[(baselines["method"].astype(str) == method)
                     & (baselines["benchmark"].astype(str).str.upper() == benchmark.upper())
                     & (baselines["reward_version"].astype(str).str.lower() == reward_version.lower())]
    if worst_k_of(as_protocol(protocol).aggregator) is None and not rows.empty:
        rows = rows[[not _worst_k_row(r) for _, r in rows.iterrows()]]
    if prefer_source and "source" in rows:
        preferred = rows[rows["source"].astype(str).str.contains(prefer_source, regex=False)]
        if not preferred.empty:
            rows = preferred
    if rows.empty:
        return None
    steps = pd.to_numeric(rows["budget_steps"], errors="coerce")
    same = np.isclose(steps, budget, rtol=0.02) if budget else np.zeros(len(rows), bool)
    if same.any():
        rows = rows[same]
    elif steps.notna().any():
        rows = rows[steps == steps.max()]
    matching = [i for i, (_, r) in enumerate(rows.iterrows()) if same_protocol(r, protocol)]
    return rows.iloc[matching[0] if matching else 0]
