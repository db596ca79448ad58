"""The plan Snakemake prints before a run that trains cells (the Snakefile's ``onstart``):
which cells, per group; the device and threads each job gets; hours per cell and
node-hours in all, each with where its rate came from and how sure it is; and, where the jobs
would train the paper's budgets on this machine's CPU, that fact and the smaller scales.

Rates, per benchmark, first found (env steps of training per second of the whole job):

1. this scale's finished cells of the benchmark: budget over the wall time in their
   ``benchmark.tsv`` (Snakemake's, column ``s``: the job's whole last attempt, env builds and
   evaluation included; a resumed cell's first attempts are not in it, so such a cell
   overstates the rate). Measured here: the plan gives the range those cells took;
2. a model of the job (``documented_seconds``) from the per-update costs measured in
   ``docs/throughput.md`` ("Update cost, CUDA against the same machine's CPU", an H200 node:
   rollout env steps/s and learner seconds per update, for the job's device, the cell's
   variant (``toppo``'s for the other variants) and, on CPU, the row nearest the job's
   threads): training at the cell's PPO epochs, the portable numerics' cost on a CPU update
   (docs/reproducibility.md), its evaluations at the rollout's rate (an evaluation step costs
   about a training step, docs/throughput.md), every episode run to the time limit (an upper
   bound: episodes end on success), beside training where the job has a core per eval
   worker, and two env builds (training and evaluation envs). Another machine's rates: the
   plan says to expect within 2x (the committed CPU study's 33 cells took 0.66x to 1.79x
   their estimate on the two 2-core development VMs: tests/test_plan.py), and where the job steps
   its envs in env workers, an upper bound (the table's rollouts ran in one process).
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

from analysis.numfmt import fmt_count, plural
from toppo.specs.config import TrainConfig
from toppo.specs.grid import REPO, Cell, Grid
from toppo.specs.registry import BENCHMARKS

THROUGHPUT_DOC = REPO / "docs" / "throughput.md"
# a row of its "Update cost" table:
# | MT10 | toppo | cuda (16) | 1482 | 0.22 | 12.8 | 1436 |
# benchmark, variant, device (threads), rollout env steps/s, learn s/update, ms/minibatch, end to end
THROUGHPUT_ROW = re.compile(rf"^\| ({'|'.join(BENCHMARKS)}) \| (\w+) \| (cuda|cpu) \((\d+)\) \| "
                            r"(\d+) \| ([\d.]+) \| [\d.]+ \| (\d+) \|$")
DOC_UPDATE_STEPS, DOC_EPOCHS = 10_000, 4  # the table's update: 10,000 env steps, 4 epochs
# docs/reproducibility.md, "The mode's cost": a CPU update under portable numerics took 1.61
# (MT50 CPU-study cell) and 1.75 (MT10) times the CPU time of a native one; the table's rates
# are native (measured before the mode existed)
PORTABLE_UPDATE_COST = 1.7
# Seconds per build of a benchmark's envs (goals and envs), on the development machine
# (the trainer's "built envs in" line, issue 28); the trainer builds its training envs and
# its evaluation envs
ENV_BUILD_S = {"MT10": 10.0, "MT50": 45.0}
ENV_BUILDS = 2
PAPER_BUDGET = 10_000_000  # env steps per cell from which a CPU run is called paper scale
SMALLER_SCALES = ("config/smoke.yaml (4 cells, minutes each on a CPU) or config/cpu.yaml "
                  "(33 cells, about 4 h on 2 cores)")


@dataclass(frozen=True)
class Rate:
    env_steps_per_s: float  # training env steps per second of the whole job
    source: str  # where it was measured
    what: str = ""  # which row of the source
    model: str = ""  # what the model added to the source's rates
    sure: str = ""  # how far off it may be


@dataclass(frozen=True)
class DocRow:
    benchmark: str
    variant: str
    device: str
    threads: int
    rollout_sps: float  # env steps per second of the rollout
    learn_s: float  # learner seconds per update of DOC_UPDATE_STEPS env steps, DOC_EPOCHS epochs
    end_to_end_sps: float


def measured_rates(grid: Grid, root: str | Path = ".") -> dict[str, Rate]:
    """Per benchmark, the rate of this scale's finished cells (benchmark.tsv), if any."""
    seconds: dict[str, list[float]] = {}
    for cell in grid.cells:
        run = Path(root) / grid.run_dir(cell)
        s = benchmark_seconds(run / "benchmark.tsv")
        if s and _complete(run):
            seconds.setdefault(cell.benchmark, []).append(s)
    return {b: Rate(grid.budgets[b] / statistics.median(s),
                    f"the median of {plural(len(s), f'finished {b} cell')} here (benchmark.tsv, "
                    "env builds and evaluation included)",
                    sure=f"those took {_span([x / 3600 for x in s], '', _hours)} each")
            for b, s in seconds.items()}


def benchmark_seconds(path: Path) -> float | None:
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
def _documented_rows(doc: Path) -> tuple[DocRow, ...]:
    """The rows of the doc's "Update cost" table."""
    return tuple(DocRow(m[1], m[2], m[3], int(m[4]), float(m[5]), float(m[6]), float(m[7]))
                 for line in doc.read_text().splitlines() if (m := THROUGHPUT_ROW.match(line.strip())))


def documented_row(benchmark: str, variant: str, device: str, threads: int,
                   doc: Path = THROUGHPUT_DOC) -> DocRow | None:
    """The docs/throughput.md row of a job: its benchmark and device, the cell's variant
    (``toppo``'s for the other variants), the threads nearest the job's; None if none."""
    mine = [r for r in _documented_rows(doc) if r.benchmark == benchmark and r.device == device]
    if not mine:
        return None
    # a reference row takes its paper row's rate (the documented rows were measured on the
    # configurations named mtppo and toppo before issue 27, now mtppo_ref and toppo_ref; the
    # paper rows have the same network sizes and update shape)
    own = variant.removesuffix("_ref")
    kind = own if any(r.variant == own for r in mine) else "toppo"
    return min((r for r in mine if r.variant == kind), key=lambda r: abs(r.threads - threads))


def documented_seconds(cfg: TrainConfig, row: DocRow, portable: bool) -> float:
    """Seconds of one job training ``cfg`` from scratch, modelled on the documented row (see
    the module docstring): env builds, training at the row's rollout rate and learner cost
    scaled to the cell's epochs (and the portable numerics' cost on a CPU update), and its
    evaluations, every episode to the time limit, beside training where each eval worker has
    a core of its own, else after it."""
    from toppo.specs.cores import eval_worker_count, job_cores

    step_s = 1 / row.rollout_sps + row.learn_s / DOC_UPDATE_STEPS * cfg.num_epochs / DOC_EPOCHS
    if portable and row.device == "cpu":
        step_s *= PORTABLE_UPDATE_COST
    train_s = cfg.num_updates * cfg.steps_per_update * step_s
    eval_s = eval_env_steps(cfg) / row.rollout_sps
    workers = eval_worker_count(cfg)
    beside = cfg.eval_mode == "overlap" and job_cores(cfg) > workers
    return ENV_BUILDS * ENV_BUILD_S[cfg.benchmark] + (
        max(train_s, eval_s / workers) if beside else train_s + eval_s)


def eval_env_steps(cfg: TrainConfig) -> int:
    """Env steps of a run's evaluations, every episode to the time limit (an upper bound)."""
    return cfg.num_evaluations * cfg.eval_episodes * cfg.num_tasks * cfg.max_episode_steps


def documented_rate(cfg: TrainConfig, variant: str, device: str, portable: bool,
                    doc: Path = THROUGHPUT_DOC) -> Rate | None:
    """The rate of a job training ``cfg`` of ``variant`` (its threads: ``cfg.cores``) on
    ``device``, from the docs/throughput.md model (``documented_seconds``); None without a row."""
    from toppo.specs.cores import env_worker_count

    row = documented_row(cfg.benchmark, variant, device, cfg.cores, doc)
    if row is None:
        return None
    name = doc.relative_to(REPO) if doc.is_relative_to(REPO) else doc
    model = (f"with {plural(cfg.num_evaluations, 'evaluation')} (at most "
             f"{fmt_count(eval_env_steps(cfg))} env steps), {ENV_BUILDS} env builds of "
             f"{ENV_BUILD_S[cfg.benchmark]:.0f} s"
             + (f" and portable numerics (x{PORTABLE_UPDATE_COST} per update)"
                if portable and device == "cpu" else ""))
    workers = env_worker_count(cfg)
    sure = (f"at most: the table's rollouts ran in one process, these jobs step their envs in "
            f"{plural(workers, 'env worker')}" if workers else "expect within 2x")
    return Rate(cfg.total_steps / documented_seconds(cfg, row, portable),
                f"{name} (another machine: H200 node, {device} with {_threads(row.threads)})",
                row.variant, model, sure)


def plan_text(grid: Grid, cells: Iterable[Cell], *, root: str | Path = ".", gpu: bool,
              cores: int | None = None, gpus: int | None = None,
              configfiles: Iterable[str] = (), portable: bool | None = None) -> str:
    """The plan for training ``cells`` (one short block). ``gpu``: the jobs get a GPU (a
    local one was found, or a cluster gives them one); ``cores`` and ``gpus``: this
    machine's, when the jobs run here (None: a cluster's queue decides how many at once);
    ``portable``: the jobs' numerics mode is portable (default: this process's, which the
    jobs inherit; toppo.specs.numerics_mode)."""
    cells = sorted(set(cells))
    if not cells:
        return ""
    if portable is None:
        from toppo.specs import numerics_mode

        portable = numerics_mode.mode() == "portable"
    device = "cuda" if gpu and grid.device != "cpu" else "cpu"
    benches = sorted({c.benchmark for c in cells})
    # Snakemake scales a job's threads down to the cores it is given
    threads = {b: min(grid.resources[b]["threads"], cores or grid.resources[b]["threads"]) for b in benches}
    measured = measured_rates(grid, root)
    hours: dict[Cell, float] = {}
    used: dict[tuple[str, str, str, str], list[Rate]] = {}
    for c in cells:
        rate = measured.get(c.benchmark) or documented_rate(
            grid.train_config(c, threads=threads[c.benchmark]), c.variant, device, portable)
        if rate is not None:
            hours[c] = grid.budgets[c.benchmark] / rate.env_steps_per_s / 3600
            used.setdefault((c.benchmark, rate.source, rate.model, rate.sure), []).append(rate)
    groups = ", ".join(f"{name} {n}" for name, members in grid.groups.items()
                       if (n := len(set(members) & set(cells))))
    per_job = "; ".join(f"{b} {plural(threads[b], 'thread')}, {fmt_count(grid.budgets[b])} env steps"
                        for b in benches)
    per_cell = ", ".join(_span([h for c, h in hours.items() if c.benchmark == b], b, _hours)
                         for b in benches if any(c.benchmark == b for c in hours))
    total = sum(hours.values())
    at_once = None
    if cores:  # jobs at once here: as many as the cores (and GPUs) allow, and there are cells
        at_once = min(len(cells), max(1, cores // max(threads.values())))
        if device == "cuda" and gpus:
            at_once = min(at_once, gpus)
    lines = [f"Plan (scale {grid.scale}, {', '.join(configfiles) or 'config/config.yaml'}): "
             f"{plural(len(cells), 'cell')} to train ({groups})",
             f"  each job: device {device}{' (1 GPU)' if device == 'cuda' else ''}; {per_job}",
             f"  expected: {per_cell or 'no measured rate'} per cell; {total:,.1f} node-hours in all"
             + (f", about {_hours(max(total / at_once, *hours.values()))} at "
                f"{plural(at_once, 'job')} at once" if at_once and total else "")]
    for (bench, source, model, sure), rates in sorted(used.items()):
        kinds = sorted({r.what for r in rates if r.what})
        lines.append(f"  {bench} rate {_span([r.env_steps_per_s for r in rates], '', '{:,.0f}'.format)} "
                     f"env steps/s: {', '.join(filter(None, [source, ' and '.join(kinds) + ' rows' if kinds else '', model]))}"
                     f"; {sure}")
    if device == "cpu" and grid.device == "auto":
        lines.append("  No GPU here: device auto trains on this machine's CPU.")
    elif device == "cpu" and grid.device == "cuda":
        lines.append("  No GPU here: device cuda jobs will fail (the trainer needs CUDA).")
    if device == "cpu" and max(grid.budgets[b] for b in benches) >= PAPER_BUDGET:
        lines.append(f"  These are paper-scale budgets on a CPU. For a run that fits a CPU machine use "
                     f"--configfile {SMALLER_SCALES}.")
    return "\n".join(lines) + "\n"


def _threads(n: int) -> str:
    return plural(n, "thread")


def _span(values: list[float], label: str, fmt) -> str:
    lo, hi = fmt(min(values)), fmt(max(values))
    return " ".join(filter(None, [label, lo if lo == hi else f"{lo} to {hi}"]))


def _hours(h: float) -> str:
    return f"{h * 60:.0f} min" if h < 1 else f"{h:.1f} h" if h < 48 else f"{h / 24:,.1f} days"
