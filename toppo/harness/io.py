"""Atomic file output (temp file in the same folder + os.replace), the run-directory lock,
and run provenance.

Torch is imported only where a checkpoint is saved: analysis uses this module too."""

from __future__ import annotations

import errno
import fcntl
import importlib.metadata
import io
import json
import os
import socket
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

TMP_SUFFIX = ".tmp"  # temp files are ".{name}.{random}.tmp" beside their target
LOCK_NAME = ".lock"  # the run directory's lock file (docs/design.md)


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _named(exc: OSError, path: Path) -> OSError:
    """``exc`` with ``path`` as its file name (ENOSPC from write() names none)."""
    if exc.filename is not None:
        return exc
    new = OSError(exc.errno, exc.strerror or str(exc), str(path))
    new.__cause__ = exc
    return new


def write_bytes_atomic(path: str | os.PathLike, data: bytes,
                       keep_previous: str | os.PathLike | None = None) -> Path:
    """Write ``data`` so a reader sees either the old file or the complete new one.

    The file gets mode 0o666 & ~umask, as ``open()`` would give (mkstemp's own is 0o600).
    An OSError (read-only folder, disk full) names ``path``; the temp file is removed. With
    ``keep_previous``, the old file is moved there once the new one is on disk (a kill
    between the two renames leaves ``keep_previous`` and no ``path``).
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~current_umask())
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if keep_previous is not None and path.exists():
            os.replace(path, keep_previous)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise _named(exc, path) from None
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    return path


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
            raise _named(exc, self.path) from None
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


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    return write_bytes_atomic(path, text.encode())


def write_json_atomic(path: Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_yaml_atomic(path: Path, obj: Any) -> None:
    write_text_atomic(path, yaml.safe_dump(obj, sort_keys=False))


def write_csv_atomic(path: Path, rows: list[dict[str, Any]], columns: list[str] | None = None) -> None:
    frame = pd.DataFrame(rows, columns=columns)
    write_text_atomic(path, frame.to_csv(index=False))


def save_torch_atomic(path: Path, obj: Any, previous: Path | None = None) -> None:
    """Save ``obj``; with ``previous``, the file it replaces is kept there (one rotation).

    A kill between the two renames leaves ``previous`` and no ``path``; a loader falls back
    to ``previous`` (toppo.train)."""
    import torch  # here, so that analysis can use this module without torch

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
