"""The critic-side diagnosis over training, from ``train_metrics.csv`` (one row per PPO update).

The trainer logs, per update, statistics of the per-task gradients of the critic body
(``toppo.algo.learner``, on a random sample of each task's rollout): the spread of their norms
(max/min over tasks: "scale spread"), their pairwise cosines and the condition number of
their Gram matrix ("co-linear collapse" when it explodes), and how well the critic fits the
returns (explained variance before the update). These functions summarise one column of one
(benchmark, reward version, variant) over seeds; figures and tables draw from them.

Seeds are combined with the geometric mean for the ratio-like columns (spread, condition
number: their spread over seeds is multiplicative) and the arithmetic mean for cosines and
explained variance; bands are min..max over seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Diagnostic:
    column: str  # train_metrics.csv column
    label: str
    log: bool  # ratio-like: log axis, geometric mean over seeds


SPREAD = Diagnostic("critic_gradnorm_spread", "critic grad-norm spread (max/min over tasks)", log=True)
COS_MEAN = Diagnostic("critic_cos_mean", "mean pairwise cosine of task gradients", log=False)
COS_MIN = Diagnostic("critic_cos_min", "min pairwise cosine of task gradients", log=False)
GRAM_COND = Diagnostic("critic_gram_cond", "condition number of their Gram matrix", log=True)
EXPLAINED_VARIANCE = Diagnostic("explained_variance_before", "critic explained variance (before update)",
                                log=False)
CURVES = (SPREAD, COS_MEAN, GRAM_COND, COS_MIN)  # the figure's panels, in order
TABLE = (SPREAD, COS_MEAN, COS_MIN, GRAM_COND, EXPLAINED_VARIANCE)


def _center(values: np.ndarray, log: bool, axis: int) -> np.ndarray:
    return np.exp(np.log(values).mean(axis=axis)) if log else values.mean(axis=axis)


def seed_matrix(train: pd.DataFrame, benchmark: str, reward_version: str, variant: str,
                 d: Diagnostic) -> tuple[pd.DataFrame, pd.Series] | None:
    """(updates x seeds) of one column, only the updates every seed logged with a finite value
    (positive for log columns), and the env step of each of those updates; None without such
    updates."""
    if train is None or train.empty or d.column not in train:
        return None
    g = train[(train.benchmark == benchmark) & (train.reward_version == reward_version)
              & (train.variant == variant)]
    if g.empty:
        return None
    m = g.pivot_table(index="update", columns="seed", values=d.column, dropna=False)
    m = m.replace([np.inf, -np.inf], np.nan)
    if d.log:
        m = m.where(m > 0)
    m = m.dropna()
    if m.empty:
        return None
    return m, g.groupby("update")["step"].max().loc[m.index]


def over_training(train: pd.DataFrame, benchmark: str, reward_version: str, variant: str,
                  d: Diagnostic) -> pd.DataFrame | None:
    """Per update: ``step``, ``center`` (over seeds), ``lo``/``hi`` (min/max over seeds) and
    ``n_seeds``; None when no update has the column for every seed."""
    found = seed_matrix(train, benchmark, reward_version, variant, d)
    if found is None:
        return None
    m, steps = found
    values = m.to_numpy(dtype=float)
    return pd.DataFrame({"update": m.index.to_numpy(), "step": steps.to_numpy(),
                         "center": _center(values, d.log, axis=1), "lo": values.min(axis=1),
                         "hi": values.max(axis=1), "n_seeds": m.shape[1]})


def run_summary(train: pd.DataFrame, benchmark: str, reward_version: str, variant: str,
                d: Diagnostic) -> dict | None:
    """Each seed's median over its updates, then ``center`` over seeds with ``lo``/``hi``
    (min/max of the seed medians), ``n_seeds``, ``n_updates`` and the last ``step``."""
    found = seed_matrix(train, benchmark, reward_version, variant, d)
    if found is None:
        return None
    m, steps = found
    per_seed = np.median(m.to_numpy(dtype=float), axis=0)
    return {"center": float(_center(per_seed, d.log, axis=0)), "lo": float(per_seed.min()),
            "hi": float(per_seed.max()), "n_seeds": int(m.shape[1]), "n_updates": int(m.shape[0]),
            "step": int(steps.max())}
