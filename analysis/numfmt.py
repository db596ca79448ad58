"""Number formats shared by captions, tables and ``python -m analysis status`` (light: no
pandas, so the status command starts fast)."""

from __future__ import annotations

import math
import numbers
from typing import Any


def is_missing(x: Any) -> bool:
    """No number: None, or a NaN (a float, a numpy float, or any other real)."""
    return x is None or (isinstance(x, numbers.Real) and math.isnan(x))


def fmt_count(n: float | None) -> str:
    """Env steps or parameters compactly: 100000000 -> 100M, 1500000 -> 1.5M, 420000 -> 420K."""
    if n is None or math.isnan(float(n)):
        return "--"
    n = float(f"{float(n):.3g}")  # 3 significant digits first, so 999999 becomes 1M, not 1e+03K
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            return f"{n / div:.3g}{suffix}"
    return f"{n:.0f}"


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``1 cell``, ``2 cells``, ``0 cells``: the count and the noun, singular only for 1."""
    return f"{n:,} {noun if n == 1 else nouns or noun + 's'}"
