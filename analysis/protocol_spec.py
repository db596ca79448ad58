"""What a reported number *is*: the :class:`Protocol` record shared by our analysis and the
published baselines.

A protocol names how a (seeds, tasks, evaluations) history became one number:

``name``            ``final`` | ``max_over_time`` | ``curve_peak`` | ``seed_peak`` | ``last_n``
``aggregator``      ``mean`` | ``iqm`` | ``median`` (the statistic over seeds and tasks), or
                    ``worst-K``: the mean over each seed's K lowest task scores, then over seeds
``dispersion``      ``std`` | ``sem`` | ``ci95`` | ``none`` (the spread reported with it)
``last_n``          the n of ``last_n`` (None: not stated)
``eval_episodes``   evaluation episodes per task (None: not constrained / not stated)
``reward_version``  Meta-World reward version ``v1`` | ``v2`` (None: not constrained)

Text form (what :meth:`Protocol.parse` reads and ``str()`` writes)::

    final/iqm/std
    last_5/mean/sem                       # last_n with n = 5 ("last_n/mean/sem": n unstated)
    final/iqm/std/episodes=50/reward=v1   # optional key=value parts, in any order
    final/worst-10/ci95                   # the per-seed worst-10 statistic

``analysis.protocols`` computes protocols from our logs; ``analysis.conversion`` converts
published numbers between protocols (only where that is exact).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from toppo.specs.registry import REWARD_VERSIONS

PROTOCOL_NAMES: tuple[str, ...] = ("final", "max_over_time", "curve_peak", "seed_peak", "last_n")
AGGREGATORS: tuple[str, ...] = ("mean", "iqm", "median")
# worst-K (K >= 1): mean over each seed's K lowest task scores, averaged over seeds
# (analysis.metrics.worst_k); accepted wherever an aggregator is, besides AGGREGATORS
WORST_K = re.compile(r"^worst-([1-9]\d*)$")
DISPERSIONS: tuple[str, ...] = ("std", "sem", "ci95", "none")

# key=value parts of the text form; the first key is what str() writes
_KEYS = {"episodes": "eval_episodes", "eval_episodes": "eval_episodes",
         "reward": "reward_version", "reward_version": "reward_version", "n": "last_n"}
_LAST_N = re.compile(r"^last_(\d+)$")
FORMAT_HELP = ("NAME/AGGREGATOR/DISPERSION[/episodes=N][/reward=v1|v2], NAME one of "
               f"{', '.join(PROTOCOL_NAMES)} (or last_K for last_n with n=K), AGGREGATOR one of "
               f"{', '.join(AGGREGATORS)} or worst-K (mean of each seed's K worst tasks), DISPERSION one of "
               f"{', '.join(DISPERSIONS)}; e.g. final/iqm/std, last_5/mean/sem, final/worst-10/ci95, "
               "final/mean/none/episodes=50/reward=v2")


class ProtocolSpecError(ValueError):
    """A protocol that is not one of the known ones, or text that does not parse as one."""


def _positive_int(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            as_float = float(value)
        except (TypeError, ValueError):
            raise ProtocolSpecError(f"protocol {field} must be a positive integer, got {value!r}") from None
        if not as_float.is_integer():
            raise ProtocolSpecError(f"protocol {field} must be a positive integer, got {value!r}")
        value = int(as_float)
    if value < 1:
        raise ProtocolSpecError(f"protocol {field} must be a positive integer, got {value!r}")
    return int(value)


def worst_k_of(aggregator: Any) -> int | None:
    """K of a ``worst-K`` aggregator, or None for any other value."""
    m = WORST_K.match(aggregator) if isinstance(aggregator, str) else None
    return None if m is None else int(m.group(1))


def is_aggregator(value: Any) -> bool:
    """Whether ``value`` is an aggregator: one of :data:`AGGREGATORS` or ``worst-K``."""
    return value in AGGREGATORS or worst_k_of(value) is not None


def _choice(value: Any, field: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ProtocolSpecError(f"unknown protocol {field} {value!r}; expected one of {', '.join(allowed)}")
    return value


@dataclass(frozen=True)
class Protocol:
    """How one reported number was computed (see the module docstring). Frozen and hashable."""

    name: str
    aggregator: str
    dispersion: str
    last_n: int | None = None
    eval_episodes: int | None = None
    reward_version: str | None = None

    def __post_init__(self) -> None:
        _choice(self.name, "name", PROTOCOL_NAMES)
        if not is_aggregator(self.aggregator):
            raise ProtocolSpecError(f"unknown protocol aggregator {self.aggregator!r}; expected one of "
                                    f"{', '.join(AGGREGATORS)} or worst-K (K >= 1)")
        _choice(self.dispersion, "dispersion", DISPERSIONS)
        object.__setattr__(self, "last_n", _positive_int(self.last_n, "last_n"))
        object.__setattr__(self, "eval_episodes", _positive_int(self.eval_episodes, "eval_episodes"))
        if self.last_n is not None and self.name != "last_n":
            raise ProtocolSpecError(f"last_n={self.last_n} only applies to protocol last_n, not {self.name!r}")
        if self.reward_version is not None:
            _choice(self.reward_version, "reward_version", REWARD_VERSIONS)

    @classmethod
    def parse(cls, text: str) -> Protocol:
        """Read the text form (``final/iqm/std``, ``last_5/mean/sem``, ``.../episodes=50/reward=v1``)."""
        if not isinstance(text, str):
            raise ProtocolSpecError(f"a protocol is text like 'final/iqm/std', got {text!r}")
        parts = [p.strip() for p in text.strip().split("/")]
        if len(parts) < 3 or not all(parts):
            raise ProtocolSpecError(f"cannot parse protocol {text!r}: expected {FORMAT_HELP}")
        name, aggregator, dispersion = (p.lower() for p in parts[:3])
        fields: dict[str, Any] = {}
        if (m := _LAST_N.match(name)) is not None:
            name, fields["last_n"] = "last_n", int(m.group(1))
        for extra in parts[3:]:
            key, sep, value = extra.partition("=")
            key = key.strip().lower()
            if not sep or key not in _KEYS or not value.strip():
                raise ProtocolSpecError(f"cannot parse {extra!r} in protocol {text!r}: expected "
                                        "episodes=N or reward=v1|v2")
            field = _KEYS[key]
            if field in fields:
                raise ProtocolSpecError(f"protocol {text!r} sets {field} twice")
            fields[field] = value.strip().lower() if field == "reward_version" else value.strip()
        try:
            return cls(name=name, aggregator=aggregator, dispersion=dispersion, **fields)
        except ProtocolSpecError as e:
            raise ProtocolSpecError(f"cannot parse protocol {text!r}: {e}") from None

    def __str__(self) -> str:
        name = f"last_{self.last_n}" if self.name == "last_n" and self.last_n is not None else self.name
        text = f"{name}/{self.aggregator}/{self.dispersion}"
        if self.eval_episodes is not None:
            text += f"/episodes={self.eval_episodes}"
        if self.reward_version is not None:
            text += f"/reward={self.reward_version}"
        return text
