"""Where a grid stands: ``python -m analysis status [--configfile FILE ...] [--json]``.

One row per cell of the configured grid (``toppo.specs.grid``: the workflow's own expansion),
read from the run directories only (no Snakemake, no SLURM), so it runs on a login node
over the shared filesystem while the jobs run elsewhere. Each cell reads a few small
files: ``manifest.json``, the header and last row of ``train_metrics.csv`` and the tail of
``eval.csv``, the ``.lock`` file (``toppo.harness.io.RunLock``) and the tail of Snakemake's
``train.log``.

A cell's state, first match:

* ``running``: the lock file names a live holder: on this host a process with that PID
  running ``toppo.train``; on another host (no way to ask its kernel) a *heartbeat*, the
  newest modification time of the run files (the trainer writes ``train_metrics.csv`` and
  its checkpoint after every update), less than ``stale_after_s`` old: the larger of
  ``STALE_AFTER_S`` and three times the cell's mean update time;
* ``complete``: manifest ``status: complete`` with the config hash the workflow resolves
  today;
* ``superseded``: the directory holds a run of another config (the manifest's hash is not
  today's): the workflow will set it aside (``superseded/``) and train the cell again;
* ``failed``: the last attempt's ``train.log`` ends with a non-zero exit status that was
  not a stop from outside (the detail is the last error line);
* ``interrupted``: a run was started (manifest or logs) and nothing holds it: killed, its
  node lost, its time limit reached, or the job stopped (resumes from its checkpoint);
* ``pending``: nothing written yet.

ETA of an unfinished cell: its remaining steps at its own rate (env steps over training wall
time so far), else at the mean rate of its benchmark's cells in this grid, else at the plan's
model of the job on ``docs/throughput.md``'s rates for its device (``analysis.plan``); the
totals say how many cells' hours come from the documentation.

Node-hours spent on a cell count every attempt: the larger of two sums, each a lower bound.
The workflow's attempts in ``train.log`` (each from its first ``[workflow <time>] train``
line to its ``exit status`` line: the whole job, env builds and work lost to a stop
included; an attempt killed with its job script has no exit line and counts nothing there),
and the runs' own wall times: the current run's (its resumed attempts up to their last
checkpoint) and each set-aside run's in ``superseded/`` (its ``benchmark.tsv``, else its
manifest's ``wall_time_s``).
"""

from __future__ import annotations

import csv
import json
import os
import re
import socket
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from analysis.numfmt import fmt_count, plural
from toppo.specs.grid import Cell, Grid
from toppo.specs.runfiles import LOCK_NAME, SUPERSEDED

STATES = ("complete", "running", "interrupted", "failed", "superseded", "pending")
STALE_AFTER_S = 30 * 60  # a lock on another host with no newer run file is not trusted
TAIL_BYTES = 1 << 16  # enough for the last evaluation of MT50 (50 rows of eval.csv)
LOCK_LINE = re.compile(r"pid (\d+) on host (\S+), since (\S+)")
EXIT_LINE = re.compile(r"\] exit status (-?\d+)(.*)$")
# an attempt's first line (workflow/scripts/train_cell.py: `[workflow <UTC time>] <rule> <run
# dir> on <host>, ...`) and its last, with their times
ATTEMPT_LINE = re.compile(r"^\[workflow (\S+)\] (?:(train) |(exit status) )", re.M)
HEARTBEAT_FILES = ("train_metrics.csv", "checkpoints/latest.pt", "manifest.json", "train.log",
                   LOCK_NAME)


@dataclass
class CellStatus:
    cell: str  # benchmark-reward/variant/seedN
    groups: list[str]
    state: str
    steps: int  # env steps done (last logged update)
    total_steps: int  # the configured budget
    success: float | None  # mean success over tasks at the last evaluation
    eval_step: int | None  # step of that evaluation
    wall_time_s: float  # training wall time so far (summed over resumes)
    env_sps: float | None  # env steps per second of wall time, overall
    eta_s: float | None  # remaining steps at env_sps (None: complete, or no rate known)
    eta_rate: str | None  # whose rate the ETA uses: the cell's own, the grid's, docs
    heartbeat_age_s: float | None  # seconds since a run file last changed
    detail: str = ""  # lock holder, failure line, why superseded
    set_aside: int = 0  # runs in superseded/
    spent_s: float = 0.0  # node time of every attempt, set-aside runs included (module docstring)


@dataclass
class Totals:
    cells: int = 0
    states: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATES, 0))
    node_hours_spent: float = 0.0
    node_hours_left: float = 0.0
    cells_without_rate: int = 0  # unfinished cells no rate is known for (not in hours left)
    cells_at_documented_rate: int = 0  # unfinished cells whose hours left use docs/throughput.md


@dataclass
class GridStatus:
    scale: str
    runs_root: str
    host: str
    read_s: float
    cells: list[CellStatus]
    groups: dict[str, Totals]
    grid: Totals

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


# ---------------------------------------------------------------------- small readers
def _csv_tail(path: Path) -> tuple[list[str], list[str]]:
    """Header and the last lines of a CSV (whole lines within the last TAIL_BYTES), unparsed."""
    with open(path, "rb") as f:
        header = f.readline()
        size = f.seek(0, os.SEEK_END)
        start = max(len(header), size - TAIL_BYTES)
        f.seek(start)
        lines = f.read().decode(errors="replace").splitlines()
    if start > len(header):
        lines = lines[1:]  # the first line of the chunk may be cut
    return _row(header.decode(errors="replace")), [line for line in lines if line.strip()]


def _row(line: str) -> list[str]:
    return next(csv.reader([line]), [])


def _last_update(run: Path) -> dict[str, str] | None:
    try:
        names, lines = _csv_tail(run / "train_metrics.csv")
    except FileNotFoundError:
        return None
    return dict(zip(names, _row(lines[-1]))) if lines else None


def _last_evaluation(run: Path) -> tuple[int, float] | None:
    """(step, mean success over tasks) of the last evaluation in eval.csv."""
    try:
        names, lines = _csv_tail(run / "eval.csv")
    except FileNotFoundError:
        return None
    if not lines or "step" not in names or "success_rate" not in names:
        return None
    i_step, i_succ = names.index("step"), names.index("success_rate")
    last, values = None, []
    for line in reversed(lines):  # the last evaluation's rows end the file
        row = _row(line)
        if len(row) != len(names) or (last is not None and row[i_step] != last):
            break
        last = row[i_step]
        values.append(float(row[i_succ]))
    return (int(last), sum(values) / len(values)) if values else None


def _manifest(run: Path) -> dict[str, Any] | None:
    try:
        m = json.loads((run / "manifest.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return m if isinstance(m, dict) else None


def _lock_holder(run: Path) -> tuple[int, str] | None:
    try:
        text = (run / LOCK_NAME).read_text(errors="replace")
    except FileNotFoundError:
        return None
    match = LOCK_LINE.search(text)
    return (int(match[1]), match[2]) if match else None


def _trainer_alive(pid: int) -> bool:
    """A process with this PID exists on this host and runs toppo.train (where /proc says)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    try:
        return b"toppo.train" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    except OSError:
        return True  # no /proc to check the command: the PID exists


def _last_attempt(run: Path) -> tuple[str, str] | None:
    """('failed' | 'stopped', detail) from the tail of train.log, or None when the last
    attempt has no exit line (still running, or killed with its job script)."""
    path = run / "train.log"
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - TAIL_BYTES))
            lines = f.read().decode(errors="replace").splitlines()
    except FileNotFoundError:
        return None
    for i in range(len(lines) - 1, -1, -1):
        match = EXIT_LINE.search(lines[i])
        if match is None:
            continue
        rc = int(match[1])
        if rc == 0:
            return None
        if rc < 0 or "trainer stopped" in match[2]:
            return "stopped", f"stopped{match[2].strip() and ' ' + match[2].strip()}"
        errors = [line for line in lines[:i] if "error" in line.lower()
                  or re.match(r"^\w+(Error|Exception)\b", line)]
        why = errors[-1].strip() if errors else "no error line"
        return "failed", f"exit status {rc}: {why}"[:200]
    return None


def _attempts_s(run: Path) -> float:
    """Seconds of the workflow's attempts recorded in train.log, each from its first line to
    its exit line (one without an exit line counts nothing)."""
    try:
        text = (run / "train.log").read_text(errors="replace")
    except FileNotFoundError:
        return 0.0
    total, start = 0.0, None
    for m in ATTEMPT_LINE.finditer(text):
        t = _utc_seconds(m[1])
        if m[2]:
            start = t
        elif start is not None and t is not None:
            total += max(0.0, t - start)
            start = None
    return total


def _utc_seconds(stamp: str) -> float | None:
    try:
        return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def _set_aside_runs(run: Path) -> list[Path]:
    aside = run / SUPERSEDED
    return [p for p in aside.iterdir() if p.is_dir()] if aside.is_dir() else []


def _run_seconds(run: Path) -> float:
    """A set-aside run's wall time: its job's (benchmark.tsv, moved with it), else its
    trainer's (manifest ``wall_time_s``)."""
    from analysis.plan import benchmark_seconds

    job = benchmark_seconds(run / "benchmark.tsv")
    if job:
        return job
    manifest = _manifest(run)
    try:
        return float(manifest.get("wall_time_s") or 0.0) if manifest else 0.0
    except (TypeError, ValueError):
        return 0.0


def _heartbeat(run: Path) -> float | None:
    times = []
    for name in HEARTBEAT_FILES:
        try:
            times.append((run / name).stat().st_mtime)
        except FileNotFoundError:
            continue
    return max(times) if times else None


# ---------------------------------------------------------------------- one cell
def cell_status(run: Path, cell: Cell, groups: list[str], total_steps: int, config_hash: str,
                host: str, now: float) -> CellStatus:
    manifest = _manifest(run)
    update = _last_update(run)
    evaluation = _last_evaluation(run)
    beat = _heartbeat(run)
    steps = int(float(update["step"])) if update else int(manifest.get("env_steps", 0)) if manifest else 0
    wall = float(update["wall_time_s"]) if update and update.get("wall_time_s") else \
        float(manifest.get("wall_time_s", 0.0)) if manifest else 0.0
    updates = int(float(update["update"])) if update else 0
    sps = steps / wall if wall > 0 and steps > 0 else None
    aside = _set_aside_runs(run)
    spent = max(_attempts_s(run), wall + sum(map(_run_seconds, aside)))

    state, detail = "pending", ""
    holder = _lock_holder(run)
    age = None if beat is None else now - beat
    if holder is not None:
        pid, lock_host = holder
        if lock_host == host:
            alive = _trainer_alive(pid)
        else:
            stale = max(STALE_AFTER_S, 3 * wall / updates) if updates else STALE_AFTER_S
            alive = age is not None and age < stale
        if alive:
            state, detail = "running", f"pid {pid} on {lock_host}"
    if state != "running" and manifest is not None:
        if manifest.get("config_hash") != config_hash:
            state = "superseded"
            detail = f"holds config {manifest.get('config_hash')}, the grid's is {config_hash}"
        elif manifest.get("status") == "complete":
            state = "complete"
    if state == "pending" and (manifest is not None or update is not None or (run / "train.log").exists()):
        attempt = _last_attempt(run)
        state = "failed" if attempt and attempt[0] == "failed" else "interrupted"
        detail = attempt[1] if attempt else ""
    remaining = max(total_steps - steps, 0)
    eta = None if state == "complete" or sps is None else remaining / sps
    return CellStatus(cell=str(cell), groups=groups, state=state, steps=steps, total_steps=total_steps,
                      success=None if evaluation is None else evaluation[1],
                      eval_step=None if evaluation is None else evaluation[0], wall_time_s=wall,
                      env_sps=sps, eta_s=eta, eta_rate=None if eta is None else "own",
                      heartbeat_age_s=age, detail=detail, set_aside=len(aside), spent_s=spent)


# ---------------------------------------------------------------------- the grid
def grid_status(grid: Grid, root: str | Path = ".") -> GridStatus:
    """Every cell's status and the totals per group and for the grid; paths relative to
    ``root`` (Snakemake's working directory)."""
    t0 = time.perf_counter()
    host, now = socket.gethostname(), time.time()
    member: dict[Cell, list[str]] = {}
    for name, cells in grid.groups.items():
        for c in cells:
            member.setdefault(c, []).append(name)
    hashes: dict[Cell, str] = {c: grid.train_config(c).config_hash() for c in grid.cells}
    statuses = {c: cell_status(Path(root) / grid.run_dir(c), c, member[c], grid.budgets[c.benchmark],
                               hashes[c], host, now) for c in grid.cells}
    _fill_missing_etas(statuses, grid)
    groups = {name: _totals(statuses[c] for c in cells) for name, cells in grid.groups.items()}
    return GridStatus(scale=grid.scale, runs_root=grid.runs_root, host=host,
                      read_s=time.perf_counter() - t0, cells=list(statuses.values()), groups=groups,
                      grid=_totals(statuses.values()))


def _fill_missing_etas(statuses: dict[Cell, CellStatus], grid: Grid) -> None:
    """Cells with no rate of their own (pending, or no update yet) get the mean rate of the
    same benchmark's cells that have one (what the grid has measured so far), else the
    plan's model of the job from docs/throughput.md's rates for its device, evaluation and env
    builds included (analysis.plan.documented_rate, in this process's numerics mode)."""
    from analysis.plan import documented_rate
    from toppo.specs import numerics_mode

    rates: dict[str, list[float]] = {}
    for c, s in statuses.items():
        if s.env_sps:
            rates.setdefault(c.benchmark, []).append(s.env_sps)
    device = "cpu" if grid.device == "cpu" else "cuda"
    portable = numerics_mode.mode() == "portable"
    for c, s in statuses.items():
        if s.state == "complete" or s.eta_s is not None:
            continue
        if rates.get(c.benchmark):
            rate, s.eta_rate = sum(rates[c.benchmark]) / len(rates[c.benchmark]), "grid"
        elif doc := documented_rate(grid.train_config(c), c.variant, device, portable):
            rate, s.eta_rate = doc.env_steps_per_s, "docs"
        else:
            continue
        s.eta_s = max(s.total_steps - s.steps, 0) / rate


def _totals(statuses: Iterable[CellStatus]) -> Totals:
    t = Totals()
    for s in statuses:
        t.cells += 1
        t.states[s.state] += 1
        t.node_hours_spent += s.spent_s / 3600
        if s.state != "complete":
            if s.eta_s is None:
                t.cells_without_rate += 1
            else:
                t.node_hours_left += s.eta_s / 3600
                t.cells_at_documented_rate += s.eta_rate == "docs"
    return t


# ---------------------------------------------------------------------- output
def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "--"
    minutes = int(round(seconds / 60))
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    return f"{days}d{hours:02d}h" if days else f"{hours}h{minutes:02d}m"


def render_text(status: GridStatus) -> str:
    head = ["cell", "state", "env steps", "done", "success", "steps/s", "ETA", "detail"]
    rows = [[s.cell, s.state, f"{fmt_count(s.steps)}/{fmt_count(s.total_steps)}",
             f"{100 * s.steps / s.total_steps:.1f}%",
             "--" if s.success is None else f"{100 * s.success:.1f}% @{fmt_count(s.eval_step)}",
             "--" if s.env_sps is None else f"{s.env_sps:.0f}",
             "--" if s.state == "complete" else fmt_duration(s.eta_s),
             s.detail + (f" ({s.set_aside} set aside)" if s.set_aside else "")]
            for s in status.cells]
    lines = _columns([head, *rows])
    lines.append("")
    group_head = ["group", "cells", *STATES, "node-h spent", "node-h left"]
    group_rows = [[name, str(t.cells), *(str(t.states[k]) for k in STATES), f"{t.node_hours_spent:.1f}",
                   f"{t.node_hours_left:.1f}" + _left_note(t)]
                  for name, t in [*status.groups.items(), ("grid", status.grid)]]
    lines += _columns([group_head, *group_rows])
    g = status.grid
    running = g.states["running"]
    lines.append("")
    lines.append(f"scale {status.scale}: {g.states['complete']} of {plural(g.cells, 'cell')} complete, {running} "
                 f"running; {g.node_hours_spent:.1f} node-hours spent, {g.node_hours_left:.1f} left at "
                 "the measured rates"
                 + (f": about {fmt_duration(3600 * g.node_hours_left / running)} at {plural(running, 'job')} at once"
                    if running and g.node_hours_left else "")
                 + f" (read {status.runs_root} in {status.read_s:.2f} s on {status.host})")
    return "\n".join(lines) + "\n"


def _left_note(t: Totals) -> str:
    notes = [f"{plural(t.cells_at_documented_rate, 'cell')} at docs/throughput.md's rate"] \
        if t.cells_at_documented_rate else []
    notes += [f"+{plural(t.cells_without_rate, 'cell')}, no rate known"] if t.cells_without_rate else []
    return f" ({'; '.join(notes)})" if notes else ""


def _columns(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
