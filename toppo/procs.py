"""Process housekeeping (Linux /proc and prctl; no-ops elsewhere).

``die_with_parent`` is called first thing in every worker process the trainer starts (env
workers, evaluation workers), so none outlives a trainer that is killed.

``stop_children_on_signals`` is installed by workflow/rules/common.smk in the Snakemake
process: Ctrl-C in a terminal reaches every job (one process group), but `kill -INT` or
SIGTERM sent to Snakemake alone would leave it waiting for its running jobs. With it,
Snakemake first sends SIGTERM to its own child processes (the jobs' shells); a training job's
script (workflow/scripts/train_cell.py) sees its shell go and stops its trainer.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
from pathlib import Path

PROC = Path("/proc")
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Linux: have the kernel send ``sig`` to this process when its parent dies (even by
    SIGKILL). Call it first in a child, then check ``os.getppid()`` against the parent's pid:
    a parent that died before the call is not signalled for."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, int(sig))


def exit_description(code: int | None) -> str:
    """How a ``multiprocessing`` child ended, from its ``exitcode``, in words."""
    if code is None:
        return "stopped answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with code {code}"


def _stat_fields(stat: Path) -> list[str] | None:
    """The fields after the command name of a /proc/<pid>/stat file (state, ppid, ...)."""
    try:
        text = stat.read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def _live(fields: list[str] | None) -> bool:
    return fields is not None and fields[0] not in ("Z", "X")  # not a zombie, not dead


def children(pid: int) -> list[int]:
    """Pids of the live direct children of ``pid``."""
    out = []
    for stat in PROC.glob("[0-9]*/stat"):
        fields = _stat_fields(stat)
        if _live(fields) and int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is neither a zombie nor dead."""
    return _live(_stat_fields(PROC / str(pid) / "stat"))


def terminate_children() -> None:
    """SIGTERM every live child of this process (found in /proc: one being started too)."""
    for child in children(os.getpid()):
        try:
            os.kill(child, signal.SIGTERM)
        except OSError:
            pass


def _stop_children_then(previous):
    def handler(signum, frame):
        terminate_children()
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:  # SIG_DFL: what the signal would have done
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    return handler


def stop_children_on_signals(signals=(signal.SIGINT, signal.SIGTERM)) -> bool:
    """Chain a handler that SIGTERMs this process's children before the previous handler
    runs; False (nothing installed) off Linux or outside the main thread."""
    if not (PROC / "self" / "stat").exists() or threading.current_thread() is not threading.main_thread():
        return False
    for sig in signals:
        signal.signal(sig, _stop_children_then(signal.getsignal(sig)))
    return True


def exit_quietly_on_sigterm(prog: str) -> None:
    """SIGTERM ends this process at once, as the default action would, but with one line on
    stderr and its child processes (eval and env workers) stopped first, so none is left to
    print a traceback, e.g. a worker still reading its start-up data from this process
    (checkpoints and logs are written atomically, so stopping anywhere is safe)."""

    def handler(signum, frame):
        terminate_children()
        os.write(2, f"{prog}: stopped by {signal.Signals(signum).name} (pid {os.getpid()})\n".encode())
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
