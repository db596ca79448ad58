"""The plan Snakemake prints before a run that trains cells (the Snakefile's ``onstart``):
which cells, per group; the device and threads each job gets; hours per cell and
node-hours in all, from measured rates, each with where it came from; and, where the jobs
would train the paper's budgets on this machine's CPU, that fact and the smaller scales.

Rates, per benchmark, first found:

1. this scale's finished cells of the benchmark: budget over the wall time in their
   ``benchmark.tsv`` (Snakemake's, column ``s``: the last attempt; a resumed cell's first
   attempts are not in it, so such a cell overstates the rate);
2. the end-to-end rates measured in ``docs/throughput.md`` ("Update cost, CUDA against the
   same machine's CPU", an H200 node): the job's device, for the cell's variant (``toppo``'s
   for the other variants), on CPU the row nearest the job's threads. They exclude
   evaluation, so hours from them are a lower bound.
"""

from __future__ import annotations

import csv
import functools
import json
import re
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from analysis.numfmt import fmt_count
from toppo.grid import REPO, Cell, Grid
from toppo.registry import BENCHMARKS

THROUGHPUT_DOC = REPO / "docs" / "throughput.md"
# a row of its "Update cost" table: | MT10 | toppo | cuda (16) | 1482 | 0.22 | 12.8 | 1436 |
THROUGHPUT_ROW = re.compile(rf"^\| ({'|'.join(BENCHMARKS)}) \| (\w+) \| (cuda|cpu) \((\d+)\) \|.*\| (\d+) \|$")
PAPER_BUDGET = 10_000_000  # env steps per cell from which a CPU run is called paper scale
SMALLER_SCALES = ("config/smoke.yaml (4 cells, minutes each on a CPU) or config/cpu.yaml "
                  "(33 cells, about 4 h on 2 cores)")


@dataclass(frozen=True)
class Rate:
    env_steps_per_s: float
    source: str  # where it was measured
    what: str = ""  # which row of the source


def measured_rates(grid: Grid, root: str | Path = ".") -> dict[str, Rate]:
    """Per benchmark, the rate of this scale's finished cells (benchmark.tsv), if any."""
    per_bench: dict[str, list[float]] = {}
    for cell in grid.cells:
        run = Path(root) / grid.run_dir(cell)
        seconds = _benchmark_seconds(run / "benchmark.tsv")
        if seconds and _complete(run):
            per_bench.setdefault(cell.benchmark, []).append(grid.budgets[cell.benchmark] / seconds)
    return {b: Rate(statistics.median(r), f"the median of {len(r)} finished {b} cells' benchmark.tsv")
            for b, r in per_bench.items()}


def _benchmark_seconds(path: Path) -> float | None:
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
    except FileNotFoundError:
        return None
    try:
        return float(rows[-1]["s"]) if rows else None
    except (KeyError, ValueError):
        return None


def _complete(run: Path) -> bool:
    try:
        return json.loads((run / "manifest.json").read_text()).get("status") == "complete"
    except (FileNotFoundError, json.JSONDecodeError, AttributeError):
        return False


@functools.cache
def _documented_rows(doc: Path) -> tuple[tuple[str, str, str, int, float], ...]:
    """(benchmark, variant, device, threads, end-to-end env steps/s) of the doc's table."""
    return tuple((m[1], m[2], m[3], int(m[4]), float(m[5])) for line in doc.read_text().splitlines()
                 if (m := THROUGHPUT_ROW.match(line.strip())))


def documented_rate(benchmark: str, variant: str, device: str, threads: int,
                    doc: Path = THROUGHPUT_DOC) -> Rate | None:
    """The docs/throughput.md rate of a job (see the module docstring), or None."""
    mine = [r for r in _documented_rows(doc) if r[0] == benchmark and r[2] == device]
    if not mine:
        return None
    # a reference row takes its paper row's rate (the documented rows were measured on the
    # configurations named mtppo and toppo before issue 27, now mtppo_ref and toppo_ref; the
    # paper rows have the same network sizes and update shape)
    own = variant.removesuffix("_ref")
    kind = own if any(r[1] == own for r in mine) else "toppo"
    best = min((r for r in mine if r[1] == kind), key=lambda r: abs(r[3] - threads))
    name = doc.relative_to(REPO) if doc.is_relative_to(REPO) else doc
    return Rate(best[4], f"{name} (H200 node, {device} with {_threads(best[3])}, no evaluation)", kind)


def plan_text(grid: Grid, cells: Iterable[Cell], *, root: str | Path = ".", gpu: bool,
              cores: int | None = None, gpus: int | None = None,
              configfiles: Iterable[str] = ()) -> str:
    """The plan for training ``cells`` (one short block). ``gpu``: the jobs get a GPU (a
    local one was found, or a cluster gives them one); ``cores`` and ``gpus``: this
    machine's, when the jobs run here (None: a cluster's queue decides how many at once)."""
    cells = sorted(set(cells))
    if not cells:
        return ""
    device = "cuda" if gpu and grid.device != "cpu" else "cpu"
    benches = sorted({c.benchmark for c in cells})
    # Snakemake scales a job's threads down to the cores it is given
    threads = {b: min(grid.resources[b]["threads"], cores or grid.resources[b]["threads"]) for b in benches}
    measured = measured_rates(grid, root)
    hours: dict[Cell, float] = {}
    used: dict[tuple[str, str], list[Rate]] = {}
    for c in cells:
        rate = measured.get(c.benchmark) or documented_rate(c.benchmark, c.variant, device, threads[c.benchmark])
        if rate is not None:
            hours[c] = grid.budgets[c.benchmark] / rate.env_steps_per_s / 3600
            used.setdefault((c.benchmark, rate.source), []).append(rate)
    groups = ", ".join(f"{name} {n}" for name, members in grid.groups.items()
                       if (n := len(set(members) & set(cells))))
    per_job = "; ".join(f"{b} {_threads(threads[b])}, {fmt_count(grid.budgets[b])} env steps" for b in benches)
    per_cell = ", ".join(_span([h for c, h in hours.items() if c.benchmark == b], b, _hours)
                         for b in benches if any(c.benchmark == b for c in hours))
    total = sum(hours.values())
    at_once = None
    if cores:  # jobs at once here: as many as the cores (and GPUs) allow
        at_once = max(1, cores // max(threads.values()))
        if device == "cuda" and gpus:
            at_once = min(at_once, gpus)
    lines = [f"Plan (scale {grid.scale}, {', '.join(configfiles) or 'config/config.yaml'}): "
             f"{len(cells)} cells to train ({groups})",
             f"  each job: device {device}{' (1 GPU)' if device == 'cuda' else ''}; {per_job}",
             f"  expected: {per_cell or 'no measured rate'} per cell; {total:,.1f} node-hours in all"
             + (f", about {_hours(total / at_once)} at {at_once} job{'s' if at_once > 1 else ''} at once"
                if at_once and total else "")]
    for (bench, source), rates in sorted(used.items()):
        kinds = sorted({r.what for r in rates if r.what})
        lines.append(f"  {bench} rate {_span([r.env_steps_per_s for r in rates], '', '{:,.0f}'.format)} "
                     f"env steps/s: {source}" + (f", {' and '.join(kinds)} rows" if kinds else ""))
    if device == "cpu" and grid.device == "auto":
        lines.append("  No GPU here: device auto trains on this machine's CPU.")
    elif device == "cpu" and grid.device == "cuda":
        lines.append("  No GPU here: device cuda jobs will fail (the trainer needs CUDA).")
    if device == "cpu" and max(grid.budgets[b] for b in benches) >= PAPER_BUDGET:
        lines.append(f"  These are paper-scale budgets on a CPU. For a run that fits a CPU machine use "
                     f"--configfile {SMALLER_SCALES}.")
    return "\n".join(lines) + "\n"


def _threads(n: int) -> str:
    return f"{n} thread{'s' if n > 1 else ''}"


def _span(values: list[float], label: str, fmt) -> str:
    lo, hi = fmt(min(values)), fmt(max(values))
    return " ".join(filter(None, [label, lo if lo == hi else f"{lo} to {hi}"]))


def _hours(h: float) -> str:
    return f"{h * 60:.0f} min" if h < 1 else f"{h:.1f} h" if h < 48 else f"{h / 24:.1f} days"
