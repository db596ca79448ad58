"""The paper's figures (matplotlib, Agg backend), each written as PDF and PNG.

* :func:`training_curves`  success vs env steps per variant, with the curves protocol's band
* :func:`worst_k_curve`    worst-k success for k = 1..K; published means drawn at k = K
* :func:`gradnorm_spread`  per-task critic gradient-norm spread (max/min) over training,
                           plain ``mtppo`` vs ``toppo``, log scale
* :func:`success_heatmap`  per-task success, tasks x variants
* :func:`diagnosis`        the critic-side diagnosis over training (``analysis.diagnosis``):
                           grad-norm spread, pairwise cosines, Gram condition number, for the
                           cumulative rows MT-PPO -> TOPPO in the ablation setting

Panels and protocols come from the report spec (table-3 blocks and the ablation setting),
numbers from ``analysis.protocols`` (the code the tables use). Every figure's footnote states
seeds, budget reached, protocol and scale; a panel without data says so instead of failing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis import ablation_rows, logs, metrics
from analysis import diagnosis as diag
from analysis.partial import write_coverage
from analysis.protocol_spec import worst_k_of
from analysis.protocols import (
    RunSet,
    as_protocol,
    curve,
    describe,
    fmt_count,
    score_matrix,
)
from analysis.report_files import FIGURE_FORMATS, FIGURE_NAMES
from analysis.tables import load_baselines_or_none
from toppo.specs.registry import LABELS, VARIANTS

GRADNORM_VARIANTS = ("mtppo", "toppo")


@dataclass(frozen=True)
class Panel:
    """One subplot: a benchmark and reward version, the variants drawn, the protocol used."""

    benchmark: str
    reward_version: str
    variants: tuple[str, ...]
    protocol: object
    baselines: tuple[str, ...] = ()
    prefer_source: str | None = None

    @property
    def title(self) -> str:
        return f"{self.benchmark} ({self.reward_version.upper()} rewards)"


def panels(spec: dict, table3_only: bool = False) -> list[Panel]:
    """Table-3 blocks (its reward version and protocol), then the ablation setting with the
    cumulative variants; a (benchmark, reward version) appearing twice is merged."""
    t3, ab = spec["table3"], spec["ablations"]
    out: dict[tuple[str, str], Panel] = {}

    def add(bench: str, rv: str, variants, protocol, baselines=(), prefer_source=None) -> None:
        key = (bench, rv)
        if key in out:
            old = out[key]
            out[key] = dataclasses.replace(old, variants=tuple(dict.fromkeys([*old.variants, *variants])),
                                           baselines=tuple(dict.fromkeys([*old.baselines, *baselines])),
                                           prefer_source=old.prefer_source or prefer_source)
        else:
            out[key] = Panel(bench, rv, tuple(dict.fromkeys(variants)), as_protocol(protocol), tuple(baselines),
                             prefer_source)

    for block in t3["blocks"]:  # a block's own protocol and reward version (else the table's)
        add(block["benchmark"], block.get("reward_version", t3["reward_version"]), block.get("ours", []),
            block.get("protocol", t3["protocol"]), block.get("baselines", []), block.get("prefer_source"))
    if not table3_only:
        add(ab["benchmark"], ab["reward_version"], ablation_rows(spec, "cumulative"), ab["protocol"])
    return list(out.values())


# ---------------------------------------------------------------- helpers
def _label(variant: str) -> str:
    return LABELS.get(variant, variant)


def _color(variant: str) -> str:
    """One colour per variant in every figure (its place in toppo.specs.registry.VARIANTS, tab10 cycle)."""
    order = list(VARIANTS)
    return f"C{(order.index(variant) if variant in order else len(order)) % 10}"


def _subplots(n: int, width: float = 4.6, height: float = 3.6):
    fig, axes = plt.subplots(1, max(n, 1), figsize=(width * max(n, 1), height), squeeze=False,
                             layout="constrained")
    return fig, list(axes[0])


def axes_title(ax, text: str, fontsize: float) -> None:
    """``ax``'s title, at the top of the axes (y = 1), where matplotlib's automatic placement
    puts it on axes without x tick labels on top or an offset text on the y axis (a y axis
    whose range or scale cannot give one: fixed 0..100, log, named ticks). Placed
    automatically, the title costs a measure of the whole y axis (every tick label, twice)
    in each layout pass and draw: half of what the task heatmap's layout measures."""
    ax.set_title(text, fontsize=fontsize, y=1.0)


def no_data(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=9, wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def finish(fig, title: str, notes: Sequence[str], scale: str, runs: RunSet) -> None:
    """Title and a footnote with the facts (seeds, budget, protocol, scale; a partial
    report's cells and budget; runs trained on another env backend) under the axes."""
    fig.suptitle(title, fontsize=11)
    text = "; ".join([*notes, f"scale: {scale}",
                      *filter(None, [runs.partial_note(), runs.backend_note()])])
    wrapped = "\n".join(textwrap.wrap(text, width=int(45 * fig.get_figwidth() / 2.6)))
    fig.supxlabel(wrapped, x=0.01, ha="left", fontsize=7, color="0.25")


@contextlib.contextmanager
def _laid_out(fig, fmt: str, dpi: float | str | None):
    """Inside the block, ``fig`` is laid out for ``fig.savefig(format=fmt, dpi=dpi)`` and its
    layout engine is off, so savefig draws it once.

    With a layout engine on, savefig draws the whole figure twice: once with rendering
    disabled, only to run the layout with the renderer of that format (its text metrics), and
    once for real. Here the layout runs alone with that renderer, asked of a canvas of that
    format at the dpi savefig draws at, as savefig's first draw asks for it; the same
    positions, so the same bytes (tests/test_figures.py), at about a fifth less time.
    """
    from matplotlib.backend_bases import get_registered_canvas_class

    engine = fig.get_layout_engine()
    if engine is None or matplotlib.rcParams["figure.autolayout"] \
            or matplotlib.rcParams["figure.constrained_layout.use"]:  # then None would not turn it off
        yield
        return
    canvas, fig_dpi = fig.canvas, fig.dpi
    try:
        if not hasattr(canvas, f"print_{fmt}"):
            get_registered_canvas_class(fmt)(fig)  # the canvas savefig switches to (it sets fig.canvas)
        dpi = matplotlib.rcParams["savefig.dpi"] if dpi is None else dpi
        fig.dpi = fig_dpi if dpi == "figure" else dpi
        engine.execute(fig)
    finally:
        fig.set_canvas(canvas)
        fig.dpi = fig_dpi
    fig.set_layout_engine(None)
    try:
        yield
    finally:
        fig.set_layout_engine(engine)


def save_figure(fig, out_dir: str | Path, name: str) -> list[Path]:
    """Write ``fig`` as ``out_dir/name.pdf`` and ``.png`` (atomically) and close it."""
    out_dir = Path(out_dir)
    paths = []
    for ext, kw in FIGURE_FORMATS.items():
        buf = io.BytesIO()
        with _laid_out(fig, ext, kw.get("dpi")):
            fig.savefig(buf, format=ext, **kw)
        paths.append(logs.write_bytes_atomic(out_dir / f"{name}.{ext}", buf.getvalue()))
    plt.close(fig)
    return paths


def _fmt_steps(x, _pos=None) -> str:
    return fmt_count(x) if x else "0"


# ---------------------------------------------------------------- figures
def training_curves(runs: RunSet, spec: dict, scale: str):
    """Success (%) vs env steps per variant: the curves protocol's aggregate with its band
    (stratified-bootstrap 95% CI over seeds for ci95)."""
    cp = as_protocol(spec["curves_protocol"])
    ps = panels(spec)
    fig, axes = _subplots(len(ps))
    notes = []
    for ax, panel in zip(axes, ps, strict=False):
        hs = [(v, runs.history(panel.benchmark, panel.reward_version, v)) for v in panel.variants]
        hs = [(v, h) for v, h in hs if h is not None]
        axes_title(ax, panel.title, fontsize=10)
        if not hs:
            no_data(ax, f"no runs for {', '.join(panel.variants)}")
            continue
        for variant, h in hs:
            c = curve(h, cp, reps=runs.reps, seed=runs.seed)
            few = len(c["steps"]) < 3  # markers, or a run evaluated once would draw nothing
            (line,) = ax.plot(c["steps"], c["value"], label=_label(variant), lw=1.4, color=_color(variant),
                              marker="o" if few else None, ms=4)
            if len(c["steps"]) == 1:
                ax.errorbar(c["steps"], c["value"], yerr=[c["value"] - c["lower"], c["upper"] - c["value"]],
                            color=line.get_color(), capsize=3, lw=1)
            else:
                ax.fill_between(c["steps"], c["lower"], c["upper"], color=line.get_color(), alpha=0.2, lw=0)
        if all(len(ln.get_xdata()) == 1 for ln in ax.lines):  # evaluated once: show it from step 0
            ax.set_xlim(0, 1.1 * max(ln.get_xdata()[0] for ln in ax.lines))
        ax.set_xlabel("env steps")
        ax.set_ylabel(f"success (%), {metrics.statistic(cp.aggregator).label}")
        ax.xaxis.set_major_formatter(_fmt_steps)
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
        notes.append(f"{panel.benchmark}-{panel.reward_version}: {runs.summary([h for _, h in hs])}")
    band = {"ci95": f"band: stratified-bootstrap 95% CI over seeds, {runs.reps} resamples",
            "std": "band: std over seeds", "sem": "band: s.e.m. over seeds", "none": "no band"}[cp.dispersion]
    finish(fig, "Training curves", [*notes, f"protocol {describe(cp)} ({band})"], scale, runs)
    return fig


def published_worst_k(baselines: pd.DataFrame, method: str, benchmark: str, reward_version: str, protocol_name: str,
                      n_tasks: int, prefer_source: str | None = None) -> list[tuple[int, float, float]]:
    """``(k, value, tolerance)`` of every published worst-k point of ``method`` under the protocol
    name (a mean is the point at k = ``n_tasks``; tolerance 0 unless read off a figure or
    derived): rows of one source (``prefer_source`` if it has any, else the first with points),
    never a row whose protocol is unstated or another protocol."""
    rows = baselines[(baselines["method"].astype(str) == method)
                     & (baselines["benchmark"].astype(str) == benchmark)
                     & (baselines["reward_version"].astype(str) == reward_version)
                     & (baselines["protocol"].astype(str) == protocol_name)]
    by_source: dict[str, dict[int, tuple[float, float]]] = {}
    for _, row in rows.iterrows():
        agg = str(row["aggregator"])
        k = n_tasks if agg == "mean" else worst_k_of(agg)
        if k is None or k > n_tasks:
            continue
        tol = pd.to_numeric(row.get("tolerance"), errors="coerce")
        source = str(row.get("source", ""))
        by_source.setdefault(source, {})[k] = (float(row["value"]), 0.0 if pd.isna(tol) else float(tol))
    if not by_source:
        return []
    chosen = next((s for s in by_source if prefer_source and prefer_source in s), next(iter(by_source)))
    return sorted((k, v, t) for k, (v, t) in by_source[chosen].items())


def worst_k_curve(runs: RunSet, spec: dict, scale: str, baselines: pd.DataFrame | None = None):
    """Worst-k success for k = 1..K (mean over seeds of each seed's k lowest tasks, band
    +- std over seeds) under each table-3 block's protocol; published worst-k points under the
    same protocol name are overlaid (a published mean at k = K, where the worst-k equals the
    mean; read-off points hollow, with their tolerance as error bar)."""
    ps = panels(spec, table3_only=True)
    fig, axes = _subplots(len(ps))
    notes = []
    for ax, panel in zip(axes, ps, strict=False):
        p = dataclasses.replace(panel.protocol, aggregator="mean")
        axes_title(ax, panel.title, fontsize=10)
        hs = [(v, runs.history(panel.benchmark, panel.reward_version, v)) for v in panel.variants]
        hs = [(v, h) for v, h in hs if h is not None]
        if not hs:
            no_data(ax, f"no runs for {', '.join(panel.variants)}")
            continue
        n_tasks = max(h.values.shape[1] for _, h in hs)
        for variant, h in hs:
            scores = 100.0 * score_matrix(h, p)[0]
            ks = np.arange(1, scores.shape[1] + 1)
            per_seed = np.stack([metrics.worst_k_profile(scores[i : i + 1]) for i in range(scores.shape[0])])
            mean = metrics.worst_k_profile(scores)
            (line,) = ax.plot(ks, mean, label=_label(variant), lw=1.4, color=_color(variant))
            if scores.shape[0] > 1:
                sd = per_seed.std(axis=0, ddof=1)
                ax.fill_between(ks, mean - sd, mean + sd, color=line.get_color(), alpha=0.2, lw=0)
        if baselines is not None:
            for method in panel.baselines:
                points = published_worst_k(baselines, method, panel.benchmark, panel.reward_version, p.name,
                                           n_tasks, panel.prefer_source)
                if not points:
                    continue
                ks_, values, tols = zip(*points, strict=True)
                read = any(t > 0 for t in tols)
                what = "published mean" if ks_ == (n_tasks,) else "published worst-k"
                ax.errorbar(ks_, values, yerr=[t or 0 for t in tols] if read else None, fmt="D", ms=4, zorder=3,
                            capsize=2, mfc="none" if read else None,
                            label=f"{method} ({what}{', read off' if read else ''})")
        ax.set_xlabel("k (worst tasks averaged)")
        ax.set_ylabel("worst-k success (%)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
        notes.append(f"{panel.benchmark}-{panel.reward_version}: {runs.summary([h for _, h in hs])}, "
                     f"protocol {p.name} per (seed, task)")
    finish(fig, "Worst-k success", [*notes, "band = std over seeds; published points (same protocol name) "
                                              "overlaid, a mean at k = K; hollow = read off a figure (+- tolerance)"],
            scale, runs)
    return fig


def _spread_panels(train: pd.DataFrame | None, spec: dict) -> list[tuple[str, str]]:
    """(benchmark, reward version) with spread logs for mtppo or toppo; the ablation setting first."""
    if train is None or train.empty or "critic_gradnorm_spread" not in train:
        return []
    have = train[train.variant.isin(GRADNORM_VARIANTS) & train.critic_gradnorm_spread.notna()]
    keys = sorted({(b, r) for b, r in zip(have.benchmark, have.reward_version, strict=True)})
    first = (spec["ablations"]["benchmark"], spec["ablations"]["reward_version"])
    return sorted(keys, key=lambda k: k != first)


def gradnorm_spread(runs: RunSet, spec: dict, scale: str):
    """Per-task critic gradient-norm spread (max/min over tasks) over training: geometric
    mean over seeds, band min..max over seeds, log y."""
    train = runs.train
    keys = _spread_panels(train, spec)
    fig, axes = _subplots(len(keys))
    notes = []
    if not keys:
        no_data(axes[0], "no train_metrics.csv with critic_gradnorm_spread\nfor mtppo or toppo")
        notes.append("no training metrics")
    for ax, (bench, rv) in zip(axes, keys, strict=False):
        axes_title(ax, f"{bench} ({rv.upper()} rewards)", fontsize=10)
        facts = []
        for variant in GRADNORM_VARIANTS:
            found = diag.seed_matrix(train, bench, rv, variant, diag.SPREAD)  # updates every seed logged
            if found is None:
                continue
            spread, steps = found[0], found[1].to_numpy()
            logs_ = np.log(spread.to_numpy(dtype=float))
            window = max(1, len(spread) // 50)
            smooth = pd.DataFrame(logs_).rolling(window, min_periods=1).median().to_numpy()
            (line,) = ax.plot(steps, np.exp(smooth.mean(axis=1)), label=_label(variant), lw=1.4,
                              color=_color(variant))
            ax.fill_between(steps, np.exp(smooth.min(axis=1)), np.exp(smooth.max(axis=1)),
                            color=line.get_color(), alpha=0.2, lw=0)
            facts.append(f"{_label(variant)} {spread.shape[1]} seeds to {_fmt_steps(steps[-1])} steps")
        ax.set_yscale("log")
        ax.set_xlabel("env steps")
        ax.set_ylabel("critic grad-norm spread (max/min)")
        ax.xaxis.set_major_formatter(_fmt_steps)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
        notes.append(f"{bench}-{rv}: " + ", ".join(facts))
    finish(fig, "Per-task critic gradient-norm spread",
            [*notes, ("training diagnostic (no evaluation protocol): line = geometric mean over seeds, "
                      "band = min..max over seeds (rolling median)")], scale, runs)
    return fig


def success_heatmap(runs: RunSet, spec: dict, scale: str):
    """Per-task success (%), tasks x variants, mean over seeds under each panel's protocol."""
    ps = panels(spec)
    n_tasks = [next((h.values.shape[1] for v in p.variants
                     if (h := runs.history(p.benchmark, p.reward_version, v))), 0) for p in ps]
    height = max(3.6, 0.14 * max(n_tasks, default=0) + 1.8)
    n_cols = [sum(runs.history(p.benchmark, p.reward_version, v) is not None for v in p.variants)
              for p in ps]
    fig, axes = _subplots(len(ps), width=1.2 + 0.55 * max(max(n_cols, default=1), 1) + 1.8,
                          height=height)
    notes, image = [], None
    for ax, panel in zip(axes, ps, strict=False):
        p = dataclasses.replace(panel.protocol, aggregator="mean")
        axes_title(ax, panel.title, fontsize=9)
        hs = {v: h for v in panel.variants if (h := runs.history(panel.benchmark, panel.reward_version, v))}
        if not hs:
            no_data(ax, "no runs")
            continue
        tasks = list(dict.fromkeys(t for h in hs.values() for t in h.tasks))
        grid = np.full((len(tasks), len(hs)), np.nan)  # a column per variant with runs
        for j, v in enumerate(hs):
            means = 100.0 * score_matrix(hs[v], p)[0].mean(axis=0)
            for t, m in zip(hs[v].tasks, means, strict=True):
                grid[tasks.index(t), j] = m
        image = ax.imshow(np.ma.masked_invalid(grid), aspect="auto", vmin=0, vmax=100, cmap="viridis",
                          interpolation="nearest")
        ax.set_yticks(range(len(tasks)), tasks, fontsize=5 if len(tasks) > 20 else 7)
        ax.set_xticks(range(len(hs)), [_label(v) for v in hs], rotation=45, ha="right", fontsize=7)
        absent = [_label(v) for v in panel.variants if v not in hs]
        notes.append(f"{panel.benchmark}-{panel.reward_version}: {runs.summary(list(hs.values()))}, "
                     f"protocol {describe(p)}" + (f"; no runs: {', '.join(absent)}" if absent else ""))
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.6, label="success (%)")
    finish(fig, "Per-task success", notes, scale, runs)
    return fig


def diagnosis(runs: RunSet, spec: dict, scale: str):
    """The critic-side diagnosis in the ablation setting, one panel per statistic of the
    per-task critic gradients (``analysis.diagnosis.CURVES``), a line per cumulative variant:
    centre over seeds (geometric mean on log axes, mean otherwise), band min..max over seeds."""
    bench, rv = spec["ablations"]["benchmark"], spec["ablations"]["reward_version"]
    fig, axes = plt.subplots(2, 2, figsize=(11.0, 7.0), layout="constrained")
    facts: dict[str, str] = {}
    for ax, d in zip(axes.flat, diag.CURVES, strict=True):
        for variant in ablation_rows(spec, "cumulative"):
            c = diag.over_training(runs.train, bench, rv, variant, d)
            if c is None:
                continue
            (line,) = ax.plot(c.step, c.center, lw=1.4, color=_color(variant), label=_label(variant),
                              marker="o" if len(c) < 30 else None, ms=2.5)
            ax.fill_between(c.step, c.lo, c.hi, color=line.get_color(), alpha=0.15, lw=0)
            n = int(c.n_seeds.min())
            facts.setdefault(variant, f"{_label(variant)}: {n} seed{'' if n == 1 else 's'} to "
                                      f"{_fmt_steps(int(c.step.iloc[-1]))} steps")
        ax.set_title(d.label, fontsize=9)  # placed automatically: a cosine axis may have an offset text
        ax.set_xlabel("env steps")
        ax.xaxis.set_major_formatter(_fmt_steps)
        if d.log:
            ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
        if not ax.lines:
            no_data(ax, f"no train_metrics.csv with {d.column}\nfor {bench}-{rv}")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside right upper", fontsize=8)
    finish(fig, f"Critic-side diagnosis: per-task critic gradients, {bench} ({rv.upper()} rewards)",
            [*(facts.values() or ["no training metrics"]),
             "training diagnostic (no evaluation protocol), computed each update on the critic body's "
             "per-task gradients of a random sample of each task's rollout; line = geometric mean "
             "(log axes) or mean over seeds, band = min..max over seeds"], scale, runs)
    return fig


# ---------------------------------------------------------------- all figures
def render_all(run_paths: Sequence[str | Path], spec: dict, baselines_path: str | Path | None,
               out_dir: str | Path, scale: str, reps: int | None = None, seed: int | None = None,
               log=print, partial: bool = False) -> list[Path]:
    """Write every figure of ``FIGURE_NAMES`` as .pdf and .png into ``out_dir`` (``partial``:
    from the cells evaluated so far, analysis.partial, with ``partial_cells.csv``)."""
    reps = spec.get("bootstrap_reps", metrics.DEFAULT_REPS) if reps is None else reps
    seed = spec.get("bootstrap_seed", 0) if seed is None else seed
    train = tuple(dict.fromkeys([*GRADNORM_VARIANTS, *ablation_rows(spec, "cumulative")]))
    runs = RunSet.load(run_paths, reps=reps, seed=seed, train=train, partial=partial)  # whose train_metrics are read
    baselines = load_baselines_or_none(baselines_path)
    out_dir = Path(out_dir)
    builders = {
        "curves": lambda: training_curves(runs, spec, scale),
        "worst_k": lambda: worst_k_curve(runs, spec, scale, baselines),
        "gradnorm_spread": lambda: gradnorm_spread(runs, spec, scale),
        "heatmap": lambda: success_heatmap(runs, spec, scale),
        "diagnosis": lambda: diagnosis(runs, spec, scale),
    }
    written = [] if runs.coverage is None else [write_coverage(runs, out_dir)]
    for name in FIGURE_NAMES:
        paths = save_figure(builders[name](), out_dir, name)
        written += paths
        if log:
            log(f"wrote {', '.join(map(str, paths))}")
    return written
