"""The run directory's guarantees (docs/design.md, "Run-directory guarantees"), used by
``toppo.train`` while it holds the directory's lock:

* ``completion``: a run is complete only when the manifest, both logs and the checkpoint agree
  (final step, number of updates, an evaluation of every task at the final step);
* ``load_resume_state``: the checkpoint to resume from, loaded and checked *before* any env is
  built; an unreadable one is set aside (``checkpoints/latest.corrupt-<time>.pt``) and
  ``checkpoints/previous.pt`` (one rotation, kept by every save) is tried next, else the run
  starts from scratch, saying so;
* ``set_aside_run``: a run of another config (or a run restarted from scratch) is moved whole
  (config, manifest, logs, checkpoints) to ``superseded/<time>-<config hash>/``, so the
  directory never mixes two runs.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from toppo.specs.config import ConfigError, TrainConfig, config_from_dict
from toppo.specs.runfiles import (
    JOB_FILES_COPIED,
    JOB_FILES_MOVED,
    JOB_LOG_BYTES_ENV,
    RUN_FILES,
    SUPERSEDED,
)

# keys a checkpoint must hold, with their types (Trainer.state_dict)
STATE_KEYS: dict[str, type | tuple[type, ...]] = {
    "config_hash": str, "update_idx": int, "learner": dict, "eval_rows": list,
    "metric_rows": list, "eval_env_steps": int, "wall_time": (int, float),
}


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed from; the message names the file."""


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def checkpoint_paths(out: Path) -> tuple[Path, Path]:
    ck = Path(out) / "checkpoints"
    return ck / "latest.pt", ck / "previous.pt"


# ---------------------------------------------------------------------- checkpoints
def read_checkpoint(path: Path, map_location: Any = "cpu") -> dict[str, Any]:
    """The checkpoint at ``path``, checked for the keys a resume needs (CheckpointError)."""
    import torch

    try:
        state = torch.load(path, weights_only=False, map_location=map_location)
    except OSError as exc:
        if exc.filename is None:
            exc.filename = str(path)
        raise
    except Exception as exc:  # truncated, zero-filled, not a torch file: many exception types
        raise CheckpointError(f"{path}: unreadable checkpoint ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else 'no detail'})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a trainer checkpoint (a {type(state).__name__})")
    for key, typ in STATE_KEYS.items():
        if key not in state:
            raise CheckpointError(f"{path}: not a trainer checkpoint (no '{key}')")
        if not isinstance(state[key], typ) or isinstance(state[key], bool):
            raise CheckpointError(f"{path}: '{key}' is a {type(state[key]).__name__}")
    if state["update_idx"] < 0 or len(state["metric_rows"]) != state["update_idx"]:
        raise CheckpointError(f"{path}: {len(state['metric_rows'])} metric rows for update "
                              f"{state['update_idx']}")
    return state


def set_aside_checkpoint(path: Path) -> Path:
    dest = path.with_name(f"{path.stem}.corrupt-{stamp()}{path.suffix}")
    os.replace(path, dest)
    return dest


def load_resume_state(out: Path, cfg: TrainConfig, log: Callable[[str], None],
                      map_location: Any = "cpu") -> dict[str, Any] | None:
    """The checkpoint state to resume from (``latest.pt``, else ``previous.pt``), or None.

    Each unreadable file is reported by name and set aside. A readable checkpoint of another
    config sets the whole run aside (:func:`set_aside_run`) and returns None, as does a run
    directory with logs but no usable checkpoint (the logs would not match a fresh start).
    """
    latest, previous = checkpoint_paths(out)
    for path in (latest, previous):
        if not path.exists():
            continue
        try:
            state = read_checkpoint(path, map_location)
        except CheckpointError as exc:
            moved = set_aside_checkpoint(path)
            log(f"error: {exc}; set aside as {moved}")
            continue
        if state["config_hash"] != cfg.config_hash():
            where = set_aside_run(out, state["config_hash"])
            log(f"{path} was written by config {state['config_hash']}, not "
                f"{cfg.config_hash()}; that run is set aside in {where}; starting from scratch")
            return None
        if state["update_idx"] > cfg.num_updates:
            moved = set_aside_checkpoint(path)
            log(f"error: {path}: update {state['update_idx']} is past this config's "
                f"{cfg.num_updates} updates; set aside as {moved}")
            continue
        if path == previous:
            log(f"resuming from the previous checkpoint {previous} (update {state['update_idx']})")
        state["loaded_from"] = str(path)
        return state
    if any((Path(out) / name).exists() for name in RUN_FILES[2:4]):
        where = set_aside_run(out, previous_config_hash(out) or "unknown")
        log(f"no usable checkpoint: the previous run's logs are set aside in {where}; "
            "starting from scratch")
    elif latest.parent.exists() and any(latest.parent.glob("*.corrupt-*")):
        log("no usable checkpoint: starting from scratch")
    return None


# ---------------------------------------------------------------------- set aside
def previous_config_hash(out: Path) -> str | None:
    """The config hash of the run now in ``out``: its manifest's, else its config.yaml's."""
    try:
        m = json.loads((Path(out) / "manifest.json").read_text())
        if isinstance(m, dict) and isinstance(m.get("config_hash"), str):
            return m["config_hash"]
    except (OSError, ValueError):
        pass
    try:
        return config_from_dict(yaml.safe_load((Path(out) / "config.yaml").read_text()) or {}
                                ).config_hash()
    except (OSError, yaml.YAMLError, ConfigError, TypeError, ValueError, AttributeError):
        return None


def config_changed(out: Path, cfg: TrainConfig) -> str | None:
    """The other config hash of the run in ``out`` if it is not ``cfg``'s, else None."""
    if not any((Path(out) / n).exists() for n in RUN_FILES):
        return None
    old = previous_config_hash(out)
    if old is None:
        has_logs = any((Path(out) / n).exists() for n in RUN_FILES[:4])
        return "unknown" if has_logs else None  # only checkpoints: load_resume_state decides
    return None if old == cfg.config_hash() else old


def set_aside_run(out: Path, old_hash: str, why: str = "") -> Path:
    """Move config, manifest, logs, checkpoints and event files of the run in ``out``
    together to ``out/superseded/<time>-<old_hash>[-why]/``, with the workflow's
    benchmark.tsv and a copy of its train.log as that run left it (``copy_job_log``);
    returns that folder."""
    dest = Path(out) / SUPERSEDED / "-".join(filter(None, [stamp(), old_hash, why]))
    dest.mkdir(parents=True)
    for name in (*RUN_FILES, *JOB_FILES_MOVED):
        src = Path(out) / name
        if src.exists():
            os.replace(src, dest / name)
    for name in JOB_FILES_COPIED:
        if (Path(out) / name).exists():
            copy_job_log(Path(out) / name, dest / name)
    return dest


def copy_job_log(src: Path, dest: Path) -> None:
    """Copy ``src`` as it was before this attempt of the job: its first $TOPPO_TRAIN_LOG_BYTES
    bytes (JOB_LOG_BYTES_ENV), the whole file where that is unset (a trainer started by
    hand) or not a size the file has reached; file times as ``src``'s."""
    size = src.stat().st_size
    try:
        keep = int(os.environ.get(JOB_LOG_BYTES_ENV, ""))
    except ValueError:
        keep = size
    keep = keep if 0 <= keep <= size else size
    with open(src, "rb") as f, open(dest, "wb") as g:
        g.write(f.read(keep))
    shutil.copystat(src, dest)


# ---------------------------------------------------------------------- completion
def finished(out: Path, cfg: TrainConfig, map_location: Any = "cpu") -> bool:
    """Whether ``out`` holds a finished run of ``cfg`` that a retrain sets aside: complete
    (:func:`completion`); else, where a checkpoint exists, a finished one (the logs may be
    gone); else a manifest that says complete for this config (a record kept without its
    checkpoints, as the committed study). An unfinished checkpoint is resumed, never set
    aside, whatever the logs beside it say."""
    if completion(out, cfg, map_location).complete:
        return True
    if any(p.exists() for p in checkpoint_paths(out)):
        return finished_checkpoint(out, cfg, map_location)
    try:
        m = json.loads((Path(out) / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return (isinstance(m, dict) and m.get("status") == "complete"
            and m.get("config_hash") == cfg.config_hash())


def finished_checkpoint(out: Path, cfg: TrainConfig, map_location: Any = "cpu") -> bool:
    """Whether ``checkpoints/latest.pt`` is a readable, finished checkpoint of ``cfg`` (the
    logs may be gone: Snakemake deletes a job's outputs before it reruns it)."""
    latest, _ = checkpoint_paths(out)
    if not latest.exists():
        return False
    try:
        state = read_checkpoint(latest, map_location)
    except CheckpointError:
        return False
    # an evaluation still pending (in flight when the trainer stopped) is not finished yet
    return (state["config_hash"] == cfg.config_hash() and state["update_idx"] == cfg.num_updates
            and not state.get("eval_pending"))


@dataclass
class Completion:
    complete: bool
    reason: str  # why not (or a summary when complete)


def completion(out: Path, cfg: TrainConfig, map_location: Any = "cpu") -> Completion:
    """Whether ``out`` holds the finished run of ``cfg``: the manifest says so and the logs
    and the checkpoint agree with it (final step, updates, every task evaluated at the end)."""
    out = Path(out)
    final, updates, k = cfg.num_updates * cfg.steps_per_update, cfg.num_updates, cfg.num_tasks
    path = out / "manifest.json"
    try:
        m = json.loads(path.read_text())
    except FileNotFoundError:
        return Completion(False, "no manifest.json")
    except ValueError as exc:
        return Completion(False, f"{path} is not valid JSON ({exc})")
    if not isinstance(m, dict) or m.get("status") != "complete":
        return Completion(False, f"{path}: status {m.get('status') if isinstance(m, dict) else m!r}")
    if m.get("config_hash") != cfg.config_hash():
        return Completion(False, f"{path}: config {m.get('config_hash')}, not {cfg.config_hash()}")
    if m.get("env_steps") != final or m.get("updates") != updates:
        return Completion(False, f"{path}: {m.get('env_steps')} env steps in {m.get('updates')} "
                                 f"updates, expected {final} in {updates}")
    try:
        ev = pd.read_csv(out / "eval.csv")
        tm = pd.read_csv(out / "train_metrics.csv")
    except FileNotFoundError as exc:
        return Completion(False, f"{exc.filename} is missing")
    except (ValueError, pd.errors.ParserError) as exc:
        return Completion(False, f"cannot read the logs ({exc})")
    for df, name, cols in ((ev, "eval.csv", ("step", "task_index")),
                           (tm, "train_metrics.csv", ("update", "step"))):
        if any(c not in df.columns for c in cols):
            return Completion(False, f"{out / name}: missing column(s) {', '.join(cols)}")
    at_end = set(ev.loc[ev["step"] == final, "task_index"].tolist())
    if ev.empty or ev["step"].max() != final or at_end != set(range(k)):
        return Completion(False, f"{out / 'eval.csv'}: last evaluation at step "
                                 f"{ev['step'].max() if len(ev) else None} covering "
                                 f"{len(at_end)} tasks, expected step {final} covering {k}")
    if len(tm) != updates or tm["update"].iloc[-1] != updates or tm["step"].iloc[-1] != final:
        return Completion(False, f"{out / 'train_metrics.csv'}: {len(tm)} rows, expected {updates}")
    latest, _ = checkpoint_paths(out)
    if not latest.exists():
        return Completion(False, f"{latest} is missing")
    try:
        state = read_checkpoint(latest, map_location)
    except CheckpointError as exc:
        return Completion(False, str(exc))
    if state["config_hash"] != cfg.config_hash() or state["update_idx"] != updates:
        return Completion(False, f"{latest}: update {state['update_idx']} of config "
                                 f"{state['config_hash']}, expected {updates} of {cfg.config_hash()}")
    return Completion(True, f"{final:,} env steps in {updates} updates")
