"""analysis.diagnosis (pure summaries of train_metrics.csv) and the figure and table drawn from it."""

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import synthetic

from analysis import diagnosis as diag
from analysis import figures, latex, load_report_spec, tables
from analysis.protocols import RunSet
from toppo.specs.registry import GROUPS, LABELS

CUMULATIVE = GROUPS["cumulative"]


def frame(variant, seed, spread, cos, steps=None):
    n = len(spread)
    return pd.DataFrame({
        "variant": variant, "benchmark": "MT50", "reward_version": "v2", "seed": seed,
        "update": np.arange(1, n + 1), "step": steps or [1000 * (u + 1) for u in range(n)],
        "critic_gradnorm_spread": spread, "critic_cos_mean": cos,
    })


@pytest.fixture
def train():
    return pd.concat([frame("mtppo", 0, [10.0, 100.0, 4.0], [0.2, 0.5, 0.1]),
                      frame("mtppo", 1, [1000.0, 1.0, 64.0], [0.4, 0.7, 0.3]),
                      frame("toppo", 0, [2.0, 8.0, 4.0], [0.0, 0.0, 0.0])], ignore_index=True)


def test_over_training_geometric_mean_for_ratios_and_mean_for_cosines(train):
    c = diag.over_training(train, "MT50", "v2", "mtppo", diag.SPREAD)
    assert c["update"].tolist() == [1, 2, 3] and c.step.tolist() == [1000, 2000, 3000]
    assert c.center.tolist() == pytest.approx([100.0, 10.0, 16.0])  # sqrt(10*1000), sqrt(100*1), sqrt(4*64)
    assert c.lo.tolist() == [10.0, 1.0, 4.0] and c.hi.tolist() == [1000.0, 100.0, 64.0]
    assert (c.n_seeds == 2).all()
    cos = diag.over_training(train, "MT50", "v2", "mtppo", diag.COS_MEAN)
    assert cos.center.tolist() == pytest.approx([0.3, 0.6, 0.2])


def test_over_training_keeps_only_updates_every_seed_logged_finite(train):
    t = train.copy()
    t.loc[(t.seed == 1) & (t["update"] == 2), "critic_gradnorm_spread"] = np.inf  # one task had no gradient
    t.loc[(t.seed == 0) & (t["update"] == 3) & (t.variant == "mtppo"), "critic_gradnorm_spread"] = 0.0
    c = diag.over_training(t, "MT50", "v2", "mtppo", diag.SPREAD)
    assert c["update"].tolist() == [1]  # update 2: inf, update 3: a zero on a log axis
    cos = diag.over_training(t, "MT50", "v2", "mtppo", diag.COS_MEAN)
    assert cos["update"].tolist() == [1, 2, 3]  # the cosine column is untouched
    t = t[~((t.variant == "mtppo") & (t.seed == 1) & (t["update"] == 1))]
    assert diag.over_training(t, "MT50", "v2", "mtppo", diag.SPREAD) is None


def test_missing_variant_setting_or_column_gives_none(train):
    assert diag.over_training(train, "MT50", "v2", "mtppo_popart", diag.SPREAD) is None
    assert diag.over_training(train, "MT10", "v2", "mtppo", diag.SPREAD) is None
    assert diag.over_training(train, "MT50", "v2", "mtppo", diag.GRAM_COND) is None
    assert diag.run_summary(train.iloc[0:0], "MT50", "v2", "mtppo", diag.SPREAD) is None


def test_run_summary_is_per_seed_median_then_over_seeds(train):
    s = diag.run_summary(train, "MT50", "v2", "mtppo", diag.SPREAD)
    # seed 0 median 10, seed 1 median 64 -> geometric mean sqrt(640)
    assert s == {"center": pytest.approx(math.sqrt(640)), "lo": 10.0, "hi": 64.0, "n_seeds": 2,
                 "n_updates": 3, "step": 3000}
    c = diag.run_summary(train, "MT50", "v2", "mtppo", diag.COS_MEAN)
    assert c["center"] == pytest.approx(0.3) and (c["lo"], c["hi"]) == (0.2, 0.4)  # medians 0.2, 0.4


@pytest.mark.parametrize("x, text", [(1414.42, "$1.4{\\times}10^{3}$"), (2.4e6, "$2.4{\\times}10^{6}$"),
                                     (9.96e3, "$1.0{\\times}10^{4}$"), (66.38, "66.4"), (458.6, "459"),
                                     (5.0, "5.00"), (0.0123, "$1.2{\\times}10^{-2}$")])
def test_fmt_sci(x, text):
    assert latex.fmt_sci(x) == text


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    synthetic.write_suite(root, scale="diag", groups=[("MT50", "v2", CUMULATIVE[:3])], seeds=range(3),
                          n_evals=4, train_updates=6)
    spec = load_report_spec()
    spec["ablations"] = {"benchmark": "MT50", "reward_version": "v2", "protocol": "final/mean/std"}
    return RunSet.load([root / "diag"], reps=50, train=CUMULATIVE), spec


def test_diagnosis_figure_panels_and_facts(suite):
    runs, spec = suite
    fig = figures.diagnosis(runs, spec, "diag")
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == [d.label for d in diag.CURVES]
    assert [ax.get_yscale() for ax in axes] == ["log", "linear", "log", "linear"]
    assert [ln.get_label() for ln in axes[0].lines] == [LABELS[v] for v in CUMULATIVE[:3]]
    first = diag.over_training(runs.train, "MT50", "v2", "mtppo", diag.SPREAD)
    assert axes[0].lines[0].get_ydata().tolist() == pytest.approx(first.center.tolist())
    foot = " ".join(fig._supxlabel.get_text().split())
    assert "MT-PPO: 3 seeds to" in foot and "min..max over seeds" in foot and "scale: diag" in foot
    plt.close(fig)


def test_diagnosis_figure_without_data_says_so(tmp_path, suite):
    _, spec = suite
    (tmp_path / "runs").mkdir()
    fig = figures.diagnosis(RunSet.load([tmp_path / "runs"], train=True), spec, "diag")
    assert "no train_metrics.csv with critic_gradnorm_spread" in fig.axes[0].texts[0].get_text()
    plt.close(fig)


def test_diagnosis_table_rows_and_numbers(suite):
    runs, spec = suite
    tex = tables.diagnosis_table(runs, spec, "diag")
    s = diag.run_summary(runs.train, "MT50", "v2", "mtppo", diag.SPREAD)
    mtppo = next(line for line in tex.splitlines() if line.startswith("MT-PPO &"))
    assert mtppo.startswith(f"MT-PPO & 3 & 6 & {latex.fmt_sci(s['center'])} ")
    # a cumulative row without runs says so
    assert f"{latex.latex_escape(LABELS[CUMULATIVE[3]])} & -- & -- & no runs" in tex
    assert "scale \\texttt{diag}" in tex and "[min, max] over seeds" in tex
