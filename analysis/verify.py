"""``python -m analysis verify <run dir>``: retrain a recorded cell and say whether it reproduces.

The cell is trained again from scratch with the recorded config (its ``config.yaml``, the
variant, torch thread count and numerics mode of its ``manifest.json``) by ``python -m
toppo.train`` in a scratch directory -- never in the record. The mode is the record's own
(``--numerics``, which wins over ``TOPPO_NUMERICS``: :func:`record_numerics`), whatever this
machine's environment says, and is printed. Then:

* ``eval.csv`` and ``train_metrics.csv`` (timing columns aside, ``TIMING_COLUMNS``) are
  compared as written, text for text: identical, or the first row (update; step and task)
  and column where they differ, with both values;
* final success: the mean over tasks at the last evaluation, record against retrain. They
  agree *within seed noise* when the difference is at most the range (max - min) of the same
  final success over the recorded seeds of the cell's variant (the sibling ``seed*``
  directories), so a retrain that differs by less than the seeds do from each other agrees;
* both machines and numerics modes, from the manifests: bitwise agreement is expected when
  both runs are portable (docs/reproducibility.md), or native on the same CPU model.

Exit status: 0 identical, 1 different, 2 the cell or the retrain failed (one line).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from toppo.specs import numerics_mode
from toppo.specs.logschema import TIMING_COLUMNS

REPO = Path(__file__).resolve().parents[1]


class VerifyError(RuntimeError):
    """The cell cannot be verified (no record, or the retrain failed); the message says why."""


@dataclass
class Divergence:
    file: str
    where: str  # the first differing row, by its key columns, or the shape that differs
    column: str | None = None
    record: str | None = None
    retrained: str | None = None

    def __str__(self) -> str:
        if self.column is None:
            return f"{self.file}: {self.where}"
        return (f"{self.file}: first differs at {self.where}, column {self.column} "
                f"(record {self.record}, retrained {self.retrained})")


def _text_table(path: Path) -> pd.DataFrame:
    """A CSV as written: every cell the exact text (no float parsing, empty stays empty)."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def first_divergence(record: Path, retrained: Path, keys: list[str]) -> Divergence | None:
    """The first (row, column) where two CSV logs differ, timing columns aside, or None."""
    a, b = _text_table(record), _text_table(retrained)
    cols = [c for c in a.columns if c not in TIMING_COLUMNS]
    other = [c for c in b.columns if c not in TIMING_COLUMNS]
    if cols != other:
        return Divergence(record.name, f"columns differ ({sorted(set(cols) ^ set(other))})")
    for i in range(min(len(a), len(b))):
        for c in cols:
            if a.at[i, c] != b.at[i, c]:
                where = ", ".join(f"{k} {a.at[i, k]}" for k in keys)
                return Divergence(record.name, where, c, a.at[i, c], b.at[i, c])
    if len(a) != len(b):
        return Divergence(record.name, f"{len(a)} rows in the record, {len(b)} retrained")
    return None


def final_success(run: Path) -> float:
    """Mean success over tasks at the run's last evaluation."""
    ev = pd.read_csv(run / "eval.csv")
    return float(ev.loc[ev["step"] == ev["step"].max(), "success_rate"].mean())


def seed_range(run: Path) -> tuple[list[float], float] | None:
    """Final success of every recorded seed of the run's variant (its ``seed*`` siblings) and
    their range; None with fewer than two seeds."""
    finals = [final_success(d) for d in sorted(run.parent.glob("seed*")) if (d / "eval.csv").is_file()]
    return (finals, max(finals) - min(finals)) if len(finals) >= 2 else None


def machine_line(manifest: dict) -> str:
    m = manifest.get("machine")
    if not isinstance(m, dict):
        return "numerics not recorded (trained before the portable mode: native kernels), CPU not recorded"
    return f"numerics {m.get('numerics')}, {m.get('cpu', {}).get('model')}, torch {m.get('torch', {}).get('version')}"


def record_numerics(run: Path) -> str:
    """The numerics mode the record was computed in, the one its retrain runs in: its
    manifest's ``machine.numerics`` (toppo.specs.numerics_mode.recorded_mode; no ``machine``: trained
    before the mode existed, native)."""
    manifest = json.loads((run / "manifest.json").read_text())
    try:
        return numerics_mode.recorded_mode(manifest.get("machine") if isinstance(manifest, dict) else None)
    except numerics_mode.NumericsError as exc:
        raise VerifyError(f"{run / 'manifest.json'}: {exc}") from None


def retrain_command(run: Path, scratch: Path) -> list[str]:
    """``python -m toppo.train`` for the recorded config (the run's config.yaml, as the file it
    is) into ``scratch``, with the threads and the numerics mode the record ran with."""
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    manifest = json.loads((run / "manifest.json").read_text())
    if not isinstance(cfg, dict) or not isinstance(manifest, dict) or "variant" not in manifest:
        raise VerifyError(f"{run}: config.yaml is not a mapping or manifest.json names no 'variant'")
    threads = manifest.get("torch_threads", cfg.get("torch_threads", 0))
    return [sys.executable, "-m", "toppo.train", "--config", str(run / "config.yaml"),
            "--variant", manifest["variant"], "--out-dir", str(scratch),
            numerics_mode.FLAG, record_numerics(run), f"torch_threads={threads}"]


def compare(run: Path, retrained: Path, log=print) -> bool:
    """Print the comparison of a record with its retrain; True when identical."""
    rec_m = json.loads((run / "manifest.json").read_text())
    new_m = json.loads((retrained / "manifest.json").read_text())
    log(f"record:    {machine_line(rec_m)}")
    log(f"retrained: {machine_line(new_m)}")
    if rec_m.get("config_hash") != new_m.get("config_hash"):
        raise VerifyError(f"the retrain ran config {new_m.get('config_hash')}, the record "
                          f"{rec_m.get('config_hash')}")
    identical = True
    for name, keys in (("eval.csv", ["step", "task"]), ("train_metrics.csv", ["update"])):
        d = first_divergence(run / name, retrained / name, keys)
        identical &= d is None
        log(f"{name}: identical" + (" (timing columns aside)" if name == "train_metrics.csv" else "")
            if d is None else str(d))
    rec, new = final_success(run), final_success(retrained)
    spread = seed_range(run)
    if spread is None:
        verdict = "no second recorded seed to measure seed noise by"
    else:
        finals, width = spread
        agree = abs(new - rec) <= width
        verdict = (f"{'agrees' if agree else 'does not agree'} within seed noise (|difference| "
                   f"{abs(new - rec):.4f}, range over the {len(finals)} recorded seeds "
                   f"{min(finals):.4f}..{max(finals):.4f})")
    log(f"final mean success: record {rec:.4f}, retrained {new:.4f}: {verdict}")
    log(f"result: {'identical' if identical else 'different'}")
    return identical


def verify(run: Path, scratch: Path | None = None, keep: bool = False, log=print) -> bool:
    """Retrain the cell of run directory ``run`` in ``scratch`` (default: a new temporary
    folder, removed afterwards unless ``keep``) and compare; True when identical."""
    run = Path(run)
    for name in ("config.yaml", "manifest.json", "eval.csv", "train_metrics.csv"):
        if not (run / name).is_file():
            raise VerifyError(f"{run / name}: missing (not a finished run directory)")
    own = scratch is None
    scratch = Path(tempfile.mkdtemp(prefix="toppo-verify-")) if own else Path(scratch)
    if scratch.resolve() == run.resolve() or run.resolve() in scratch.resolve().parents:
        raise VerifyError(f"--scratch {scratch} is inside the record {run}")
    if (scratch / "manifest.json").exists():
        raise VerifyError(f"{scratch} already holds a run: give an empty scratch directory")
    try:
        cmd = retrain_command(run, scratch)
        log(f"verify {run}: retraining in {scratch} under numerics {record_numerics(run)}, the "
            f"record's (log: {scratch / 'train.log'})")
        scratch.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        with open(scratch / "train.log", "w") as out:
            rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env).returncode
        if rc != 0:
            tail = (scratch / "train.log").read_text().strip().splitlines()[-1:]
            raise VerifyError(f"the retrain exited with status {rc}: {' '.join(tail)}")
        return compare(run, scratch, log)
    finally:
        if own and not keep:
            shutil.rmtree(scratch, ignore_errors=True)
