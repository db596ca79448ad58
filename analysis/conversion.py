"""Converting reported numbers between protocols, only where the maths makes it exact.

Dispersions (all of a per-seed statistic over ``n`` seeds; ``std`` is the sample standard
deviation, ddof = 1)::

    sem  = std / sqrt(n)
    ci95 = t_{0.975, n-1} * sem        (half-width of the two-sided t interval on the mean)

These are identities between summaries of the same n per-seed values, so converting the
*kind* of a published spread is exact given n (``std`` over one seed is undefined, so n >= 2).
A ``ci95`` obtained by bootstrap (rliable, ``analysis.protocols.report``) is a different
estimator of the same interval; converting to or from ``ci95`` here assumes the t interval,
and :func:`convert_published` says so in the result's ``caveats``.

What cannot be converted: the statistic itself. A mean cannot become an IQM or a median; a
``final`` number cannot become ``max_over_time`` / ``curve_peak`` / ``seed_peak`` / ``last_n``
(nor the reverse); numbers from different evaluation episodes or reward versions are
different experiments. :func:`convert_published` refuses those (:class:`ConversionRefused`)
and says how to get a comparable number instead: re-report *our* runs under the published
protocol with ``python -m analysis convert ours``.

A row whose protocol is ``unstated`` (the source does not say when in training, or how, its
number was read) cannot be converted to any protocol: :func:`convert_published` refuses it
whatever the target, and the reverse command it offers leaves the protocol to the reader
(``--protocol PROTOCOL``: the one you believe the source used, stated as an assumption).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scipy import stats

from analysis.baselines import UNSTATED_DISPERSION, UNSTATED_PROTOCOL
from analysis.protocol_spec import DISPERSIONS, Protocol

CI_LEVEL = 0.95
KINDS_WITH_VALUE = ("std", "sem", "ci95")


class ConversionRefused(ValueError):
    """The conversion is not exact (a different statistic or experiment); the message says why
    and what to run instead."""


def _check_n(n: Any, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Real) or not math.isfinite(n) or not float(n).is_integer():
        raise ValueError(f"{what}: the number of seeds n must be an integer, got {n!r}")
    n = int(n)
    if n < 2:
        raise ValueError(f"{what}: needs n >= 2 seeds, got n={n} (a standard deviation over one seed is "
                         "undefined, so no spread can be converted)")
    return n


def _check_spread(x: Any, what: str) -> float:
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise ValueError(f"{what} must be a number, got {x!r}")
    x = float(x)
    if not math.isfinite(x) or x < 0:
        raise ValueError(f"{what} must be a finite number >= 0, got {x!r}")
    return x


def t_critical(n: int) -> float:
    """t_{0.975, n-1}: the two-sided 95% Student-t quantile for ``n`` seeds."""
    n = _check_n(n, "t_critical")
    return float(stats.t.ppf(0.5 + CI_LEVEL / 2, n - 1))


def std_to_sem(std: float, n: int) -> float:
    """Standard error of the mean from the sample std over ``n`` seeds: std / sqrt(n)."""
    return _check_spread(std, "std") / math.sqrt(_check_n(n, "std_to_sem"))


def sem_to_std(sem: float, n: int) -> float:
    """Sample std over ``n`` seeds from the standard error of the mean: sem * sqrt(n)."""
    return _check_spread(sem, "sem") * math.sqrt(_check_n(n, "sem_to_std"))


def sem_to_ci95_halfwidth(sem: float, n: int) -> float:
    """Half-width of the 95% t interval: t_{0.975, n-1} * sem."""
    return _check_spread(sem, "sem") * t_critical(_check_n(n, "sem_to_ci95_halfwidth"))


def ci95_halfwidth_to_sem(halfwidth: float, n: int) -> float:
    """Standard error of the mean from a 95% t-interval half-width: halfwidth / t_{0.975, n-1}."""
    return _check_spread(halfwidth, "ci95 half-width") / t_critical(_check_n(n, "ci95_halfwidth_to_sem"))


_TO_SEM = {"std": std_to_sem, "sem": lambda x, n: _check_spread(x, "sem"), "ci95": ci95_halfwidth_to_sem}
_FROM_SEM = {"std": sem_to_std, "sem": lambda x, n: _check_spread(x, "sem"), "ci95": sem_to_ci95_halfwidth}


def convert_dispersion(value: float, from_kind: str, to_kind: str, n: int | None) -> float | None:
    """A spread of kind ``from_kind`` (std | sem | ci95) as ``to_kind`` (std | sem | ci95 | none).

    ``to_kind`` ``none`` gives None; the same kind gives ``value`` unchanged (n not needed);
    otherwise n >= 2 seeds is required. ``from_kind`` ``none`` is an error: there is no spread
    to convert.
    """
    for kind, role in ((from_kind, "from_kind"), (to_kind, "to_kind")):
        if kind not in DISPERSIONS:
            raise ValueError(f"unknown dispersion kind {kind!r} ({role}); expected one of {', '.join(DISPERSIONS)}")
    if from_kind == "none":
        raise ValueError("from_kind 'none': there is no spread to convert")
    value = _check_spread(value, from_kind)
    if to_kind == "none":
        return None
    if to_kind == from_kind:
        return value
    if n is None:
        raise ValueError(f"converting {from_kind} to {to_kind} needs the number of seeds n")
    what = f"{from_kind} -> {to_kind}"
    n = _check_n(n, what)
    return _FROM_SEM[to_kind](_TO_SEM[from_kind](value, n), n)


def _check_finite(x: Any, what: str) -> float:
    if isinstance(x, bool) or not isinstance(x, numbers.Real) or not math.isfinite(float(x)):
        raise ValueError(f"{what} must be a finite number, got {x!r}")
    return float(x)


def percent_to_fraction(x: float) -> float:
    """Percent (0..100) to fraction (0..1): x / 100. Works for values and spreads alike."""
    return _check_finite(x, "percent") / 100.0


def fraction_to_percent(x: float) -> float:
    """Fraction (0..1) to percent (0..100): x * 100. Works for values and spreads alike."""
    return _check_finite(x, "fraction") * 100.0


# ------------------------------------------------------------------ published rows
@dataclass(frozen=True)
class ConvertedValue:
    """A published number re-expressed under ``protocol`` (exactly; see ``steps``).

    ``value`` and ``dispersion`` are in ``unit`` (``percent`` or ``fraction``); ``dispersion``
    is None when the protocol's dispersion is ``none``. ``steps`` says what was done, in order;
    ``caveats`` lists assumptions a reader should know (e.g. a t interval).
    """

    value: float
    dispersion: float | None
    protocol: Protocol
    unit: str
    n_seeds: int | None
    source_protocol: Protocol
    steps: tuple[str, ...] = ()
    caveats: tuple[str, ...] = ()
    row: dict[str, Any] = field(default_factory=dict, compare=False)

    def text(self, digits: int = 2) -> str:
        """``72.00 +- 1.20 (final/iqm/std, percent)``."""
        spread = "" if self.dispersion is None else f" +- {self.dispersion:.{digits}f}"
        return f"{self.value:.{digits}f}{spread} ({self.protocol}, {self.unit})"


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or (isinstance(x, str) and not x.strip())


def _get(row: Mapping[str, Any] | Any, key: str) -> Any:
    try:
        value = row[key]
    except (KeyError, IndexError):
        return None
    return None if _missing(value) else value


def protocol_unstated(row: Mapping[str, Any] | Any) -> bool:
    """Whether the row's protocol is ``unstated`` (its source does not say when in training, or
    how, the number was read)."""
    return str(_get(row, "protocol") or "").strip().lower() == UNSTATED_PROTOCOL


def row_protocol(row: Mapping[str, Any] | Any) -> Protocol | None:
    """The :class:`Protocol` a baselines row reports (protocol, aggregator, dispersion kind,
    eval_episodes and reward_version as stated; empty kind counts as ``none``), or None when its
    protocol is ``unstated``. Any other value that is not a protocol raises ProtocolSpecError."""
    if protocol_unstated(row):
        return None
    kind = _get(row, "dispersion_kind") or "none"
    if kind == UNSTATED_DISPERSION:
        kind = "none"  # an error bar of unknown kind is no dispersion we can report (convert_published says so)
    episodes = _get(row, "eval_episodes")
    return Protocol(name=str(_get(row, "protocol")), aggregator=str(_get(row, "aggregator")), dispersion=str(kind),
                    eval_episodes=None if episodes is None else int(episodes),
                    reward_version=_get(row, "reward_version"))


def value_caveats(row: Mapping[str, Any] | Any) -> tuple[str, ...]:
    """What a reader must know about how the row's value was obtained (its ``value_kind``):
    a read-off or derived value's tolerance, or that it was not verified against its source."""
    kind = _get(row, "value_kind")
    tol = _get(row, "tolerance")
    tol_text = "" if tol is None else f" +-{float(tol):g} percent points"
    if kind == "read_off":
        return (f"the published value was read off a figure ({tol_text.strip() or 'tolerance not stated'}); "
                "it is not an exact number",)
    if kind == "derived":
        return (f"the published value is derived from printed numbers ({tol_text.strip() or 'tolerance not stated'} "
                "from their rounding; see the row's notes)",)
    if kind == "unverified":
        return ("the published value was transcribed from a secondary source and not verified against the cited one",)
    return ()


def _row_label(row: Mapping[str, Any] | Any) -> str:
    line = getattr(row, "name", None)
    where = f" (baselines line {int(line)})" if isinstance(line, numbers.Integral) and not isinstance(line, bool) else ""
    return (f"{_get(row, 'method')} {_get(row, 'benchmark')} {_get(row, 'reward_version')}{where}")


UNSTATED_REVERSE_NOTE = ("  (PROTOCOL: the one you believe the source used, written NAME/AGGREGATOR/DISPERSION "
                         "as in --help; the source does not state it, so say that it is your assumption)")


def reverse_command(row: Mapping[str, Any] | Any, target: Protocol | None = None) -> str:
    """The command that re-reports our runs under the row's protocol (the comparable direction).

    For a row whose protocol is ``unstated`` the protocol is left as ``PROTOCOL``, to be
    filled in with the one the reader believes the source used."""
    src = row_protocol(row)
    if src is None:
        cmd = "python -m analysis convert ours --protocol PROTOCOL"
    else:
        if target is not None and src.dispersion == "none":
            src = Protocol(src.name, src.aggregator, target.dispersion, src.last_n, src.eval_episodes,
                           src.reward_version)
        cmd = f"python -m analysis convert ours --protocol {src}"
    if _get(row, "benchmark"):
        cmd += f" --benchmark {_get(row, 'benchmark')}"
    if _get(row, "reward_version"):
        cmd += f" --reward-version {_get(row, 'reward_version')}"
    cmd += " --runs RUN_DIR [RUN_DIR ...]"
    if src is None:
        cmd += UNSTATED_REVERSE_NOTE
    elif src.name == "last_n" and src.last_n is None:
        cmd += "  (write last_K with the source's K: it does not state n)"
    return cmd


_AGG_WORDS = {"mean": "a mean", "iqm": "an IQM", "median": "a median"}


def _agg_words(aggregator: str) -> str:
    return _AGG_WORDS.get(aggregator, f"a {aggregator} statistic")


def _refuse(row: Mapping[str, Any] | Any, target: Protocol, why: str) -> ConversionRefused:
    src = row_protocol(row)
    return ConversionRefused(
        f"cannot convert {_row_label(row)} from {'an unstated protocol' if src is None else src} to {target}: "
        f"{why}. Instead, re-report our runs under the external protocol: {reverse_command(row, target)}")


def _refuse_unstated(row: Mapping[str, Any] | Any, target: Protocol) -> ConversionRefused:
    return ConversionRefused(
        f"cannot convert {_row_label(row)} to {target}: the source does not state when in training (or how) "
        f"its number was read (protocol '{UNSTATED_PROTOCOL}' in the baselines file), so it cannot be converted "
        "to any protocol and is never compared with our numbers. Instead, re-report our runs under the protocol "
        f"you believe the source used: {reverse_command(row, target)}")


def convert_published(row: Mapping[str, Any] | Any, target: Protocol | str, *, unit: str = "percent") -> ConvertedValue:
    """A published baselines row (a row of :func:`analysis.baselines.load_baselines`, or any
    mapping with its columns) re-expressed under ``target``, exactly, or :class:`ConversionRefused`.

    Allowed: the same protocol name, aggregator, eval episodes and reward version (those the
    target leaves None are not constrained), with the dispersion converted between std / sem /
    ci95 given the row's n_seeds (or dropped: target ``none``), and percent -> ``unit``
    (``percent`` or ``fraction``). Everything else is a different statistic or experiment and is
    refused, with the reverse command in the message. A row whose protocol is ``unstated`` is
    refused whatever the target (its reverse command leaves ``PROTOCOL`` to the reader).
    """
    if isinstance(target, str):
        target = Protocol.parse(target)
    if unit not in ("percent", "fraction"):
        raise ValueError(f"unit must be 'percent' or 'fraction', got {unit!r}")
    src = row_protocol(row)
    if src is None:
        raise _refuse_unstated(row, target)
    value = _get(row, "value")
    if value is None:
        raise _refuse(row, target, "the row has no value")
    if target.reward_version is not None and src.reward_version != target.reward_version:
        raise _refuse(row, target, f"it was measured with reward version {src.reward_version}, the target is "
                                   f"{target.reward_version}; different reward functions are different experiments "
                                   "and no formula maps one onto the other")
    if target.eval_episodes is not None and src.eval_episodes != target.eval_episodes:
        stated = "does not state its evaluation episodes" if src.eval_episodes is None else \
            f"used {src.eval_episodes} evaluation episodes per task"
        raise _refuse(row, target, f"the source {stated}, the target needs {target.eval_episodes}; different "
                                   "evaluation episodes are different experiments")
    if src.name != target.name:
        raise _refuse(row, target, f"a {src.name} number cannot become a {target.name} number: they are read "
                                   "at different points of the training history, which the source does not give")
    if src.name == "last_n" and target.last_n is not None and src.last_n != target.last_n:
        raise _refuse(row, target, f"the source averages the last {src.last_n or 'n (unstated)'} evaluations, the "
                                   f"target the last {target.last_n}")
    if src.aggregator != target.aggregator:
        raise _refuse(row, target, f"{_agg_words(src.aggregator)} cannot become {_agg_words(target.aggregator)}: the "
                                   "statistic depends on the per-seed, per-task scores, which the source does not give")
    steps: list[str] = []
    caveats: list[str] = list(value_caveats(row))
    n_raw = _get(row, "n_seeds")
    n = None if n_raw is None else int(n_raw)
    disp = _get(row, "dispersion")
    unstated_kind = _get(row, "dispersion_kind") == UNSTATED_DISPERSION and disp is not None
    if target.dispersion == "none":
        new_disp = None
        if src.dispersion != "none":
            steps.append(f"dropped the {src.dispersion} (target reports no dispersion)")
        elif unstated_kind:
            steps.append(f"dropped the error bar +-{float(disp):g} of unstated kind (target reports no dispersion)")
    elif unstated_kind:
        raise _refuse(row, target, f"the source's error bar (+-{float(disp):g}) does not state its kind (std, sem or "
                                   f"a confidence interval), so no {target.dispersion} can be derived from it")
    elif src.dispersion == "none" or disp is None:
        raise _refuse(row, target, f"the source states no dispersion, so no {target.dispersion} can be derived")
    elif src.dispersion == target.dispersion:
        new_disp = float(disp)
    else:
        if n is None:
            raise _refuse(row, target, f"converting {src.dispersion} to {target.dispersion} needs the number of "
                                       "seeds, which the source does not state")
        try:
            new_disp = convert_dispersion(float(disp), src.dispersion, target.dispersion, n)
        except ValueError as e:
            raise _refuse(row, target, str(e)) from None
        steps.append(f"{src.dispersion} {float(disp):g} -> {target.dispersion} {new_disp:.6g} with n={n} seeds")
        if "ci95" in (src.dispersion, target.dispersion):
            caveats.append(f"ci95 is the half-width of the t interval (t_0.975,{n - 1} = {t_critical(n):.6g}); "
                           "a bootstrap interval (as analysis.protocols.report computes) is a different estimator")
    value = float(value)
    if unit == "fraction":
        value = percent_to_fraction(value)
        new_disp = None if new_disp is None else percent_to_fraction(new_disp)
        steps.append("percent -> fraction (divided by 100)")
    if not steps:
        steps.append("nothing to convert: the row already reports this protocol")
    result_protocol = Protocol(target.name, target.aggregator, target.dispersion,
                               target.last_n if target.last_n is not None else src.last_n,
                               src.eval_episodes, src.reward_version)
    return ConvertedValue(value=value, dispersion=new_disp, protocol=result_protocol, unit=unit, n_seeds=n,
                          source_protocol=src, steps=tuple(steps), caveats=tuple(caveats),
                          row={k: row[k] for k in row.keys()} if hasattr(row, "keys") else {})
