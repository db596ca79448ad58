"""Process lifetime, the one copy of it (Linux /proc and prctl; no-ops elsewhere).

``die_with_parent`` is called first thing in every process the harness starts (env workers,
evaluation workers, and the trainer started by a workflow job), so none outlives the process
that started it when that one is killed.

``ProcessGroup`` and ``ancestors_to_watch``/``gone`` are the workflow job's side
(workflow/scripts/train_cell.py): the trainer runs in its own process group, stopped SIGTERM
first, SIGKILL after a grace period, when the job is signalled, exits, or the Snakemake
process that started it is gone.

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
import subprocess
import sys
import threading
import time
from pathlib import Path

PROC = Path("/proc")
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent_pid: int, sig: int = signal.SIGTERM) -> bool:
    """Linux: have the kernel send ``sig`` to this process when its parent dies (even by
    SIGKILL). Call it first in a child (or as a ``preexec_fn``); False when the parent
    ``parent_pid`` died before the request took effect (it is not signalled for then: the
    caller ends itself)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, int(sig))
    return os.getppid() == parent_pid


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


def stat_fields(stat: Path) -> list[str] | None:
    """The fields after the command name of a /proc/<pid>/stat file (state, ppid, ...)."""
    try:
        text = stat.read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def _live(fields: list[str] | None) -> bool:
    return fields is not None and fields[0] not in ("Z", "X")  # not a zombie, not dead


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, start time) of a live process, or None when it is gone or a zombie."""
    fields = stat_fields(PROC / str(pid) / "stat")
    return (int(fields[1]), fields[19]) if _live(fields) else None


def _is_snakemake(pid: int) -> bool:
    try:
        argv = (PROC / str(pid) / "cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return False
    names = [Path(a).name for a in argv[:3]]
    return "snakemake" in names[:2] or argv[1:3] == ["-m", "snakemake"]


def ancestors_to_watch(max_depth: int = 8) -> list[tuple[int, str]]:
    """(pid, start time) of this process's ancestors up to the nearest Snakemake process
    (a job's shell, then Snakemake itself); just the parent when none is found."""
    chain, pid = [], os.getppid()
    for _ in range(max_depth):
        stat = _stat(pid)
        if stat is None or pid <= 1:
            break
        chain.append((pid, stat[1]))
        if _is_snakemake(pid):
            return chain
        pid = stat[0]
    return chain[:1]


def gone(watch: list[tuple[int, str]]) -> bool:
    """Whether a watched ancestor has exited (or its pid was reused)."""
    for pid, started in watch:
        stat = _stat(pid)
        if stat is None or stat[1] != started:
            return True
    return False


class ProcessGroup:
    """A child started in its own process group (``process_group=0``), stopped once: SIGTERM
    to the group first, SIGKILL after ``grace_s`` (its children too, whether it is gone or not)."""

    def __init__(self, proc: subprocess.Popen, grace_s: float):
        self.proc, self.grace_s = proc, grace_s
        self.stopping = threading.Event()
        self.reason: str | None = None

    def stop(self, reason: str) -> None:
        """Safe in a signal handler: no output here (``reason`` is kept for the caller)."""
        if self.stopping.is_set():
            return
        self.reason = reason
        self.stopping.set()
        self._signal(signal.SIGTERM)
        threading.Thread(target=self._kill_later, daemon=True).start()

    def _kill_later(self) -> None:
        deadline = time.monotonic() + self.grace_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def watch_ancestors(self, watch: list[tuple[int, str]]) -> None:
        """Stop the group when a watched ancestor is gone (run in a thread)."""
        while not self.stopping.is_set() and self.proc.poll() is None:
            if gone(watch):
                self.stop(f"the Snakemake process ({watch[-1][0]}) is gone")
                return
            time.sleep(1.0)


def children(pid: int) -> list[int]:
    """Pids of the live direct children of ``pid``."""
    out = []
    for stat in PROC.glob("[0-9]*/stat"):
        fields = stat_fields(stat)
        if _live(fields) and int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is neither a zombie nor dead."""
    return _live(stat_fields(PROC / str(pid) / "stat"))


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
