"""A report from what has finished (``python -m analysis tables|figures|reproduction --partial``).

The full report needs every cell finished: seeds of one variant must share their
evaluations. A partial report takes, per (benchmark, reward version), every cell given that
has evaluated at least once: the complete ones and the unfinished ones (running,
interrupted, failed), and cuts all of them at the *cutoff*, the last evaluation step every
one of them has reached, so the seeds and variants of a table are compared at one budget.
Cells not evaluated yet (or not started) are left out. Every caption says so
(:meth:`Coverage.sentence`), each reproduction verdict names its cells
(:meth:`Coverage.group_note`), and ``partial_cells.csv`` beside the outputs lists every
cell with what was taken of it.

An unfinished run's ``manifest.json`` was written when its trainer started, so its
``env_steps`` is older than its logs; its evaluations are checked against its
``train_metrics.csv`` instead (``analysis.logs.load_evals(unfinished=True)``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis import logs
from analysis.numfmt import fmt_count, plural
from toppo.specs.registry import BENCHMARKS, REWARD_VERSIONS

PARTIAL_CELLS = "partial_cells.csv"  # written beside a partial report's files
LISTED = 12  # captions name the cells that are not complete up to this many, else count them
CELL_PATH = re.compile(rf"({'|'.join(BENCHMARKS)})-({'|'.join(REWARD_VERSIONS)})/([^/]+)/seed(\d+)/?$")  # toppo.specs.grid.Cell's layout


@dataclass(frozen=True)
class CellUse:
    """One cell given to a partial report and what was taken of it."""

    benchmark: str
    reward_version: str
    variant: str
    seed: int | None  # None: a path that is not a cell's run directory
    run_dir: str
    state: str  # complete | cut (unfinished, up to the cutoff) | not evaluated
    last_step: int | None  # its last evaluation
    used_to: int | None  # the cutoff it was cut at (None: left out)

    @property
    def name(self) -> str:
        return f"{self.benchmark}-{self.reward_version}/{self.variant}/seed{self.seed}" \
            if self.seed is not None else self.run_dir


@dataclass(frozen=True)
class Coverage:
    cells: tuple[CellUse, ...]
    cutoff: dict[tuple[str, str], int]  # (benchmark, reward version) -> env steps
    configured: dict[tuple[str, str], int]  # the runs' total_steps

    def sentence(self) -> str:
        """Plain text for every caption: cells, cutoffs and the cells that are not complete."""
        used = [c for c in self.cells if c.used_to is not None]
        parts = []
        for key, cut in sorted(self.cutoff.items()):
            mine = [c for c in used if (c.benchmark, c.reward_version) == key]
            done = sum(c.state == "complete" for c in mine)
            target = self.configured.get(key)
            parts.append(f"{key[0]}-{key[1]} {plural(len(mine), 'cell')} ({done} complete, {len(mine) - done} "
                         f"unfinished) to {fmt_count(cut)}"
                         + (f" of {fmt_count(target)}" if target else "") + " env steps")
        text = (f"partial report, {len(used)} of {plural(len(self.cells), 'cell')}, each up to the last "
                f"evaluation all cells of its benchmark and reward version reached: "
                + ("; ".join(parts) if parts else "none evaluated yet"))
        others = [c for c in self.cells if c.state != "complete"]
        cut = [c.name for c in others if c.used_to is not None]
        out = [c.name for c in others if c.used_to is None]
        if len(others) <= LISTED:
            text += "".join(f"; {what}: {', '.join(names)}" for what, names in
                            (("unfinished", cut), ("not evaluated yet", out)) if names)
        else:
            text += f"; {len(out)} not evaluated yet"
        return text + f" (every cell: {PARTIAL_CELLS})"

    def group_note(self, benchmark: str, reward_version: str, variant: str) -> str:
        """Which seeds of one variant a number uses, and to which step."""
        mine = [c for c in self.cells if (c.benchmark, c.reward_version, c.variant)
                == (benchmark, reward_version, variant) and c.used_to is not None]
        if not mine:
            return "partial: no cell evaluated yet"
        cut = [c.seed for c in mine if c.state == "cut"]
        return (f"partial: {_seeds([c.seed for c in mine])} to "
                f"{fmt_count(self.cutoff[(benchmark, reward_version)])} env steps"
                + (f", {_seeds(cut)} unfinished" if cut else ""))

    def to_csv(self) -> str:
        return pd.DataFrame([{"cell": c.name, "run_dir": c.run_dir, "state": c.state,
                              "last_eval_step": c.last_step, "used_to_step": c.used_to}
                             for c in self.cells]).to_csv(index=False)


def _seeds(seeds: Iterable[int]) -> str:
    """[0, 1, 2, 5] -> 'seeds 0-2, 5'; [3] -> 'seed 3'."""
    seeds = sorted(seeds)
    out: list[str] = []
    for s in seeds:
        if out and out[-1].split("-")[-1] == str(s - 1):
            out[-1] = f"{out[-1].split('-')[0]}-{s}"
        else:
            out.append(str(s))
    return f"seed{'s' if len(seeds) > 1 else ''} {', '.join(out)}"


def _has_evaluation(run: Path) -> bool:
    try:
        with open(run / "eval.csv") as f:
            return sum(1 for line in f if line.strip()) > 1
    except FileNotFoundError:
        return False


def _cut(frame: pd.DataFrame, cutoff: dict[tuple[str, str], int]) -> pd.DataFrame:
    """The rows at or before their (benchmark, reward version)'s cutoff."""
    if frame.empty:
        return frame
    key = list(zip(frame.benchmark, frame.reward_version))
    limit = pd.Series([cutoff.get(k, -1) for k in key], index=frame.index)
    return frame[frame.step <= limit].reset_index(drop=True)


def load(paths: str | Path | Sequence[str | Path], train_variants: bool | Sequence[str] = False
         ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None, Coverage]:
    """Evaluations, manifests and (``train_variants``) training metrics of the cells under
    ``paths``, cut at each (benchmark, reward version)'s cutoff, and their Coverage.

    A path that does not exist, or a run directory without an evaluation yet, is a cell
    left out (named by its path); a root is searched as ``analysis.logs.find_run_dirs``."""
    runs: list[Path] = []
    left_out: list[Path] = []
    for path in map(Path, [paths] if isinstance(paths, str | Path) else paths):
        under = logs.find_run_dirs([path]) if path.exists() else []
        if not under:  # not started, or a run directory without eval.csv yet
            left_out.append(path.resolve())
        for run in under:
            if run not in runs and run not in left_out:
                (runs if _has_evaluation(run) else left_out).append(run)
    if runs:
        evals = logs.load_evals(runs, unfinished=True)
        manifests = logs.load_manifests(runs, missing_ok=True)
    else:
        evals = pd.DataFrame(columns=[*logs.EVAL_COLUMNS, "run_dir"])
        manifests = pd.DataFrame(columns=[*logs.RUN_KEY, "run_dir"])
    status = dict(zip(manifests.run_dir, manifests.status)) if "status" in manifests else {}
    last = evals.groupby("run_dir").step.max().to_dict() if not evals.empty else {}
    first = evals.drop_duplicates("run_dir").set_index("run_dir") if not evals.empty else None
    cutoff: dict[tuple[str, str], int] = {}
    for run, step in last.items():
        key = (first.loc[run, "benchmark"], first.loc[run, "reward_version"])
        cutoff[key] = min(cutoff.get(key, step), int(step))
    configured = {}
    if "total_steps" in manifests:
        for key, rows in manifests.groupby(["benchmark", "reward_version"]):
            configured[key] = int(rows.total_steps.max())

    cells = []
    for run, step in last.items():
        row = first.loc[run]
        key = (row.benchmark, row.reward_version)
        cells.append(CellUse(row.benchmark, row.reward_version, row.variant, int(row.seed), run,
                             "complete" if status.get(run) == "complete" else "cut", int(step),
                             cutoff[key]))
    for path in left_out:
        m = CELL_PATH.search(path.as_posix())
        b, r, v, s = (m[1], m[2], m[3], int(m[4])) if m else ("?", "?", "?", None)
        cells.append(CellUse(b, r, v, s, str(path), "not evaluated", None, None))
    cells.sort(key=lambda c: (c.benchmark, c.reward_version, c.variant, c.seed if c.seed is not None else -1,
                              c.run_dir))

    evals = _cut(evals, cutoff)
    train = None
    if train_variants and runs:
        train = _cut(logs.load_train_metrics(runs, None if train_variants is True else train_variants),
                     cutoff)
    return evals, manifests, train, Coverage(tuple(cells), cutoff, configured)


def write_coverage(runs, out_dir: str | Path) -> Path:
    """``partial_cells.csv`` of a partial RunSet, beside the files rendered from it."""
    return logs.write_text_atomic(Path(out_dir) / PARTIAL_CELLS, runs.coverage.to_csv())
