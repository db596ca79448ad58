"""The run directory's lock, checkpoints written atomically, stale temp files removed, and
run provenance. The file names and the atomic writes themselves are the run directory's
format, ``toppo.specs.runfiles``."""

from __future__ import annotations

import errno
import fcntl
import importlib.metadata
import io
import os
import socket
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from toppo.specs.runfiles import LOCK_NAME, TMP_SUFFIX, with_filename, write_bytes_atomic


def remove_stale_temp_files(folder: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Delete the ``.{name}.*.tmp`` files an atomic write killed mid-way left in ``folder``.

    Call it only while no writer can be active there (the trainer holds the run lock)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    pattern = f".*{TMP_SUFFIX}"
    found = folder.rglob(pattern) if recursive else folder.glob(pattern)
    removed = []
    for p in sorted(found):
        if p.is_file() and not p.is_symlink():
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


class RunLocked(RuntimeError):
    """Another live process holds the run directory's lock; the message names it."""


class RunLock:
    """An exclusive ``flock`` on ``{run_dir}/.lock``, held while the object is open.

    The kernel releases it when the process exits however it exits (SIGKILL included), so a
    killed trainer never blocks a retry. After locking, the file holds the holder's PID, host
    and start time, which a refused second trainer reports. (On NFS, flock is emulated with
    POSIX byte-range locks, which NFSv4 servers enforce across clients.)
    """

    def __init__(self, run_dir: str | os.PathLike):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "unknown holder"
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunLocked(f"{self.run_dir} is in use by another trainer ({holder}); "
                                "it keeps its lock until it exits") from None
            raise with_filename(exc, self.path) from None
        info = (f"pid {os.getpid()} on host {socket.gethostname()}, "
                f"since {datetime.now(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}\n").encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, info, 0)
        self._fd = fd
        # A forked child (multiprocessing env workers) would share the lock and could keep it
        # after this process is killed: children drop their copy of the descriptor.
        os.register_at_fork(after_in_child=self._forget_in_child)
        return self

    def _forget_in_child(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # not LOCK_UN: that would unlock the parent's lock too
            self._fd = None

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def save_torch_atomic(path: Path, obj: Any, previous: Path | None = None) -> None:
    """Save ``obj``; with ``previous``, the file it replaces is kept there (one rotation).

    A kill between the two renames leaves ``previous`` and no ``path``; a loader falls back
    to ``previous`` (toppo.train)."""
    import torch  # only here: the lock and the provenance need none

    buf = io.BytesIO()
    torch.save(obj, buf)
    write_bytes_atomic(path, buf.getvalue(), keep_previous=previous)


def git_commit(here: Path | None = None) -> str:
    """Commit of the checkout this package runs from (or ``here``'s), '+dirty' when its
    tracked files differ from it outside ``results/`` (the record: other cells' logs, written
    while this one trains, say nothing of the code that ran)."""
    here = here or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                                text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                ":(top)", ":(top,exclude)results"], cwd=here,
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    out = {}
    for name in ("torch", "numpy", "gymnasium", "metaworld", "mujoco", "pandas", *extra):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "missing"
    return out
