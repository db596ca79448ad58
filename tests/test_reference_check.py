"""The reference check (analysis.reference_check): TOPPO's gain over the paper's MT-PPO and
over the reference MT-PPO, exact on synthetic logs with known answers."""

import csv
import io

import numpy as np
import pytest
import synthetic

from analysis import check_report, load_report_spec, metrics
from analysis import reference_check as rc
from analysis.protocols import RunSet

K = 10
STEPS = [100_000, 200_000]
# final success per seed (every task alike): toppo 60/70/80, mtppo 20/30/40, mtppo_ref 55/65/75
FINAL = {"toppo": (0.6, 0.7, 0.8), "mtppo": (0.2, 0.3, 0.4), "mtppo_ref": (0.55, 0.65, 0.75)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for variant, finals in FINAL.items():
        for seed, final in enumerate(finals):
            synthetic.write_run(root / "MT10-v2" / variant / f"seed{seed}", variant=variant,
                                benchmark="MT10", reward_version="v2", seed=seed,
                                success=np.vstack([np.full(K, 0.1), np.full(K, final)]), steps=STEPS,
                                episodes=10, train_updates=None)
    return RunSet.load([root], reps=200, seed=0)


@pytest.fixture(scope="module")
def spec():
    s = load_report_spec()
    return {**s, "worst_k": [3, 5]}


def test_gain_ci_is_the_difference_with_a_bootstrap_over_both_sides_seeds():
    x = np.array([[0.6, 0.6], [0.8, 0.8]]) * 100
    y = np.array([[0.2, 0.2], [0.2, 0.2]]) * 100
    gain, lo, hi = metrics.gain_ci(x, y, "mean", reps=500, seed=0)
    assert gain == pytest.approx(50.0)
    # y is constant, so every resample's gain is a resample of x's seeds minus 20: 40, 50 or 60
    assert (lo, hi) == (40.0, 60.0)
    assert metrics.gain_ci(x[:1], y[:1], "mean")[1:] == (40.0, 40.0)  # one seed each: no spread
    with pytest.raises(ValueError, match="x has 2 tasks, y 3"):
        metrics.gain_ci(x, np.zeros((2, 3)))


@pytest.mark.parametrize("low, high, verdict", [(0.5, 9.0, rc.ABOVE), (-3.0, -0.1, rc.BELOW),
                                                (-1.0, 2.0, rc.NOT_SEPARATED), (0.0, 2.0, rc.NOT_SEPARATED),
                                                (None, None, rc.NO_RUNS)])
def test_gain_verdict(low, high, verdict):
    assert rc.gain_verdict(low, high) == verdict


def test_rows_and_gains_with_known_answers(runs, spec):
    rows = rc.reference_check(runs, spec)
    by = {(r.kind, r.variant, r.over, r.statistic): r for r in rows}
    assert by[("variant", "toppo", "", "mean")].value == pytest.approx(70.0)
    assert by[("variant", "mtppo_ref", "", "iqm")].value == pytest.approx(65.0)
    assert by[("variant", "toppo_ref", "", "mean")].value is None  # no runs: the row says so
    assert by[("variant", "toppo_ref", "", "mean")].n_seeds == 0
    paper = by[("gain", "toppo", "mtppo", "mean")]
    assert paper.value == pytest.approx(40.0) and paper.verdict == rc.ABOVE
    assert paper.ci_low > 0 and (paper.n_seeds, paper.n_seeds_over) == (3, 3)
    ref = by[("gain", "toppo", "mtppo_ref", "mean")]
    assert ref.value == pytest.approx(5.0)
    # seeds 60/70/80 against 55/65/75: the bootstrap interval spans 0
    assert ref.ci_low < 0 < ref.ci_high and ref.verdict == rc.NOT_SEPARATED
    assert by[("gain", "toppo_ref", "mtppo_ref", "mean")].verdict == rc.NO_RUNS
    assert {r.statistic for r in rows} == {"mean", "iqm", "worst-3", "worst-5"}  # k < 10 tasks
    assert rc.verdict_lines(rows)[0] == (
        f"MT10 V2: TOPPO over MT-PPO: +40.0 points of mean success, 95% CI [{paper.ci_low:+.1f}, "
        f"{paper.ci_high:+.1f}] (3 vs 3 seeds): above")


def test_csv_tex_and_figure(runs, spec):
    rows = rc.reference_check(runs, spec)
    table = list(csv.DictReader(io.StringIO(rc.render_csv(rows))))
    assert list(table[0]) == list(rc.CSV_COLUMNS) and len(table) == len(rows)
    gain = next(r for r in table if r["kind"] == "gain" and r["over"] == "mtppo" and r["statistic"] == "mean")
    assert (gain["value"], gain["verdict"]) == ("40", "above")
    tex = rc.render_tex(rows, spec, "testscale", runs)
    assert "gain: TOPPO $-$ MT-PPO &" in tex and "scale \\texttt{testscale}" in tex
    assert "TOPPO on the reference MT-PPO & 0 & -- & -- & -- & -- &" in tex  # no runs
    fig = rc.figure(rows, spec, "testscale", runs)
    assert len(fig.axes) == 2 and fig.axes[1].get_xlabel() == "gain in mean success (points)"


def test_the_spec_names_known_variants():
    spec = load_report_spec()
    check_report(spec, "default")
    bad = {**spec, "reference_check": {"gains": [["toppo", "mtppo_nope"]]}}
    with pytest.raises(ValueError, match=r"reference_check.gains\[0\]: unknown variant 'mtppo_nope'"):
        check_report(bad, "cfg.yaml")
    with pytest.raises(ValueError, match="reference_check"):
        check_report({**spec, "reference_check": {"gains": [["toppo"]]}}, "cfg.yaml")  # schema: a pair
