"""Process housekeeping for the workflow (Linux /proc; no-ops elsewhere).

``stop_children_on_signals`` is installed by workflow/rules/common.smk in the Snakemake
process: Ctrl-C in a terminal reaches every job (one process group), but `kill -INT` or
SIGTERM sent to Snakemake alone would leave it waiting for its running jobs. With it,
Snakemake first sends SIGTERM to its own child processes (the jobs' shells); a training job's
script (workflow/scripts/train_cell.py) sees its shell go and stops its trainer.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

PROC = Path("/proc")


def children(pid: int) -> list[int]:
    """Pids of the live direct children of ``pid``."""
    out = []
    for stat in PROC.glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()  # state, ppid, ...
        if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            out.append(int(stat.parent.name))
    return out


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
