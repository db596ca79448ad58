"""analysis.metrics: exact answers on small matrices, agreement with rliable, reproducible CIs."""

import numpy as np
import pytest
import scipy.stats
from rliable import library as rly
from rliable import metrics as rlm

from analysis import metrics as M

# 2 seeds x 4 tasks. Sorted pooled values: 0, 0, .25, .5, .5, .5, 1, 1.
S = np.array([[0.0, 0.5, 1.0, 0.25],
              [0.5, 0.5, 0.0, 1.0]])


def test_point_estimates_by_hand():
    assert M.mean(S) == pytest.approx(3.75 / 8)
    assert M.median(S) == pytest.approx(0.5)  # task means .25 .5 .5 .625
    assert M.iqm(S) == pytest.approx((0.25 + 0.5 + 0.5 + 0.5) / 4)  # middle half of the pooled values
    assert M.optimality_gap(S) == pytest.approx(1 - 3.75 / 8)
    assert M.optimality_gap(S, gamma=0.5) == pytest.approx(0.5 - 2.75 / 8)
    # scale-agnostic: percents give 100x
    assert M.iqm(100 * S) == pytest.approx(100 * M.iqm(S))
    assert M.optimality_gap(100 * S, gamma=50) == pytest.approx(100 * M.optimality_gap(S, gamma=0.5))


def test_worst_k_per_seed_and_pooled_by_hand():
    # per seed: seed 0 sorted 0 .25 .5 1; seed 1 sorted 0 .5 .5 1
    assert M.worst_k(S, 1) == pytest.approx(0.0)
    assert M.worst_k(S, 2) == pytest.approx((0.125 + 0.25) / 2)
    assert M.worst_k(S, 3) == pytest.approx((0.75 / 3 + 1.0 / 3) / 2)
    # pooled: task means .25 .5 .5 .625
    assert M.worst_k(S, 1, per_seed=False) == pytest.approx(0.25)
    assert M.worst_k(S, 2, per_seed=False) == pytest.approx(0.375)
    for per_seed in (True, False):
        assert M.worst_k(S, 4, per_seed=per_seed) == pytest.approx(M.mean(S))  # k = K is the mean
        profile = M.worst_k_profile(S, per_seed=per_seed)
        assert profile == pytest.approx([M.worst_k(S, k, per_seed=per_seed) for k in range(1, 5)])


def test_worst_k_over_evals_is_worst_k_at_each_evaluation_bit_for_bit():
    """The curve protocols' worst-k at every evaluation (tasks sorted once for all of them)
    is the per-evaluation worst_k exactly: ties, one seed or several, k up to every task."""
    rng = np.random.default_rng(3)
    for seeds, tasks, evals in [(1, 50, 30), (3, 10, 40), (10, 50, 20), (5, 13, 9)]:
        # many ties, as success fractions have; and values where any other order of summing shows
        for h in (rng.integers(0, 7, size=(seeds, tasks, evals)) / 6.0, rng.random((seeds, tasks, evals)) / 3.0):
            for k in (1, 7, 8, 10, tasks):
                ref = np.array([M.worst_k(h[:, :, t], k) for t in range(evals)])
                assert M.worst_k_over_evals(h, k).tobytes() == ref.tobytes()
    assert M.statistic("worst-10").over_evals is not None and M.statistic("worst-10-pooled").over_evals is None
    with pytest.raises(ValueError, match="1..10"):
        M.worst_k_over_evals(np.zeros((2, 10, 3)), 11)


@pytest.mark.parametrize("k", [0, 5, -1, 1.5, True])
def test_worst_k_rejects_k_outside_1_to_K(k):
    with pytest.raises(ValueError, match=r"1\.\.4"):
        M.worst_k(S, k)


def test_bad_matrices_are_refused():
    with pytest.raises(ValueError, match="seeds, tasks"):
        M.mean(np.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        M.mean(np.array([[0.1, np.nan]]))


def test_named_statistics():
    assert M.statistic("IQM")(S) == M.iqm(S)
    w = M.statistic("worst-2")
    assert (w.name, w.label, w.bootstrap) == ("worst-2", "Worst-2", "seeds")
    assert w(S) == M.worst_k(S, 2)
    pooled = M.statistic("worst2-pooled")
    assert pooled.bootstrap == "stratified" and pooled(S) == M.worst_k(S, 2, per_seed=False)
    with pytest.raises(ValueError, match="unknown statistic"):
        M.statistic("best-3")


def test_dispersion_over_seeds_by_hand():
    assert M.per_seed_values(S, "mean") == pytest.approx([0.4375, 0.5])
    assert M.std_over_seeds(S, "mean") == pytest.approx(0.0625 / np.sqrt(2))
    assert M.sem(S, "mean") == pytest.approx(0.0625 / 2)
    assert M.per_seed_values(S, "worst-1") == pytest.approx([0.0, 0.0])
    assert np.isnan(M.std_over_seeds(S[:1], "mean"))  # one seed: undefined


def test_aggregates_agree_with_rliable_and_scipy_on_random_data():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(7, 13))
    assert M.mean(x) == pytest.approx(rlm.aggregate_mean(x))
    assert M.median(x) == pytest.approx(np.median(x.mean(axis=0)))
    assert M.iqm(x) == pytest.approx(scipy.stats.trim_mean(x.ravel(), 0.25))
    assert M.optimality_gap(x, 0.7) == pytest.approx(rlm.aggregate_optimality_gap(x, 0.7))
    h = rng.uniform(size=(5, 9, 6))
    for name, fn in (("mean", M.mean), ("median", M.median), ("iqm", M.iqm)):
        assert M.aggregate_curve(h, name) == pytest.approx([fn(h[:, :, t]) for t in range(6)])


def test_bootstrap_ci_is_rliables_stratified_bootstrap_and_reproducible():
    x = np.random.default_rng(1).uniform(size=(6, 10))
    state = np.random.get_state()
    ci = M.bootstrap_ci(x, "iqm", reps=300, seed=3)
    after = np.random.get_state()
    assert all(np.array_equal(a, b) for a, b in zip(state[1:3], after[1:3], strict=True))  # global RNG restored
    assert M.bootstrap_ci(x, "iqm", reps=300, seed=3) == ci  # same seed, same interval
    assert M.bootstrap_ci(x, "iqm", reps=300, seed=4) != ci
    np.random.seed(3)
    _, ref = rly.get_interval_estimates({"x": x}, lambda s: np.array([rlm.aggregate_iqm(s)]), reps=300)
    assert ci == pytest.approx(tuple(ref["x"][:, 0]))
    assert ci[0] <= M.iqm(x) <= ci[1]
    np.random.set_state(state)


def test_worst_k_bootstrap_resamples_whole_seeds():
    # Each seed's worst task scores 0, so every whole-seed resample has worst-1 = 0; a per-task
    # (stratified) resample could pair seed 1's task 0 with seed 0's task 1 and score 1.
    x = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert M.bootstrap_ci(x, "worst-1", reps=200, seed=0) == (0.0, 0.0)
    assert M.bootstrap_ci(x, "worst-1-pooled", reps=200, seed=0)[1] > 0.0
    y = np.random.default_rng(2).uniform(size=(8, 12))
    ci = M.bootstrap_ci(y, "worst-3", reps=400, seed=5)
    assert ci == M.bootstrap_ci(y, "worst-3", reps=400, seed=5)
    assert ci[0] <= M.worst_k(y, 3) <= ci[1]


def test_single_seed_ci_collapses_to_the_point():
    x = np.array([[0.2, 0.4, 0.9]])
    lo, hi = M.bootstrap_ci(x, "mean", reps=50)
    assert lo == pytest.approx(M.mean(x)) and hi == pytest.approx(M.mean(x))


def test_curve_band_matches_rliable_pointwise():
    h = np.random.default_rng(3).uniform(size=(10, 20, 8))
    curve, lo, hi = M.curve_band(h, "mean", reps=4000, seed=0)
    assert curve == pytest.approx(h.mean(axis=(0, 1)))
    with M.seeded_global_numpy(0):
        _, ref = rly.get_interval_estimates({"x": h}, lambda x: M.aggregate_curve(x, "mean"), reps=4000)
    width = (ref["x"][1] - ref["x"][0]).mean()
    assert np.abs(lo - ref["x"][0]).max() < 0.15 * width  # same bootstrap, Monte-Carlo error only
    assert np.abs(hi - ref["x"][1]).max() < 0.15 * width
    again = M.curve_band(h, "mean", reps=4000, seed=0)
    assert np.array_equal(again[1], lo) and np.array_equal(again[2], hi)
    c_iqm, lo_iqm, hi_iqm = M.curve_band(h[:, :, :2], "iqm", reps=100, seed=0)
    assert np.all(lo_iqm <= c_iqm) and np.all(c_iqm <= hi_iqm)
