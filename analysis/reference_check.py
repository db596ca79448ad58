"""The reference check: TOPPO's gain over MT-PPO as the paper configured it, and over
Meta-World+'s reference MT-PPO, side by side.

A weak base makes a fake gain. The paper's rows (``mtppo``, ``toppo``) follow its text, which
puts PPO's value clip in raw return units on its MT-PPO; the reference rows (``mtppo_ref``,
``toppo_ref``) are Meta-World+'s MT-PPO and TOPPO's modules on it (toppo/specs/registry.py). This
report shows every row of the check under one protocol -- mean and IQM over tasks and seeds,
and the per-seed worst-k, each with a 95% bootstrap CI -- and, for each pair of the spec's
``gains`` (``[toppo, mtppo]``: TOPPO's gain over the paper's MT-PPO; ``[toppo, mtppo_ref]``:
over the reference MT-PPO), the gain in points with a 95% CI over independent resamples of
both sides' seeds (``analysis.metrics.gain_ci``) and a verdict:

``above`` / ``below``   the interval lies above / below 0
``not separated``       the interval spans 0
``no runs``             a side has no runs on that benchmark and reward version

Report spec (``report.reference_check``, over analysis/default_report.yaml's:
``analysis.reference_check_spec``): ``protocol`` (a protocol name: final, last_n, ...),
``variants`` (rows: names or a variant group) and ``gains`` (pairs [ours, over]).
:func:`reference_check` returns the rows; :func:`render_all` writes ``reference_check.tex``,
``reference_check.csv`` and ``figures/reference_check.{pdf,png}``.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from analysis import logs, metrics, reference_check_spec
from analysis.partial import write_coverage
from analysis.protocol_spec import Protocol
from analysis.protocols import RunSet, score_matrix
from analysis.report_files import REFERENCE_CHECK_FILES as OUTPUT_FILES

CSV_COLUMNS = ("kind", "benchmark", "reward_version", "variant", "over", "statistic", "protocol",
               "value", "ci_low", "ci_high", "n_seeds", "n_seeds_over", "budget_reached", "verdict")
ABOVE, BELOW, NOT_SEPARATED, NO_RUNS = "above", "below", "not separated", "no runs"


@dataclass(frozen=True)
class Row:
    """One number of the report: a row's statistic (``kind="variant"``, ``over`` empty) or a
    gain in points of ``variant`` over ``over`` (``kind="gain"``), with its 95% CI."""

    kind: str
    benchmark: str
    reward_version: str
    variant: str
    over: str
    statistic: str
    protocol: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n_seeds: int
    n_seeds_over: int | None
    budget_reached: int | None
    verdict: str


def gain_verdict(low: float | None, high: float | None) -> str:
    """``above`` / ``below`` when the gain's interval excludes 0, else ``not separated``."""
    if low is None or high is None:
        return NO_RUNS
    return ABOVE if low > 0 else BELOW if high < 0 else NOT_SEPARATED


def statistics(spec: dict, num_tasks: int) -> list[str]:
    return ["mean", "iqm", *(f"worst-{k}" for k in spec.get("worst_k", []) if k < num_tasks)]


def reference_check(runs: RunSet, spec: dict) -> list[Row]:
    """The rows of the report, benchmark and reward version by benchmark and reward version
    (those where any row of the check has runs)."""
    own = reference_check_spec(spec)
    wanted = set(own["variants"]) | {v for pair in own["gains"] for v in pair}
    settings = sorted({(b, r) for b, r, v in runs.groups() if v in wanted})
    # each row's statistic with its own CI; the gains' scores (their CI is gain_ci's)
    with_ci, point = (Protocol(own["protocol"], "mean", d) for d in ("ci95", "none"))
    out: list[Row] = []
    for bench, rv in settings:
        hist = {v: runs.history(bench, rv, v) for v in wanted}
        any_h = next(h for h in hist.values() if h is not None)
        stats = statistics(spec, len(any_h.tasks))
        for variant in own["variants"]:
            h = hist[variant]
            for stat in stats:
                rep = None if h is None else runs.report(bench, rv, variant, with_ci, statistic=stat)
                out.append(Row("variant", bench, rv, variant, "", stat, own["protocol"],
                               None if rep is None else float(rep["value"]),
                               None if rep is None else float(rep["ci_low"]),
                               None if rep is None else float(rep["ci_high"]),
                               0 if h is None else len(h.seeds), None,
                               None if h is None else h.budget_reached, ""))
        for ours, over in own["gains"]:
            a, b = hist[ours], hist[over]
            for stat in stats:
                gain = low = high = None
                if a is not None and b is not None:
                    x = 100.0 * score_matrix(a, point, stat)[0]
                    y = 100.0 * score_matrix(b, point, stat)[0]
                    gain, low, high = metrics.gain_ci(x, y, stat, reps=runs.reps, seed=runs.seed)
                reached = [h.budget_reached for h in (a, b) if h is not None]
                out.append(Row("gain", bench, rv, ours, over, stat, own["protocol"], gain, low, high,
                               0 if a is None else len(a.seeds), 0 if b is None else len(b.seeds),
                               min(reached) if reached else None, gain_verdict(low, high)))
    return out


def verdict_lines(rows: Sequence[Row]) -> list[str]:
    """One plain-text line per gain (its mean statistic): the README's and the caption's."""
    from toppo.specs.registry import LABELS

    lines = []
    for r in rows:
        if r.kind != "gain" or r.statistic != "mean":
            continue
        head = (f"{r.benchmark} {r.reward_version.upper()}: {LABELS.get(r.variant, r.variant)} over "
                f"{LABELS.get(r.over, r.over)}")
        if r.value is None:
            lines.append(f"{head}: no runs")
            continue
        lines.append(f"{head}: {r.value:+.1f} points of mean success, 95% CI [{r.ci_low:+.1f}, "
                     f"{r.ci_high:+.1f}] ({r.n_seeds} vs {r.n_seeds_over} seeds): {r.verdict}")
    return lines


# ---------------------------------------------------------------- output
def _num(x: float | None) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.10g}"


def render_csv(rows: Sequence[Row]) -> str:
    """One line per row, columns :data:`CSV_COLUMNS`; empty cells where there is no number."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: _num(v) if isinstance(v, float) else "" if v is None else v
                         for k, v in asdict(r).items()})
    return buf.getvalue()


def _cell(r: Row, signed: bool = False) -> str:
    if r.value is None:
        return "--"
    f = "{:+.1f}" if signed else "{:.1f}"
    text = f.format(r.value).replace("-", "$-$")
    if r.ci_low is not None and not math.isnan(r.ci_low) and not math.isnan(r.ci_high):
        text += " [" + ", ".join(f.format(x).replace("-", "$-$") for x in (r.ci_low, r.ci_high)) + "]"
    return text


def render_tex(rows: Sequence[Row], spec: dict, scale: str, runs: RunSet) -> str:
    """Per benchmark and reward version: the rows of the check, then the gains with verdicts."""
    from analysis.latex import Table, latex_escape
    from toppo.specs.registry import LABELS

    stats = list(dict.fromkeys(r.statistic for r in rows)) or ["mean", "iqm"]
    header = ["", "Seeds", *(latex_escape(metrics.statistic(s).label) + " [95\\% CI]" for s in stats),
              "Verdict"]
    table = Table("l" + "r" * (len(stats) + 1) + "l", header, caption="", label="tab:reference_check",
                  size="\\scriptsize\\setlength{\\tabcolsep}{3pt}")
    for bench, rv in dict.fromkeys((r.benchmark, r.reward_version) for r in rows):
        here = [r for r in rows if (r.benchmark, r.reward_version) == (bench, rv)]
        table.group(f"{latex_escape(bench)} {latex_escape(rv.upper())}")
        for key in dict.fromkeys((r.kind, r.variant, r.over) for r in here):
            cells = {r.statistic: r for r in here if (r.kind, r.variant, r.over) == key}
            first = next(iter(cells.values()))
            if key[0] == "variant":
                name, seeds, verdict = latex_escape(LABELS.get(key[1], key[1])), str(first.n_seeds), ""
            else:
                name = (f"gain: {latex_escape(LABELS.get(key[1], key[1]))} $-$ "
                        f"{latex_escape(LABELS.get(key[2], key[2]))}")
                seeds, verdict = f"{first.n_seeds} vs {first.n_seeds_over}", cells["mean"].verdict
            table.rows.append([name, seeds, *(_cell(cells[s], key[0] == "gain") if s in cells else "--"
                                              for s in stats), latex_escape(verdict)])
    if not rows:
        table.rows.append(["no runs of the reference check's rows", "--", *["--"] * len(stats), "--"])
    own = reference_check_spec(spec)
    used = [runs.history(b, r, v) for b, r, v in runs.groups() if v in own["variants"]]
    table.caption = (
        "Reference check: TOPPO's gain over MT-PPO as the paper configured it (per-task $\\sigma$, "
        "PPO's value clip) and over Meta-World+'s reference MT-PPO (state-dependent $\\sigma$ head, "
        "no value clip), success rate in \\% under the "
        f"{latex_escape(own['protocol'])} protocol; mean and IQM over tasks and seeds, worst-$k$ the "
        "mean of each seed's $k$ worst tasks; 95\\% bootstrap CIs (rows: stratified over seeds; gains: "
        "both sides' seeds resampled independently). Verdict: the gain's interval above, below or "
        f"not separated from 0. Ours: {runs.summary(used)}; scale \\texttt{{{latex_escape(scale)}}}."
        + (f" {latex_escape(runs.partial_note().capitalize())}." if runs.coverage is not None else ""))
    return table.render()


def figure(rows: Sequence[Row], spec: dict, scale: str, runs: RunSet):
    """Left: each row's mean success with its CI; right: the gains with their CIs against 0,
    one column of panels per benchmark and reward version."""
    import matplotlib.pyplot as plt

    from analysis.figures import axes_title, finish, no_data
    from toppo.specs.registry import LABELS

    settings = list(dict.fromkeys((r.benchmark, r.reward_version) for r in rows)) or [("", "")]
    fig, axes = plt.subplots(2, len(settings), figsize=(4.6 * len(settings), 5.6), squeeze=False,
                             layout="constrained")
    for j, (bench, rv) in enumerate(settings):
        for i, kind in enumerate(("variant", "gain")):
            ax = axes[i][j]
            mine = [r for r in rows if (r.benchmark, r.reward_version) == (bench, rv)
                    and r.kind == kind and r.statistic == "mean" and r.value is not None]
            if not mine:
                no_data(ax, "no runs")
                continue
            names = [LABELS.get(r.variant, r.variant) if kind == "variant" else
                     f"{LABELS.get(r.variant, r.variant)}\n- {LABELS.get(r.over, r.over)}" for r in mine]
            y = list(range(len(mine)))[::-1]
            err = [[r.value - r.ci_low for r in mine], [r.ci_high - r.value for r in mine]]
            ax.errorbar([r.value for r in mine], y, xerr=err, fmt="o", color="C0" if i == 0 else "C3",
                        capsize=3)
            ax.set_yticks(y, names, fontsize=7)
            if kind == "gain":
                ax.axvline(0.0, color="0.5", lw=0.8, ls="--")
                ax.set_xlabel("gain in mean success (points)")
            else:
                ax.set_xlabel("mean success (%)")
                axes_title(ax, f"{bench} {rv.upper()}", fontsize=9)
    own = reference_check_spec(spec)
    used = [runs.history(b, r, v) for b, r, v in runs.groups() if v in own["variants"]]
    finish(fig, "Reference check: TOPPO's gain over each MT-PPO",
           [f"{own['protocol']} protocol, mean success, 95% bootstrap CIs", runs.summary(used)],
           scale, runs)
    return fig


def render_all(run_paths: Sequence[str | Path], spec: dict, baselines_path: str | Path | None,
               out_dir: str | Path, scale: str, reps: int | None = None, seed: int | None = None,
               log=print, partial: bool = False) -> list[Path]:
    """Write :data:`OUTPUT_FILES` under ``out_dir`` (atomically; ``partial``: from the cells
    evaluated so far, analysis.partial, with ``partial_cells.csv``). The baselines file is not
    read: every number here is ours."""
    from analysis.figures import save_figure

    reps = spec.get("bootstrap_reps", metrics.DEFAULT_REPS) if reps is None else reps
    seed = spec.get("bootstrap_seed", 0) if seed is None else seed
    runs = RunSet.load(run_paths, reps=reps, seed=seed, partial=partial)
    rows = reference_check(runs, spec)
    out_dir = Path(out_dir)
    written = [] if runs.coverage is None else [write_coverage(runs, out_dir)]
    written += [logs.write_text_atomic(out_dir / "reference_check.tex", render_tex(rows, spec, scale, runs)),
                logs.write_text_atomic(out_dir / "reference_check.csv", render_csv(rows))]
    written += save_figure(figure(rows, spec, scale, runs), out_dir / "figures", "reference_check")
    if log:
        for path in written:
            log(f"wrote {path}")
        for line in verdict_lines(rows):
            log(line)
    return written


__all__ = ["ABOVE", "BELOW", "CSV_COLUMNS", "NOT_SEPARATED", "NO_RUNS", "OUTPUT_FILES", "Row", "figure",
           "gain_verdict", "reference_check", "render_all", "render_csv", "render_tex",
           "verdict_lines"]
