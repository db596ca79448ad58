"""analysis.protocols on synthetic logs whose answers are computed by hand (in the comments)."""

import numpy as np
import pandas as pd
import pytest
import synthetic

from analysis import logs
from analysis.protocol_spec import Protocol
from analysis.protocols import (
    ProtocolError,
    RunSet,
    curve,
    history,
    report,
    score_matrix,
)

# success[seed][eval, task] for 2 seeds x 3 evaluations (steps 100, 200, 300) x 2 tasks
HIST = {
    0: np.array([[0.2, 0.0], [0.8, 0.4], [0.6, 1.0]]),
    1: np.array([[0.4, 0.2], [0.6, 1.0], [0.2, 0.6]]),
}
STEPS = [100, 200, 300]


def write(root, hist=HIST, steps=STEPS, variant="toppo", episodes=5, **kw):
    for seed, success in hist.items():
        synthetic.write_run(root / variant / f"seed{seed}", variant=variant, benchmark="MT10", reward_version="v1",
                            seed=seed, success=success, steps=steps[: len(success)], episodes=episodes,
                            tasks=["reach-v3", "push-v3"], train_updates=None, **kw)
    return root


@pytest.fixture
def evals(tmp_path):
    return logs.load_evals(write(tmp_path))


def test_history_layout(evals):
    h = history(evals)
    assert h.shape == (2, 2, 3) and h.seeds == (0, 1) and h.tasks == ("reach-v3", "push-v3")
    assert h.values[1, :, 2] == pytest.approx([0.2, 0.6])  # seed 1, last evaluation
    assert h.budget_reached == 300 and h.episodes == (5,)


def test_score_matrices_by_hand(evals):
    final, seeds, tasks = score_matrix(evals, "final/mean/std")
    assert final == pytest.approx(np.array([[0.6, 1.0], [0.2, 0.6]])) and seeds == [0, 1] and tasks == ["reach-v3", "push-v3"]
    assert score_matrix(evals, "max_over_time/mean/std")[0] == pytest.approx(np.array([[0.8, 1.0], [0.6, 1.0]]))
    last2 = Protocol(name="last_n", aggregator="mean", dispersion="std", last_n=2)
    assert score_matrix(evals, last2)[0] == pytest.approx(np.array([[0.7, 0.7], [0.4, 0.8]]))
    # mean over seeds and tasks per evaluation: .2, .7, .6 -> the peak is evaluation 1
    assert score_matrix(evals, "curve_peak/mean/std")[0] == pytest.approx(np.array([[0.8, 0.4], [0.6, 1.0]]))
    # seed 0's task-mean curve .1 .6 .8 peaks at eval 2; seed 1's .3 .8 .4 at eval 1
    assert score_matrix(evals, "seed_peak/mean/std")[0] == pytest.approx(np.array([[0.6, 1.0], [0.6, 1.0]]))


def test_reports_by_hand(evals):
    r = report(evals, "final/mean/std")
    # per-seed means .8 and .4 -> mean 60, std |.8-.4|/sqrt(2)
    assert r["value"] == pytest.approx(60.0) and r["dispersion"] == pytest.approx(40 / np.sqrt(2))
    assert (r["n_seeds"], r["n_tasks"], r["n_evals"], r["budget_reached"]) == (2, 2, 3, 300)
    assert r["per_seed"] == pytest.approx([80.0, 40.0]) and r["dispersion_kind"] == "std"
    assert report(evals, "final/mean/sem")["dispersion"] == pytest.approx(20.0)
    # pooled final .2 .6 .6 1.0 -> IQM = mean of the middle two = 60; task means .4 .8 -> median 60
    assert report(evals, "final/iqm/std")["value"] == pytest.approx(60.0)
    assert report(evals, "final/median/none")["value"] == pytest.approx(60.0)
    assert np.isnan(report(evals, "final/median/none")["dispersion"])
    assert report(evals, "max_over_time/mean/std")["value"] == pytest.approx(85.0)
    last2 = Protocol(name="last_n", aggregator="mean", dispersion="std", last_n=2)
    assert report(evals, last2)["value"] == pytest.approx(65.0)
    peak = report(evals, "curve_peak/mean/std")
    # peak of the mean curve is 70 at step 200; per-seed task means there .6 and .8
    assert peak["value"] == pytest.approx(70.0) and peak["peak_step"] == 200
    assert peak["dispersion"] == pytest.approx(20 / np.sqrt(2))
    sp = report(evals, "seed_peak/mean/std")
    assert sp["value"] == pytest.approx(80.0) and sp["dispersion"] == pytest.approx(0.0)
    assert sp["peak_eval_per_seed"] == [2, 1]


def test_worst_k_statistic_under_protocols(evals):
    # final: each seed's worst task .6 and .2 -> 40
    assert report(evals, "final/mean/std", statistic="worst-1")["value"] == pytest.approx(40.0)
    # worst-1 per evaluation: .1, .5, .4 -> the curve peak is 50 (at step 200)
    r = report(evals, "curve_peak/mean/std", statistic="worst-1")
    assert r["value"] == pytest.approx(50.0) and r["peak_step"] == 200


def test_ci95_is_reproducible_and_brackets_the_value(evals):
    a = report(evals, "final/iqm/ci95", reps=300, seed=1)
    b = report(evals, "final/iqm/ci95", reps=300, seed=1)
    assert (a["ci_low"], a["ci_high"]) == (b["ci_low"], b["ci_high"])
    assert a["ci_low"] <= a["value"] <= a["ci_high"]
    assert a["dispersion"] == pytest.approx((a["ci_high"] - a["ci_low"]) / 2)


def test_incomplete_run_is_refused_by_name(tmp_path):
    hist = {0: HIST[0], 1: HIST[1][:2]}  # seed 1 stopped after two evaluations
    evals = logs.load_evals(write(tmp_path, hist))
    with pytest.raises(ProtocolError, match=r"seed 1 .*seed1.*2 evaluations.*incomplete"):
        report(evals, "final/mean/std")


def test_missing_task_rows_are_refused(evals):
    broken = evals.drop(evals.index[(evals.seed == 1) & (evals.step == 200) & (evals.task_index == 1)])
    with pytest.raises(ProtocolError, match=r"seed 1 .*step 200 covers 1 of 2 tasks"):
        history(broken)


def test_different_schedules_are_refused(tmp_path):
    write(tmp_path / "a", {0: HIST[0]})
    write(tmp_path / "b", {1: HIST[1]}, steps=[100, 250, 300])
    with pytest.raises(ProtocolError, match="step 250"):
        history(logs.load_evals(tmp_path))


def test_eval_episodes_and_reward_version_must_match_the_protocol(evals):
    with pytest.raises(ProtocolError, match="needs 50 evaluation episodes.*used \\[5\\]"):
        report(evals, Protocol(name="final", aggregator="mean", dispersion="std", eval_episodes=50))
    assert report(evals, Protocol(name="final", aggregator="mean", dispersion="std", eval_episodes=5))["value"] == 60
    with pytest.raises(ProtocolError, match="reward version v2"):
        report(evals, Protocol(name="final", aggregator="mean", dispersion="std", reward_version="v2"))


def test_mixed_groups_and_bad_last_n_are_refused(tmp_path):
    write(tmp_path, variant="toppo")
    write(tmp_path, variant="mtppo")
    evals = logs.load_evals(tmp_path)
    with pytest.raises(ProtocolError, match="one \\(variant, benchmark, reward_version\\) at a time"):
        history(evals)
    with pytest.raises(ProtocolError, match="last_n needs n in 1..3"):
        report(evals[evals.variant == "toppo"], Protocol(name="last_n", aggregator="mean", dispersion="std", last_n=4))


def test_runset_caches_and_reads_manifests(tmp_path):
    write(tmp_path, variant="toppo", param_total=1234)
    runs = RunSet.load([tmp_path], reps=100)
    assert runs.groups() == [("MT10", "v1", "toppo")]
    assert runs.report("MT10", "v1", "toppo", "final/mean/std") is runs.report("MT10", "v1", "toppo", "final/mean/std")
    assert runs.report("MT50", "v1", "toppo", "final/mean/std") is None
    assert runs.param_total("MT10", "v1", "toppo") == 1234 and runs.budget_target("MT10", "v1", "toppo") == 300
    assert runs.summary([runs.history("MT10", "v1", "toppo")]) == "2 seeds, budget reached 300 env steps (of 300 configured)"


def test_runset_groups_are_groupbys(tmp_path):
    # a group's rows in one block are a slice of the frame, else taken; either way what
    # groupby gives, a row with a missing key left out
    for variant in ("toppo", "mtppo"):
        write(tmp_path, variant=variant)
    evals = logs.load_evals(tmp_path)
    key = ["benchmark", "reward_version", "variant"]
    missing_keys = [evals.assign(variant=evals.variant.where(evals.index != 3, m)) for m in (None, np.nan, pd.NA)]
    for frame in (evals, evals.sample(frac=1, random_state=0), *missing_keys):
        groups = RunSet(frame)._groups
        want = {k: frame.take(rows) for k, rows in sorted(frame.groupby(key).indices.items())}
        assert list(groups) == list(want) and all(groups[k].equals(want[k]) for k in want)
    assert len(RunSet(evals)._groups) == 2


def test_curve_with_std_band(evals):
    c = curve(history(evals), "final/mean/std")
    # per-seed task means: seed 0 .1 .6 .8, seed 1 .3 .8 .4
    assert c["value"] == pytest.approx([20.0, 70.0, 60.0])
    assert c["upper"] - c["value"] == pytest.approx(np.array([20, 20, 40]) / np.sqrt(2))
