"""Aggregate metrics and their uncertainty over score matrices shaped (seeds, tasks).

Every function takes ``scores[n, m]`` = score of seed (run) ``n`` on task ``m``, like
rliable. Scores may be fractions in [0, 1] or percents; all functions are scale-agnostic
(the optimality gap's ``gamma`` is in the same units as the scores).

* point estimates: :func:`mean`, :func:`median`, :func:`iqm`, :func:`optimality_gap`
  (rliable's ``aggregate_*``) and :func:`worst_k` (the paper's tail metric);
* a :class:`Statistic` bundles a point estimate with the bootstrap it needs, looked up
  by name with :func:`statistic` (``mean``, ``iqm``, ``median``, ``optgap``, ``worst-10``);
* dispersion: :func:`per_seed_values`, :func:`std_over_seeds`, :func:`sem` (or
  :func:`seed_std`, :func:`seed_sem` of per-seed values computed once) and
  :func:`bootstrap_ci` (rliable's stratified bootstrap, or a whole-seed bootstrap for
  statistics computed inside each seed), reproducible for a given ``seed``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import scipy.stats
from rliable import metrics as rlm

DEFAULT_REPS = 2000


def as_matrix(scores: np.ndarray | list, name: str = "scores") -> np.ndarray:
    """``scores`` as a float (seeds, tasks) array; raises ValueError if it is not one."""
    arr = np.asarray(scores, dtype=float)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{name} must be a non-empty (seeds, tasks) matrix, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


# ---------------------------------------------------------------- point estimates
def mean(scores: np.ndarray) -> float:
    """Mean over seeds and tasks (rliable ``aggregate_mean``)."""
    return float(rlm.aggregate_mean(as_matrix(scores)))


def median(scores: np.ndarray) -> float:
    """Median over tasks of the seed-averaged per-task scores (rliable ``aggregate_median``)."""
    return float(rlm.aggregate_median(as_matrix(scores)))


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean of all (seed, task) scores (rliable ``aggregate_iqm``)."""
    return float(rlm.aggregate_iqm(as_matrix(scores)))


def optimality_gap(scores: np.ndarray, gamma: float = 1.0) -> float:
    """Mean shortfall below ``gamma`` (rliable ``aggregate_optimality_gap``)."""
    return float(rlm.aggregate_optimality_gap(as_matrix(scores), gamma=gamma))


def _check_k(k: int, num_tasks: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= num_tasks:
        raise ValueError(f"worst-k needs an integer k in 1..{num_tasks} (the number of tasks), got {k!r}")
    return int(k)


def worst_k(scores: np.ndarray, k: int, per_seed: bool = True) -> float:
    """Mean success of the ``k`` worst tasks.

    ``per_seed=True`` (the paper): inside each seed sort the tasks by that seed's score and
    average the ``k`` lowest, then average over seeds. ``per_seed=False``: sort tasks by
    their seed-averaged score and average the ``k`` lowest seed means. ``k`` equal to the
    number of tasks gives the mean in both modes.
    """
    arr = as_matrix(scores)
    k = _check_k(k, arr.shape[1])
    if per_seed:
        return float(np.sort(arr, axis=1)[:, :k].mean())
    return float(np.sort(arr.mean(axis=0))[:k].mean())


def worst_k_over_evals(history: np.ndarray, k: int) -> np.ndarray:
    """The per-seed :func:`worst_k` at every evaluation of a (seeds, tasks, evals) history,
    shape (evals,): each evaluation's tasks sorted once for all evaluations, then the same
    mean of the (seeds, k) lowest that :func:`worst_k` takes (equal to it bit for bit)."""
    h = np.asarray(history, dtype=float)
    if h.ndim != 3:
        raise ValueError(f"history must be (seeds, tasks, evals), got shape {h.shape}")
    as_matrix(h.reshape(h.shape[0], -1), "history")
    ranked = np.sort(h, axis=1)[:, : _check_k(k, h.shape[1])]
    return np.array([float(ranked[:, :, t].mean()) for t in range(h.shape[2])])


def worst_k_profile(scores: np.ndarray, per_seed: bool = True) -> np.ndarray:
    """``worst_k`` for every k = 1..K at once, shape (K,)."""
    arr = as_matrix(scores)
    if per_seed:
        ranked = np.sort(arr, axis=1).mean(axis=0)
    else:
        ranked = np.sort(arr.mean(axis=0))
    return np.cumsum(ranked) / np.arange(1, arr.shape[1] + 1)


# ---------------------------------------------------------------- curves (seeds, tasks, steps)
def aggregate_curve(history: np.ndarray, aggregator: str) -> np.ndarray:
    """An aggregate at every evaluation of a (seeds, tasks, evals) history, shape (evals,).

    The same estimators as the scalar functions, applied along the last axis: rliable's
    ``aggregate_mean`` / ``aggregate_median`` already reduce only the leading two axes, and
    the IQM is the same ``scipy.stats.trim_mean`` rliable uses, over seeds and tasks pooled.
    """
    h = np.asarray(history, dtype=float)
    if h.ndim != 3:
        raise ValueError(f"history must be (seeds, tasks, evals), got shape {h.shape}")
    if aggregator == "mean":
        return np.asarray(rlm.aggregate_mean(h))
    if aggregator == "median":
        return np.asarray(rlm.aggregate_median(h))
    if aggregator == "iqm":
        return scipy.stats.trim_mean(h.reshape(-1, h.shape[-1]), proportiontocut=0.25, axis=0)
    raise ValueError(f"unknown curve aggregator '{aggregator}'; expected mean, iqm or median")


# ---------------------------------------------------------------- named statistics
@dataclass(frozen=True)
class Statistic:
    """A named point estimate over a (seeds, tasks) matrix and the bootstrap it needs.

    ``bootstrap`` is ``"stratified"`` (rliable: resample seeds independently per task) or
    ``"seeds"`` (resample whole seeds, for statistics computed inside each seed such as
    the per-seed worst-k).
    """

    name: str
    label: str
    fn: Callable[[np.ndarray], float]
    bootstrap: str = "stratified"
    # the statistic at every evaluation of a (seeds, tasks, evals) history at once, where
    # that is faster than one evaluation at a time (and the same numbers)
    over_evals: Callable[[np.ndarray], np.ndarray] | None = None

    def __call__(self, scores: np.ndarray) -> float:
        return self.fn(scores)


_WORST = re.compile(r"^worst-?(\d+)(-pooled)?$")


def statistic(name: str) -> Statistic:
    """The :class:`Statistic` called ``name``: mean, iqm, median, optgap, worst-K, worst-K-pooled.

    ``worst-K`` is the paper's per-seed worst-k (whole-seed bootstrap); ``worst-K-pooled``
    ranks tasks by their seed-averaged score (``per_seed=False``).
    """
    key = name.strip().lower()
    simple = {
        "mean": Statistic("mean", "Mean", mean),
        "iqm": Statistic("iqm", "IQM", iqm),
        "median": Statistic("median", "Median", median),
        "optgap": Statistic("optgap", "Optimality gap", optimality_gap),
    }
    if key in simple:
        return simple[key]
    m = _WORST.match(key)
    if m:
        k, pooled = int(m.group(1)), bool(m.group(2))
        if k < 1:
            raise ValueError(f"worst-k statistic needs k >= 1, got '{name}'")
        return Statistic(
            f"worst-{k}" + ("-pooled" if pooled else ""),
            f"Worst-{k}",
            lambda s, k=k, pooled=pooled: worst_k(s, k, per_seed=not pooled),
            bootstrap="stratified" if pooled else "seeds",
            over_evals=None if pooled else (lambda h, k=k: worst_k_over_evals(h, k)),
        )
    raise ValueError(f"unknown statistic '{name}'; expected mean, iqm, median, optgap, worst-K or worst-K-pooled")


def _resolve(stat: Statistic | str) -> Statistic:
    return stat if isinstance(stat, Statistic) else statistic(stat)


# ---------------------------------------------------------------- dispersion
def per_seed_values(scores: np.ndarray, stat: Statistic | str = "mean") -> np.ndarray:
    """The statistic applied to each seed's row on its own, shape (seeds,)."""
    arr, stat = as_matrix(scores), _resolve(stat)
    return np.array([stat(arr[i : i + 1]) for i in range(arr.shape[0])])


def seed_std(per_seed: np.ndarray) -> float:
    """Sample standard deviation (ddof=1) of per-seed values (:func:`per_seed_values`); NaN with one seed."""
    return float(np.std(per_seed, ddof=1)) if per_seed.size > 1 else float("nan")


def seed_sem(per_seed: np.ndarray) -> float:
    """Standard error of the mean of per-seed values (their std / sqrt(seeds))."""
    return seed_std(per_seed) / np.sqrt(per_seed.size)


def std_over_seeds(scores: np.ndarray, stat: Statistic | str = "mean") -> float:
    """Sample standard deviation (ddof=1) of the per-seed statistic; NaN with one seed."""
    return seed_std(per_seed_values(scores, stat))


def sem(scores: np.ndarray, stat: Statistic | str = "mean") -> float:
    """Standard error of the mean of the per-seed statistic (std over seeds / sqrt(seeds))."""
    return seed_sem(per_seed_values(scores, stat))


@contextlib.contextmanager
def seeded_global_numpy(seed: int) -> Iterator[None]:
    """Seed numpy's global RNG inside the block and restore the previous state afterwards.

    rliable's bootstrap draws from ``np.random`` directly (its ``random_state`` argument does
    not reach the resampling), so this is how its intervals are made reproducible.
    """
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(saved)


def seed_bootstrap_ci(
    data: np.ndarray,
    fn: Callable[[np.ndarray], float],
    reps: int = DEFAULT_REPS,
    seed: int = 0,
    size: float = 0.95,
) -> tuple[float, float]:
    """Percentile CI of ``fn`` over resamples of whole seeds (rows of ``data``, any trailing shape)."""
    data = np.asarray(data, dtype=float)
    n = data.shape[0]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(reps, n))
    vals = np.array([fn(data[i]) for i in idx])
    alpha = (1.0 - size) / 2.0
    lo, hi = np.quantile(vals, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def bootstrap_ci(
    scores: np.ndarray,
    stat: Statistic | str = "mean",
    reps: int = DEFAULT_REPS,
    seed: int = 0,
    size: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap CI of a statistic, reproducible for a given ``seed``.

    Stratified statistics use rliable's ``get_interval_estimates`` (seeds resampled within
    each task) under :func:`seeded_global_numpy`; whole-seed statistics use
    :func:`seed_bootstrap_ci`. With a single seed the interval collapses to the point value.
    """
    arr, stat = as_matrix(scores), _resolve(stat)
    if reps < 1:
        raise ValueError(f"bootstrap reps must be >= 1, got {reps}")
    if stat.bootstrap == "seeds":
        return seed_bootstrap_ci(arr, stat.fn, reps=reps, seed=seed, size=size)
    # imported here: rliable.library (arch, statsmodels) would be most of this module's import time
    from rliable import library as rly

    with seeded_global_numpy(seed):
        _, intervals = rly.get_interval_estimates(
            {"x": arr}, lambda x: np.array([stat(x)]), reps=reps, confidence_interval_size=size
        )
    lo, hi = intervals["x"][:, 0]
    return float(lo), float(hi)


def gain_ci(
    x: np.ndarray,
    y: np.ndarray,
    stat: Statistic | str = "mean",
    reps: int = DEFAULT_REPS,
    seed: int = 0,
    size: float = 0.95,
) -> tuple[float, float, float]:
    """``stat(x) - stat(y)`` of two independent run groups (each (seeds, tasks), the same
    tasks) and its percentile-bootstrap CI: each resample draws whole seeds of ``x`` and of
    ``y`` independently. Returns ``(gain, low, high)``; one seed per side collapses the
    interval to the point value."""
    x, y, stat = as_matrix(x, "x"), as_matrix(y, "y"), _resolve(stat)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"gain_ci: x has {x.shape[1]} tasks, y {y.shape[1]}")
    if reps < 1:
        raise ValueError(f"bootstrap reps must be >= 1, got {reps}")
    rng = np.random.default_rng(seed)
    ix = rng.integers(0, x.shape[0], size=(reps, x.shape[0]))
    iy = rng.integers(0, y.shape[0], size=(reps, y.shape[0]))
    vals = np.array([stat(x[a]) - stat(y[b]) for a, b in zip(ix, iy)])
    alpha = (1.0 - size) / 2.0
    lo, hi = np.quantile(vals, [alpha, 1.0 - alpha])
    return float(stat(x) - stat(y)), float(lo), float(hi)


def curve_band(
    history: np.ndarray,
    aggregator: str = "mean",
    reps: int = DEFAULT_REPS,
    seed: int = 0,
    size: float = 0.95,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point curve and stratified-bootstrap CI band of an aggregate over evaluations.

    ``history`` is (seeds, tasks, evals); returns ``(curve, lower, upper)``, each (evals,).
    The bootstrap is rliable's stratified one (seeds resampled independently per task). For
    the mean it is computed in closed form per resample: a resample of task ``m`` is a
    vector of seed counts, and the resampled mean curve is ``counts @ history`` — the same
    pointwise distribution as ``rliable.library.get_interval_estimates`` on the history
    (tested), at a fraction of the cost; IQM and median curves call rliable directly.
    """
    h = np.asarray(history, dtype=float)
    curve = aggregate_curve(h, aggregator)
    if aggregator != "mean":
        from rliable import library as rly  # here, as in bootstrap_ci

        with seeded_global_numpy(seed):
            _, intervals = rly.get_interval_estimates(
                {"x": h}, lambda x: aggregate_curve(x, aggregator), reps=reps, confidence_interval_size=size
            )
        return curve, intervals["x"][0], intervals["x"][1]
    n_seeds, n_tasks, _ = h.shape
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_seeds, size=(reps, n_tasks, n_seeds))  # seed drawn per (rep, task, slot)
    flat = (np.arange(reps * n_tasks)[:, None] * n_seeds + draws.reshape(reps * n_tasks, n_seeds)).ravel()
    counts = np.bincount(flat, minlength=reps * n_tasks * n_seeds).reshape(reps, n_tasks, n_seeds)
    boot = np.einsum("rmn,nmt->rt", counts, h, optimize=True) / (n_seeds * n_tasks)
    alpha = (1.0 - size) / 2.0
    lower, upper = np.quantile(boot, [alpha, 1.0 - alpha], axis=0)
    return curve, lower, upper
