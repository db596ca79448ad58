"""The run directory's format, shared by the trainer that writes it, the workflow and the
analysis that read it (docs/design.md, "Run directory"): the names of its files and folders,
and atomic writes, the one way any file of a run or a report is written (a temp file in the
same folder, then os.replace: a reader sees the old file or the complete new one).

The columns of its log tables are ``toppo.specs.logschema``; what the trainer guarantees of a
run directory (complete, resumed, set aside, locked) is ``toppo.harness.rundir`` and
``toppo.harness.io``."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

TMP_SUFFIX = ".tmp"  # temp files are ".{name}.{random}.tmp" beside their target
LOCK_NAME = ".lock"  # the run directory's lock file (docs/design.md)
SUPERSEDED = "superseded"  # folder of set-aside runs; analysis does not search below it
TB_DIR = "tensorboard"  # the live curves' event files (toppo.harness.livelog)
# a run's files, moved together when it is set aside
RUN_FILES = ("config.yaml", "manifest.json", "eval.csv", "train_metrics.csv", "checkpoints",
             TB_DIR)
# The workflow's record of the job that trained the run (workflow/scripts/train_cell.py), set
# aside with it: benchmark.tsv is moved (Snakemake writes the next job's when it ends);
# train.log, which the running job appends to, is copied as the set-aside run left it.
JOB_FILES_MOVED = ("benchmark.tsv",)
JOB_FILES_COPIED = ("train.log",)
# The job script appends each attempt to train.log, its `[workflow ...]` lines first, and
# tells the trainer the file's size before them in this environment variable: the copy set
# aside is that many bytes, so it holds none of the lines of the attempt that sets it aside.
JOB_LOG_BYTES_ENV = "TOPPO_TRAIN_LOG_BYTES"


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def with_filename(exc: OSError, path: Path) -> OSError:
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
        raise with_filename(exc, path) from None
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    return write_bytes_atomic(path, text.encode())


def write_json_atomic(path: Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_yaml_atomic(path: Path, obj: Any) -> None:
    write_text_atomic(path, yaml.safe_dump(obj, sort_keys=False))


def write_csv_atomic(path: Path, rows: list[dict[str, Any]], columns: list[str] | None = None) -> None:
    frame = pd.DataFrame(rows, columns=columns)
    write_text_atomic(path, frame.to_csv(index=False))
