"""The reproduction report: every number the paper reports that our grid can produce, next to
ours under the same protocol, with a 95% bootstrap CI, the difference and a verdict.

The paper's numbers are the baselines-file rows of the paper methods named in the report spec
(``spec['reproduction']['methods']``, e.g. ``"TOPPO (paper)": toppo``): the MT50 V2 mean and
worst-k (k = 5 ... 50), the peak of the mean curve and its step, the MT50 V1 IQM and the MT10 V2
mean, each with the protocol the row states (final checkpoint; mean over tasks, then seeds;
worst-k = mean over each seed's k worst tasks, then over seeds). Ours is
``analysis.protocols.report`` of the same (benchmark, reward version, variant) under the row's
protocol name and statistic, with a ``ci95`` stratified-bootstrap interval (per-seed bootstrap
for worst-k); the peak's step gets a seed-bootstrap interval of the argmax step.

Verdict, in this order:

``not comparable: ...``  the reasons, each with its numbers: ``budget`` (our runs reached fewer
                         env steps than the paper's budget, or there are no runs), ``seeds``
                         (fewer than the paper's), ``reward version`` (no runs with the paper's;
                         ours are shown from the other one), ``evaluation episodes``, ``protocol
                         not stated by the source``. At smoke or CPU scale every row says
                         ``not comparable: budget ...`` and still shows ours.
``undecided: ...``       the paper's value is read off a figure (or derived) and its tolerance
                         straddles a bound of our CI.
``inside our CI`` / ``outside our CI``  the paper's value against our 95% interval.

:func:`reproduction` returns the rows; :func:`render_csv` and :func:`render_tex` format them;
:func:`render_all` writes ``reproduction.csv`` and ``reproduction.tex``.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis import logs, metrics
from analysis.partial import write_coverage
from analysis.protocol_spec import Protocol, worst_k_of
from analysis.protocols import RunSet, fmt_count
from analysis.report_files import REPRODUCTION_FILES as OUTPUT_FILES

CSV_COLUMNS = (
    "method", "variant", "benchmark", "reward_version", "quantity", "statistic", "protocol", "paper_value",
    "paper_value_kind", "paper_tolerance", "paper_seeds", "paper_budget", "paper_line", "ours_value", "ours_ci_low",
    "ours_ci_high", "ours_reward_version", "ours_seeds", "ours_budget_reached", "difference", "verdict",
)
INSIDE, OUTSIDE = "inside our CI", "outside our CI"
NOT_COMPARABLE = "not comparable: "


@dataclass(frozen=True)
class Entry:
    """One reported number of the paper and ours under its protocol.

    ``quantity`` is ``success`` (percent) or ``step`` (env steps of the curve's peak); ``ours_*``
    are None without runs; ``difference`` is ours minus the paper's."""

    method: str
    variant: str
    benchmark: str
    reward_version: str
    quantity: str
    statistic: str
    protocol: str
    paper_value: float
    paper_value_kind: str
    paper_tolerance: float | None
    paper_seeds: int | None
    paper_budget: int | None
    paper_line: int | None
    ours_value: float | None
    ours_ci_low: float | None
    ours_ci_high: float | None
    ours_reward_version: str | None
    ours_seeds: int | None
    ours_budget_reached: int | None
    difference: float | None
    verdict: str

    @property
    def comparable(self) -> bool:
        return not self.verdict.startswith(NOT_COMPARABLE)


def _cell(x: Any) -> Any:
    """None for an empty cell (NaN, None, empty text); the value otherwise."""
    if x is None or (isinstance(x, float) and math.isnan(x)) or (isinstance(x, str) and not x.strip()):
        return None
    return x


def verdict(paper: float, low: float | None, high: float | None, tolerance: float | None = None,
            reasons: Sequence[str] = ()) -> str:
    """The verdict of one row (see the module docstring): ``reasons`` first, then the paper's
    value (+- its read-off tolerance) against our interval ``[low, high]``."""
    if reasons:
        return NOT_COMPARABLE + ", ".join(reasons)
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return NOT_COMPARABLE + "no interval (no runs)"
    tol = tolerance or 0.0
    inside = low <= paper <= high
    if tol > 0 and any(abs(paper - bound) <= tol for bound in (low, high)):
        return f"undecided: the paper's value is within its tolerance (+-{tol:g}) of our CI bound"
    return INSIDE if inside else OUTSIDE


def peak_step_ci(values: np.ndarray, steps: np.ndarray, aggregator: str, reps: int, seed: int) -> tuple[float, float]:
    """95% seed-bootstrap interval of the step where the ``aggregator`` curve over seeds and
    tasks peaks: resample whole seeds, take each resample's argmax step, 2.5 / 97.5 percentiles."""
    rng = np.random.default_rng(seed)
    n = values.shape[0]
    stat = metrics.statistic(aggregator)
    peaks = np.empty(reps)
    for r in range(reps):
        sample = values[rng.integers(0, n, n)]
        if aggregator in ("mean", "iqm", "median"):
            curve = metrics.aggregate_curve(sample, aggregator)
        else:
            curve = np.array([stat(sample[:, :, t]) for t in range(sample.shape[2])])
        peaks[r] = steps[int(np.argmax(curve))]
    lo, hi = np.percentile(peaks, [2.5, 97.5])
    return float(lo), float(hi)


def _reasons(row: pd.Series, rep: dict | None, ours_rv: str | None) -> list[str]:
    reasons = []
    budget, seeds, episodes = (_cell(row.get(c)) for c in ("budget_steps", "n_seeds", "eval_episodes"))
    if rep is None:
        reasons.append(f"budget (no runs of {row['benchmark']})")
        return reasons
    if budget is not None and rep["budget_reached"] < int(budget):
        reasons.append(f"budget (reached {fmt_count(rep['budget_reached'])} of {fmt_count(int(budget))})")
    if seeds is not None and rep["n_seeds"] < int(seeds):
        reasons.append(f"seeds ({rep['n_seeds']} of {int(seeds)})")
    if ours_rv != row["reward_version"]:
        reasons.append(f"reward version (ours {ours_rv}, paper {row['reward_version']})")
    if episodes is not None and rep["episodes"] != [int(episodes)]:
        reasons.append(f"evaluation episodes (ours {'/'.join(map(str, rep['episodes']))}, paper {int(episodes)})")
    return reasons


def _order(row: pd.Series) -> tuple:
    k = worst_k_of(str(row["aggregator"]))
    return (row["benchmark"] != "MT50", row["reward_version"] != "v2", row["benchmark"], row["reward_version"],
            row["protocol"] != "final", row["protocol"], k is not None, k or 0,
            {"mean": 0, "iqm": 1, "median": 2}.get(str(row["aggregator"]), 3))


def reproduction(runs: RunSet, baselines: pd.DataFrame, spec: dict) -> list[Entry]:
    """The rows of the report (see the module docstring), paper method by paper method."""
    from toppo.specs.registry import VARIANTS

    methods = (spec.get("reproduction") or {}).get("methods") or {}
    for method, variant in methods.items():
        if variant not in VARIANTS:
            raise ValueError(f"report.reproduction.methods[{method!r}]: unknown variant {variant!r} "
                             f"(toppo.specs.registry: {', '.join(VARIANTS)})")
        if not (baselines["method"].astype(str) == method).any():
            raise ValueError(f"report.reproduction.methods: {method!r} is not a method of the baselines file")
    out: list[Entry] = []
    for method, variant in methods.items():
        rows = baselines[baselines["method"].astype(str) == method]
        for line, row in sorted(rows.iterrows(), key=lambda item: _order(item[1])):
            out.extend(_entries(runs, row, method, variant, line, spec))
    return out


def _entries(runs: RunSet, row: pd.Series, method: str, variant: str, line: Any, spec: dict) -> list[Entry]:
    bench, rv, name, agg = row["benchmark"], row["reward_version"], row["protocol"], str(row["aggregator"])
    tol = _cell(row.get("tolerance"))
    common = dict(method=method, variant=variant, benchmark=bench, reward_version=rv,
                  paper_value_kind=str(_cell(row.get("value_kind")) or "exact"),
                  paper_seeds=None if _cell(row.get("n_seeds")) is None else int(row["n_seeds"]),
                  paper_budget=None if _cell(row.get("budget_steps")) is None else int(row["budget_steps"]),
                  paper_line=int(line) if isinstance(line, int | np.integer) else None)
    if name == "unstated":
        return [Entry(**common, quantity="success", statistic=agg, protocol=f"unstated/{agg}",
                      paper_value=float(row["value"]), paper_tolerance=tol, ours_value=None, ours_ci_low=None,
                      ours_ci_high=None, ours_reward_version=None, ours_seeds=None, ours_budget_reached=None,
                      difference=None, verdict=NOT_COMPARABLE + "protocol not stated by the source")]
    p = Protocol(name, agg, "ci95")
    ours_rv = rv if runs.history(bench, rv, variant) is not None else next(
        (r for b, r, v in runs.groups() if b == bench and v == variant), None)
    h = None if ours_rv is None else runs.history(bench, ours_rv, variant)
    rep = None if h is None else runs.report(bench, ours_rv, variant, p)
    reasons = _reasons(row, rep, ours_rv)
    facts = {} if rep is None else dict(ours_reward_version=ours_rv, ours_seeds=rep["n_seeds"],
                                        ours_budget_reached=rep["budget_reached"])
    facts = {"ours_reward_version": None, "ours_seeds": None, "ours_budget_reached": None, **facts}
    value = None if rep is None else float(rep["value"])
    low, high = (None, None) if rep is None else (float(rep["ci_low"]), float(rep["ci_high"]))
    # a partial report: each verdict names its cells and their step
    note = "" if runs.coverage is None else f" ({runs.coverage.group_note(bench, ours_rv or rv, variant)})"
    entries = [Entry(**common, **facts, quantity="success", statistic=agg, protocol=str(p),
                     paper_value=float(row["value"]), paper_tolerance=tol, ours_value=value, ours_ci_low=low,
                     ours_ci_high=high, difference=None if value is None else value - float(row["value"]),
                     verdict=verdict(float(row["value"]), low, high, tol, reasons) + note)]
    at_step = _cell(row.get("at_step"))
    if at_step is not None and name == "curve_peak":
        step = None if rep is None else float(rep["peak_step"])
        slo = shi = None
        if h is not None:
            slo, shi = peak_step_ci(h.values, h.steps, agg, runs.reps, runs.seed)
        entries.append(Entry(**common, **facts, quantity="step", statistic=agg, protocol=str(p),
                             paper_value=float(at_step), paper_tolerance=None, ours_value=step, ours_ci_low=slo,
                             ours_ci_high=shi, difference=None if step is None else step - float(at_step),
                             verdict=verdict(float(at_step), slo, shi, None, reasons) + note))
    return entries


# ---------------------------------------------------------------- output
def _num(x: Any, fmt: str = "{:.10g}") -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)


def render_csv(entries: Sequence[Entry]) -> str:
    """One line per entry, columns :data:`CSV_COLUMNS`; empty cells where there is no number."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for e in entries:
        d = asdict(e)
        writer.writerow({k: (_num(v) if isinstance(v, float) else "" if v is None else v) for k, v in d.items()})
    return buf.getvalue()


def _stat_words(e: Entry) -> str:
    k = worst_k_of(e.statistic)
    stat = f"worst-{k}" if k is not None else metrics.statistic(e.statistic).label
    if e.quantity == "step":
        return f"step of the {stat} peak"
    return f"{stat}, {'peak of the curve' if e.protocol.startswith('curve_peak') else e.protocol.split('/')[0]}"


def _value(e: Entry, x: float | None) -> str:
    if x is None or math.isnan(x):
        return "--"
    return fmt_count(x) if e.quantity == "step" else f"{x:.1f}"


def render_tex(entries: Sequence[Entry], scale: str, runs: RunSet) -> str:
    """The report as a booktabs table (``analysis.latex.Table``), one block per paper method."""
    from analysis.latex import DAGGER, SECTION, Table, latex_escape

    table = Table("llllll", ["Number", "Paper", "Ours [95\\% CI]", "Ours $-$ paper", "Verdict", "Line"],
                  caption="", label="tab:reproduction", size="\\scriptsize\\setlength{\\tabcolsep}{3pt}")
    approx, groups = [], []
    for method in dict.fromkeys(e.method for e in entries):
        mine = [e for e in entries if e.method == method]
        table.group(f"{latex_escape(method)} vs {latex_escape(mine[0].variant)} (ours)")
        groups.append(mine[0].variant)
        for e in mine:
            paper = fmt_count(e.paper_value) if e.quantity == "step" else f"{round(e.paper_value, 2):g}"
            if e.paper_value_kind in ("read_off", "derived"):
                paper += f"{SECTION}"
                approx.append(e)
            elif e.paper_value_kind == "unverified":
                paper += DAGGER
            ours = _value(e, e.ours_value)
            if e.ours_value is not None and e.ours_ci_low is not None:
                ours += f" [{_value(e, e.ours_ci_low)}, {_value(e, e.ours_ci_high)}]"
            if e.ours_reward_version and e.ours_reward_version != e.reward_version:
                ours += f" ({latex_escape(e.ours_reward_version.upper())})"
            diff = "--" if e.difference is None else (
                ("+" if e.difference >= 0 else "$-$") + _value(e, abs(e.difference)))
            number = f"{latex_escape(e.benchmark)} {latex_escape(e.reward_version.upper())} {latex_escape(_stat_words(e))}"
            table.rows.append([number, paper, ours, diff, latex_escape(e.verdict),
                               "--" if e.paper_line is None else str(e.paper_line)])
    if not entries:
        table.rows.append(["no paper number in the baselines file for the report's methods", *["--"] * 5])
    used = [runs.history(b, r, v) for b, r, v in runs.groups() if v in groups]
    table.caption = (
        "Reproduced vs reported: every number of the paper's rows in the baselines file that the grid can "
        "produce, and ours under the same protocol (success rate in \\%, 95\\% stratified-bootstrap CI over "
        "seeds; worst-$k$ = mean over each seed's $k$ worst tasks, then over seeds; the peak's step with a "
        "seed-bootstrap CI). Verdict: inside or outside our CI, or not comparable and why (budget reached, "
        f"seeds, reward version). Ours: {runs.summary(used)}; scale \\texttt{{{latex_escape(scale)}}}. "
        + (f"{latex_escape(runs.partial_note().capitalize())}. " if runs.coverage is not None else "")
        + (f"{latex_escape(note[0].upper() + note[1:])}. " if (note := runs.backend_note()) else "")
        + "Line: the row of analysis/data/baselines.csv.")
    if approx:
        table.notes.append(f"{SECTION} read off the paper's figure or derived from its printed numbers, within: "
                           + "; ".join(f"line {e.paper_line} $\\pm${e.paper_tolerance:g}" for e in approx) + ".")
    if any(e.paper_value_kind == "unverified" for e in entries):
        table.notes.append(f"{DAGGER} transcribed from a secondary source, not verified against the paper.")
    return table.render()


def render_all(run_paths: Sequence[str | Path], spec: dict, baselines_path: str | Path | None,
               out_dir: str | Path, scale: str, reps: int | None = None, seed: int | None = None,
               log=print, partial: bool = False) -> list[Path]:
    """Write ``reproduction.tex`` and ``reproduction.csv`` (atomically) to ``out_dir``
    (``partial``: from the cells evaluated so far, analysis.partial, with
    ``partial_cells.csv``; every verdict names its cells and step)."""
    from analysis.baselines import load_baselines

    if baselines_path is None:
        raise ValueError("the reproduction report needs the baselines file (the paper's numbers are its rows)")
    reps = spec.get("bootstrap_reps", metrics.DEFAULT_REPS) if reps is None else reps
    seed = spec.get("bootstrap_seed", 0) if seed is None else seed
    runs = RunSet.load(run_paths, reps=reps, seed=seed, partial=partial)
    entries = reproduction(runs, load_baselines(baselines_path), spec)
    written = [] if runs.coverage is None else [write_coverage(runs, out_dir)]
    written += [logs.write_text_atomic(Path(out_dir) / "reproduction.tex", render_tex(entries, scale, runs)),
               logs.write_text_atomic(Path(out_dir) / "reproduction.csv", render_csv(entries))]
    if log:
        for path in written:
            log(f"wrote {path}")
        log(f"reproduction: {len(entries)} numbers, {sum(e.comparable for e in entries)} comparable")
    return written


__all__ = ["CSV_COLUMNS", "Entry", "INSIDE", "NOT_COMPARABLE", "OUTPUT_FILES", "OUTSIDE", "peak_step_ci",
           "render_all", "render_csv", "render_tex", "reproduction", "verdict"]
