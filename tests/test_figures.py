"""analysis.figures: every figure renders (with and without data) and states its facts."""

import io
import itertools

import matplotlib.pyplot as plt
import pandas as pd
import pytest
import synthetic

from analysis import figures, load_report_spec
from analysis.__main__ import main
from analysis.protocols import RunSet
from toppo.specs.registry import GROUPS, LABELS, VARIANTS

CUMULATIVE = GROUPS["cumulative"]


@pytest.fixture(scope="module")
def spec():
    s = load_report_spec()
    s["ablations"] = {"benchmark": "MT10", "reward_version": "v2", "protocol": "final/mean/std"}
    s["table3"]["blocks"] = [{"benchmark": "MT10", "ours": ["toppo", "mtppo"], "baselines": ["MTMHSAC", "SM"]}]
    s["bootstrap_reps"] = 100
    return s


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    synthetic.write_suite(root, scale="figscale", groups=[("MT10", "v1", ["toppo", "mtppo"]),
                                                          ("MT10", "v2", CUMULATIVE)],
                          seeds=range(2), n_evals=5, train_updates=12)
    return root / "figscale"


@pytest.fixture(scope="module")
def runs(root, spec):
    return RunSet.load([root], reps=spec["bootstrap_reps"], train=True)


def texts(fig):
    """Every string drawn on a figure: titles, footnote, axis texts, legends."""
    out = [t.get_text() for t in fig.texts]
    for name in ("_suptitle", "_supxlabel"):
        if getattr(fig, name, None) is not None:
            out.append(getattr(fig, name).get_text())
    for ax in fig.axes:
        out += [ax.get_title()] + [t.get_text() for t in ax.texts]
        if ax.get_legend():
            out += [t.get_text() for t in ax.get_legend().get_texts()]
    return "\n".join(out)


def test_training_curves_state_their_facts(runs, spec):
    fig = figures.training_curves(runs, spec, "figscale")
    t = texts(fig)
    flat = " ".join(t.split())  # the footnote is wrapped
    assert "MT10 (V1 rewards)" in t and "MT10 (V2 rewards)" in t
    assert "2 seeds, budget reached 10M env steps (of 10M configured)" in flat
    assert "protocol final/mean/ci95" in flat and "100 resamples" in flat and "scale: figscale" in flat
    assert {"TOPPO", "MT-PPO", LABELS[CUMULATIVE[1]]} <= set(t.splitlines())
    lower, upper = fig.axes[0].collections[0].get_paths()[0].vertices[:, 1].min(), 100
    assert 0 <= lower <= upper
    plt.close(fig)


def test_worst_k_marks_published_means(runs, spec):
    baselines = pd.DataFrame([
        {"method": "MTMHSAC", "benchmark": "MT10", "reward_version": "v1", "budget_steps": 1e7, "protocol": "final",
         "aggregator": "mean", "value": 60.0},
        {"method": "SM", "benchmark": "MT10", "reward_version": "v1", "budget_steps": 1e7, "protocol": "final",
         "aggregator": "iqm", "value": 70.0},  # an IQM is not a worst-k point
    ])
    fig = figures.worst_k_curve(runs, spec, "figscale", baselines)
    t = texts(fig)
    assert "MTMHSAC (published mean)" in t and "SM (published mean)" not in t
    ax = fig.axes[0]
    assert ax.lines[0].get_xdata().tolist() == list(range(1, 11))  # k = 1..K
    ys = ax.lines[0].get_ydata()
    assert all(a <= b + 1e-9 for a, b in itertools.pairwise(ys))  # worst-k grows with k
    plt.close(fig)


def test_gradnorm_spread_is_log_scale_mtppo_vs_toppo(runs, spec):
    fig = figures.gradnorm_spread(runs, spec, "figscale")
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and [ln.get_label() for ln in ax.lines] == ["MT-PPO", "TOPPO"]
    assert "MT10-v2: MT-PPO 2 seeds to 10M steps, TOPPO 2 seeds to 10M steps" in " ".join(texts(fig).split())
    plt.close(fig)


def test_heatmap_has_a_row_per_task(runs, spec):
    fig = figures.success_heatmap(runs, spec, "figscale")
    image = fig.axes[0].images[0]
    assert image.get_array().shape == (10, 2)  # tasks x (toppo, mtppo)
    assert "protocol final/mean/std" in " ".join(texts(fig).split())
    plt.close(fig)


def test_missing_data_gives_figures_that_say_so(tmp_path, spec):
    (tmp_path / "runs").mkdir()
    out = figures.render_all([tmp_path / "runs"], spec, None, tmp_path / "fig", "figscale", log=None)
    assert sorted(p.name for p in out) == sorted(f"{n}.{e}" for n in figures.FIGURE_NAMES for e in ("pdf", "png"))
    empty = RunSet.load([tmp_path / "runs"])
    assert "no train_metrics.csv" in texts(figures.gradnorm_spread(empty, spec, "figscale"))
    assert "no runs" in texts(figures.training_curves(empty, spec, "figscale"))
    plt.close("all")


def test_render_all_and_cli_write_pdf_and_png(root, tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text("report:\n  bootstrap_reps: 50\n  ablations: {benchmark: MT10, reward_version: v2}\n")
    rc = main(["figures", "--runs", str(root), "--config", str(config), "--no-baselines",
               "--out-dir", str(tmp_path / "fig"), "--scale", "figscale"])
    out = capsys.readouterr().out
    assert rc == 0 and out.count("wrote ") == len(figures.FIGURE_NAMES)
    for name in figures.FIGURE_NAMES:
        assert (tmp_path / "fig" / f"{name}.pdf").read_bytes()[:4] == b"%PDF"
        assert (tmp_path / "fig" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_variant_colours_are_fixed_and_distinct_among_rows_drawn_together():
    # a variant's colour depends on the variant only, not on which figure or panel draws it
    colours = [figures._color(v) for v in CUMULATIVE]
    order = list(VARIANTS)
    assert colours == [f"C{order.index(v) % 10}" for v in CUMULATIVE]  # mtppo ... toppo, in toppo.specs.registry order
    assert len(set(colours)) == len(CUMULATIVE)  # distinct among the rows drawn together


def test_rendering_twice_gives_the_same_bytes(runs, spec, tmp_path):
    for out in ("a", "b"):
        figures.save_figure(figures.training_curves(runs, spec, "figscale"), tmp_path / out, "curves")
    for ext in figures.FIGURE_FORMATS:
        assert (tmp_path / "a" / f"curves.{ext}").read_bytes() == (tmp_path / "b" / f"curves.{ext}").read_bytes()
    assert b"/CreationDate" not in (tmp_path / "a" / "curves.pdf").read_bytes()  # no render time


@pytest.mark.parametrize("name", [  # the quick tier: one figure with line panels, one with an image and colorbar
    name if name in ("curves", "heatmap") else pytest.param(name, marks=pytest.mark.slow)
    for name in figures.FIGURE_NAMES])
def test_save_figure_writes_what_savefig_writes(runs, spec, tmp_path, name):
    # save_figure lays a figure out once per format instead of savefig's extra draw, and the
    # figures pin their axes titles at the top (figures.axes_title): matplotlib's own savefig of
    # the same figure with automatically placed titles gives the same bytes
    build = {"curves": figures.training_curves, "worst_k": figures.worst_k_curve,
             "gradnorm_spread": figures.gradnorm_spread, "heatmap": figures.success_heatmap,
             "diagnosis": figures.diagnosis}[name]
    written = figures.save_figure(build(runs, spec, "figscale"), tmp_path, name)
    fig = build(runs, spec, "figscale")
    assert fig.get_layout_engine() is not None
    for ax in fig.axes:
        ax._autotitlepos = None  # matplotlib's automatic placement, as a new axes has it
    for path, (ext, kw) in zip(written, figures.FIGURE_FORMATS.items(), strict=True):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, **kw)
        assert path.read_bytes() == buf.getvalue(), path.name
    plt.close(fig)
