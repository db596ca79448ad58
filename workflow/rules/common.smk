"""The workflow's config, read and validated with errors of one line naming the file and the
key; the grid of cells from it (toppo.specs.grid: the one definition, shared with `python -m
analysis status` and the tests), and each cell's resolved TrainConfig.

toppo.specs.grid.Grid checks what the JSON schema cannot know: variant names, keys of
trainer_overrides (toppo.specs.config.TrainConfig fields), that every benchmark in the grid has a
budget and resources, and that each (benchmark, reward, variant) resolves to a valid
TrainConfig, so a bad value fails at start and not hours into a job.
"""

import os
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

BASE = Path(workflow.basedir)  # repository root: the top-level Snakefile's folder
if str(BASE) not in sys.path:
    sys.path.insert(0, str(BASE))

from toppo.specs.grid import Grid, GridError, read_config_file, validate_config  # noqa: E402
from toppo.specs.registry import BENCHMARKS, REWARD_VERSIONS, VARIANTS  # noqa: E402

# Jobs are scripts (workflow/scripts/) run with the Python that runs Snakemake, or the conda
# env's under --use-conda; they put this checkout on PYTHONPATH for `toppo` and `analysis`.
BASELINES = str(BASE / "analysis" / "data" / "baselines.csv")


def invalid_config(exc):
    """Stop with one line naming the file and the key (toppo.specs.grid's errors), before any job:
    a WorkflowError raised here would add this file's name and line and a traceback frame."""
    print(f"Invalid config: {exc}", file=sys.stderr, flush=True)
    sys.exit(1)


def config_error(msg):
    """A config error found later, while Snakemake builds the DAG (an input function's)."""
    return WorkflowError(f"Invalid config: {msg}")


# ------------------------------------------------------------------ the config
# The workflow's own config (tests run with --directory), read by toppo.specs.grid first: a YAML
# error names the file, line and column, where Snakemake's loader names neither. (Snakemake
# reads --configfile files before the Snakefile runs and stops on a YAML error there with
# "Config file is not valid JSON or YAML", no file named: docs/workflow.md.)
CONFIGFILE = str(BASE / "config" / "config.yaml")
try:
    read_config_file(CONFIGFILE)
except GridError as exc:
    invalid_config(exc)


configfile: CONFIGFILE


# The merged config against workflow/schemas/config.schema.yaml (its defaults filled in); an
# error is one line, each broken key as `budgets.MT10: -60000 is less than the minimum of 1`.
try:
    validate_config(config, ", ".join(map(str, workflow.config_settings.configfiles)) or CONFIGFILE)
except GridError as exc:
    invalid_config(exc)


# ------------------------------------------------------------------ settings and the grid
try:
    GRID = Grid(config)
except GridError as exc:
    invalid_config(exc)
SCALE = GRID.scale
DEVICE = GRID.device
JOB_RESOURCES = GRID.resources
RUNS = GRID.runs_root  # one folder per cell below this
OUT = f"results/{SCALE}"  # per-scale aggregates, resolved config and logs
# The report (tables, figures, reproduction report): the paper scale's at the top level, as
# the documented `snakemake results/table3.tex` asks; every other scale's under its own OUT,
# so scales never mix (a smoke run cannot overwrite the committed CPU study's report).
# ELSEWHERE: the other place, where asking for a report file is an error naming the right
# path (rule misplaced_report).
PAPER_SCALE = "paper"
REPORT, ELSEWHERE = ("results", OUT) if SCALE == PAPER_SCALE else (OUT, "results")

# Unique cells, each trained once however many groups list it.
CELLS = GRID.cells


def resolved_config(benchmark, reward, variant, seed):
    """The cell's resolved TrainConfig, the one its training job hands the trainer."""
    try:
        return GRID.train_config((benchmark, reward, variant, seed))
    except GridError as exc:
        raise config_error(str(exc)) from None


# The report: section passed the shared schema (validate_config above); its variant names are
# checked here as `python -m analysis` checks them (analysis.check_report).
from analysis import check_report  # noqa: E402

try:
    check_report(config["report"], "config")
except ValueError as exc:
    invalid_config(exc)


# ------------------------------------------------------------------ no orphan jobs
# SIGINT/SIGTERM sent to Snakemake alone first stop its jobs' shells (toppo.harness.procs), so a
# training job's script stops its trainer instead of Snakemake waiting for it.
from toppo.harness.procs import stop_children_on_signals  # noqa: E402

stop_children_on_signals()


# The merged config as analysis reads it (`retrain` and `numerics` only steer training jobs).
EFFECTIVE_CONFIG = {k: v for k, v in config.items() if k not in ("retrain", "numerics")}


# ------------------------------------------------------------------ paths
def run_dir(benchmark, reward, variant, seed):
    return GRID.run_dir((benchmark, reward, variant, seed))


RUN_DIRS = [run_dir(*c) for c in CELLS]
GROUPS = sorted({(b, r) for b, r, _, _ in CELLS})
AGGREGATES = [f"{OUT}/aggregate/{b}-{r}.csv" for b, r in GROUPS]


def _report_names():
    """The report's files relative to REPORT, by rule: the names `python -m analysis` writes
    (analysis.report_files, which imports nothing: not the analysis stack on every call), so
    a name added there is a new output here."""
    from analysis import report_files as names

    return {
        "tables": [f"{name}.tex" for name in names.TABLE_FILES],
        "figures": [f"figures/{name}.{ext}" for name in names.FIGURE_NAMES
                    for ext in names.FIGURE_FORMATS],
        "reproduction": list(names.REPRODUCTION_FILES),
        "reference_check": list(names.REFERENCE_CHECK_FILES),
    }


REPORT_NAMES = _report_names()
TABLES, FIGURES, REPRODUCTION, REFERENCE_CHECK = (
    [f"{REPORT}/{name}" for name in REPORT_NAMES[kind]]
    for kind in ("tables", "figures", "reproduction", "reference_check")
)
# The misplaced_report rule's wildcard: exactly these names (below ELSEWHERE).
REPORT_FILE = "|".join(re.escape(name) for names in REPORT_NAMES.values() for name in names)


def misplaced_report(wildcards):
    """The misplaced_report rule's input function: a report file asked for where this scale
    does not write it (results/table3.tex of the smoke scale, say) fails at DAG building,
    naming the right path, instead of Snakemake's bare MissingRuleException."""
    raise WorkflowError(
        f"scale {SCALE} writes its report under {REPORT}/: ask for "
        f"{REPORT}/{wildcards.report_file}, not {ELSEWHERE}/{wildcards.report_file}"
    )


def group_cells(wildcards):
    """The cells of one (benchmark, reward version)."""
    cells = [c for c in CELLS if c[:2] == (wildcards.benchmark, wildcards.reward)]
    if not cells:
        raise WorkflowError(
            f"no cell of the grid is on {wildcards.benchmark}-{wildcards.reward} (scale {SCALE})"
        )
    return cells


def cell_files(names, cells=None):
    """The files `names` (e.g. eval.csv) of every cell (default: the whole grid)."""
    return [f"{run_dir(*c)}/{n}" for c in (CELLS if cells is None else cells) for n in names]


def existing_checkpoints(wildcards):
    """The checkpoints of the grid's cells that exist now, the input of partial_report.
    Rewritten after every update and the output of no job, they date the partial report
    without scheduling any training."""
    return [f for f in cell_files(["checkpoints/latest.pt"]) if os.path.exists(f)]


# The registry's names (variant names contain '_' and '-'; listing them keeps every path
# unambiguous).
def one_of(names):
    return "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))


wildcard_constraints:
    benchmark=one_of(BENCHMARKS),
    reward=one_of(REWARD_VERSIONS),
    variant=one_of(VARIANTS),
    seed="0|[1-9][0-9]*",


# ------------------------------------------------------------------ per-cell job settings
def cell_config(wildcards):
    return resolved_config(wildcards.benchmark, wildcards.reward, wildcards.variant, wildcards.seed)


def job_resource(name):
    def get(wildcards):
        if wildcards.benchmark not in JOB_RESOURCES:
            raise config_error(f"resources.{wildcards.benchmark}: missing")
        return JOB_RESOURCES[wildcards.benchmark][name]

    return get


GPUS_PER_JOB = 1 if DEVICE in ("auto", "cuda") else 0


# ------------------------------------------------------------------ the plan
def print_plan():
    """Before a run that trains cells (the Snakefile's onstart; never in a dry run): the
    cells, the device and threads of each job, hours per cell and node-hours from measured
    rates, and, where paper budgets would train on this machine's CPU, the smaller scales
    (analysis.plan). Only prints: what runs is unchanged."""
    from analysis.plan import plan_text
    from toppo.specs.grid import Cell

    try:  # Snakemake's DAG object: not a documented API, so a change there costs the plan only
        jobs = [j for j in workflow.dag.needrun_jobs() if j.rule.name == "train"]
    except Exception as exc:
        print(f"(no plan: cannot list this run's jobs: {type(exc).__name__}: {exc})", file=sys.stderr)
        return
    cells = [Cell(j.wildcards.benchmark, j.wildcards.reward, j.wildcards.variant, int(j.wildcards.seed))
             for j in jobs]
    if not cells:
        return
    local = workflow.local_exec
    gpu = DEVICE != "cpu" and (not local or _local_gpu())
    text = plan_text(GRID, cells, gpu=gpu, cores=workflow.cores if local else None,
                     gpus=workflow.global_resources.get("gpu") if local else None,
                     configfiles=[os.path.relpath(f) for f in workflow.config_settings.configfiles])
    print(text, file=sys.stderr, flush=True)


def _local_gpu():
    """Whether the trainer would see a GPU on this machine (device auto picks CUDA then)."""
    import torch

    return torch.cuda.is_available()
