"""The numerics modes: their names, which one a process asks for, and which one a record
was computed in (docs/reproducibility.md). Putting a mode in place before torch loads, and
describing the machine, is ``toppo.harness.numerics``.

* ``portable``: every CPU-kernel knob fixed before torch loads, so a run gives the same bits
  on x86-64 CPUs with AVX2 and FMA; the recorded studies run it (their workflow configs say
  ``numerics: portable``).
* ``native`` (the default): torch's own choice for this CPU.

Which mode a process asks for is decided in one place, :func:`mode`: the trainer's
``--numerics`` flag, else the environment variable ``TOPPO_NUMERICS``, else ``native``. The
workflow passes its config's ``numerics`` key to every training job as the flag, and
``verify`` passes the record's own mode (:func:`recorded_mode`).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

MODE_VAR = "TOPPO_NUMERICS"
FLAG = "--numerics"  # the trainer's flag; it wins over MODE_VAR
MODES = ("portable", "native")
DEFAULT_MODE = "native"  # neither the flag nor MODE_VAR given: torch's own kernels


class NumericsError(RuntimeError):
    """The numerics mode cannot be used or is not in effect; the message says why."""


def mode(flag: str | None = None) -> str:
    """The mode this process asks for: ``flag`` (the value of ``--numerics``) when given, else
    ``TOPPO_NUMERICS`` when set and not empty, else ``native`` (:data:`DEFAULT_MODE`)."""
    if flag is not None:
        where, value = f"{FLAG} {flag!r}", flag
    else:
        raw = os.environ.get(MODE_VAR, "")
        where, value = f"environment variable {MODE_VAR}={raw!r}", raw.strip().lower() or DEFAULT_MODE
    if value not in MODES:
        raise NumericsError(f"{where}: expected one of {', '.join(MODES)}")
    return value


def requested(argv: list[str]) -> str | None:
    """The value of ``--numerics`` in a command line (``--numerics M`` or ``--numerics=M``,
    the last one given), or None; everything else, a flag without its value included, is left
    to the caller's own parser, which declares ``--numerics`` too. For a program that must
    apply the mode before the imports its parser needs load torch."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument(FLAG, nargs="?")
    return pre.parse_known_args(argv)[0].numerics


def recorded_mode(machine: Any) -> str:
    """The mode a run was computed in, from its manifest's ``machine`` (``toppo.harness.numerics.describe``):
    ``portable`` or ``native``; a manifest without it was trained before the mode existed,
    with native kernels, and one that says ``native (portable asked for, ...)`` ran native.
    Any other value is a NumericsError naming it."""
    recorded = machine.get("numerics") if isinstance(machine, dict) else None
    if recorded is None:
        return "native"
    if recorded in MODES:
        return recorded
    if isinstance(recorded, str) and recorded.startswith("native ("):
        return "native"
    raise NumericsError(f"machine.numerics {recorded!r}: not a mode ({', '.join(MODES)})")
