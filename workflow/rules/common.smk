"""The grid of cells from the validated config, and each cell's trainer arguments.

Checks what the JSON schema cannot know: variant names (toppo.variants.VARIANTS), keys of
trainer_overrides (toppo.config.TrainConfig fields), that every benchmark in the grid has a
budget and resources, and that each (benchmark, reward, variant) resolves to a valid
TrainConfig, so a bad value fails at start and not hours into a job.
"""

import re
import shlex
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

BASE = Path(workflow.basedir)  # repository root: the top-level Snakefile's folder
if str(BASE) not in sys.path:
    sys.path.insert(0, str(BASE))

from toppo.config import FIELD_TYPES, ConfigError, cli_value, parse_value  # noqa: E402
from toppo.variants import VARIANTS, resolve  # noqa: E402

# Jobs are scripts (workflow/scripts/) run with the Python that runs Snakemake, or the conda
# env's under --use-conda; they put this checkout on PYTHONPATH for `toppo` and `analysis`.
BASELINES = str(BASE / "analysis" / "data" / "baselines.csv")


def config_error(msg):
    return WorkflowError(f"Invalid config: {msg}")


# ------------------------------------------------------------------ settings
SCALE = config["scale"]
DEVICE = config["device"]
BUDGETS = config["budgets"]
JOB_RESOURCES = config["resources"]
RUNS = f"results/runs/{SCALE}"  # one folder per cell below this
OUT = f"results/{SCALE}"  # per-scale aggregates, resolved config and logs
# The report (tables, figures, reproduction report): the paper scale's at the top level, as
# the documented `snakemake results/table3.tex` asks; every other scale's under its own OUT,
# so scales never mix (a smoke run cannot overwrite the committed CPU study's report).
# ELSEWHERE: the other place, where asking for a report file is an error naming the right
# path (rule misplaced_report).
PAPER_SCALE = "paper"
REPORT, ELSEWHERE = ("results", OUT) if SCALE == PAPER_SCALE else (OUT, "results")

# Keys the workflow sets itself, per cell or per job.
WORKFLOW_KEYS = {
    "benchmark": "the grid's benchmarks",
    "reward_version": "the grid's reward_versions",
    "seed": "the grid's seeds",
    "total_steps": "budgets",
    "device": "device",
    "torch_threads": "resources.<benchmark>.threads",
    "cores": "resources.<benchmark>.threads",
}


def parse_overrides(mapping, where):
    """``{key: value}`` -> the same, parsed as the trainer parses its ``key=value`` arguments;
    a workflow-set or unknown key, or a bad value, is an error naming ``where.key``."""
    typed = {}
    for key, value in mapping.items():
        if key in WORKFLOW_KEYS:
            raise config_error(
                f"{where}.{key}: set by the workflow from {WORKFLOW_KEYS[key]}; set it there instead"
            )
        if key not in FIELD_TYPES:
            raise config_error(
                f"{where}.{key}: unknown trainer key; known keys: "
                + ", ".join(sorted(set(FIELD_TYPES) - set(WORKFLOW_KEYS)))
            )
        try:
            typed[key] = parse_value(key, cli_value(value))
        except ConfigError as exc:
            raise config_error(f"{where}.{key}: {exc}") from None
    return typed


# trainer_overrides apply to every cell; benchmark_overrides.<benchmark> on top of them to
# that benchmark's cells. OVERRIDES[benchmark]: the merged raw values, TYPED_OVERRIDES: the
# same parsed as the trainer parses them.
_GLOBAL = config.get("trainer_overrides", {})
_TYPED_GLOBAL = parse_overrides(_GLOBAL, "trainer_overrides")
OVERRIDES = {}
TYPED_OVERRIDES = {}
for _bench in ("MT10", "MT50"):
    _own = config.get("benchmark_overrides", {}).get(_bench, {})
    OVERRIDES[_bench] = {**_GLOBAL, **_own}
    TYPED_OVERRIDES[_bench] = {**_TYPED_GLOBAL, **parse_overrides(_own, f"benchmark_overrides.{_bench}")}


def override_args(benchmark):
    """The cell's overrides as sorted ``key=value`` trainer arguments."""
    return [f"{k}={cli_value(v)}" for k, v in sorted(OVERRIDES[benchmark].items())]


def seeds_of(spec):
    """A count n means seeds 0..n-1; a list is taken as given."""
    return list(range(spec)) if isinstance(spec, int) else sorted(spec)


# ------------------------------------------------------------------ the grid
_cells = set()
for _group in config["grid"]:
    for _variant in _group["variants"]:
        if _variant not in VARIANTS:
            raise config_error(
                f"grid group '{_group['name']}': unknown variant '{_variant}'; "
                f"known variants (toppo.variants): {', '.join(VARIANTS)}"
            )
    for _bench in _group["benchmarks"]:
        for _table, _what in ((BUDGETS, "budgets"), (JOB_RESOURCES, "resources")):
            if _bench not in _table:
                raise config_error(
                    f"{_what}.{_bench}: missing, and grid group '{_group['name']}' uses {_bench}"
                )
    for _bench in _group["benchmarks"]:
        for _reward in _group["reward_versions"]:
            for _variant in _group["variants"]:
                for _seed in seeds_of(_group["seeds"]):
                    _cells.add((_bench, _reward, _variant, _seed))

# Unique cells, each trained once however many groups list it.
CELLS = sorted(_cells)


def resolved_config(benchmark, reward, variant, seed):
    """The TrainConfig the trainer will build for this cell (same parsing, same defaults)."""
    if benchmark not in BUDGETS:
        raise config_error(f"budgets.{benchmark}: missing")
    return resolve(
        variant,
        {
            **TYPED_OVERRIDES[benchmark],
            "benchmark": benchmark,
            "reward_version": reward,
            "seed": int(seed),
            "total_steps": BUDGETS[benchmark],
            "device": DEVICE,
        },
    )


for _bench, _reward, _variant in sorted({c[:3] for c in CELLS}):
    try:
        resolved_config(_bench, _reward, _variant, 0)
    except ConfigError as exc:
        raise config_error(f"{exc} (variant {_variant}, {_bench}-{_reward})") from None


# The report: section passed the shared schema (Snakefile's validate); its variant names are
# checked here as `python -m analysis` checks them (analysis.check_report).
from analysis import check_report  # noqa: E402

try:
    check_report(config["report"], "config")
except ValueError as exc:
    raise config_error(str(exc)) from None


# ------------------------------------------------------------------ no orphan jobs
# SIGINT/SIGTERM sent to Snakemake alone first stop its jobs' shells (toppo.procs), so a
# training job's script stops its trainer instead of Snakemake waiting for it.
from toppo.procs import stop_children_on_signals  # noqa: E402

stop_children_on_signals()


# The merged config as analysis reads it (`retrain` only steers training jobs).
EFFECTIVE_CONFIG = {k: v for k, v in config.items() if k != "retrain"}


# ------------------------------------------------------------------ paths
def run_dir(benchmark, reward, variant, seed):
    return f"{RUNS}/{benchmark}-{reward}/{variant}/seed{seed}"


RUN_DIRS = [run_dir(*c) for c in CELLS]
GROUPS = sorted({(b, r) for b, r, _, _ in CELLS})
AGGREGATES = [f"{OUT}/aggregate/{b}-{r}.csv" for b, r in GROUPS]


def _report_names():
    """The report's files relative to REPORT, by rule: the names `python -m analysis` writes
    (analysis.tables.TABLE_FILES, analysis.figures.FIGURE_NAMES in each of FIGURE_FORMATS,
    analysis.reproduction.OUTPUT_FILES), so a name added there is a new output here."""
    from analysis.figures import FIGURE_FORMATS, FIGURE_NAMES
    from analysis.reproduction import OUTPUT_FILES
    from analysis.tables import TABLE_FILES

    return {
        "tables": [f"{name}.tex" for name in TABLE_FILES],
        "figures": [f"figures/{name}.{ext}" for name in FIGURE_NAMES for ext in FIGURE_FORMATS],
        "reproduction": list(OUTPUT_FILES),
    }


REPORT_NAMES = _report_names()
TABLES, FIGURES, REPRODUCTION = (
    [f"{REPORT}/{name}" for name in REPORT_NAMES[kind]]
    for kind in ("tables", "figures", "reproduction")
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


# Variant names contain '_' and '-'; listing them keeps every path unambiguous.
wildcard_constraints:
    benchmark="MT10|MT50",
    reward="v1|v2",
    variant="|".join(sorted(VARIANTS, key=len, reverse=True)),
    seed="0|[1-9][0-9]*",


# ------------------------------------------------------------------ per-cell job settings
def train_args(wildcards):
    """Everything that decides the cell's result, as trainer CLI arguments (a params entry,
    so changing a budget or override re-runs exactly the cells it changes)."""
    if wildcards.benchmark not in BUDGETS:
        raise config_error(f"budgets.{wildcards.benchmark}: missing")
    args = [
        "--variant", wildcards.variant,
        "--benchmark", wildcards.benchmark,
        "--reward-version", wildcards.reward,
        "--seed", wildcards.seed,
        "--total-steps", str(BUDGETS[wildcards.benchmark]),
        *override_args(wildcards.benchmark),
    ]  # fmt: skip
    return " ".join(shlex.quote(a) for a in args)


def cell_config(wildcards):
    return resolved_config(wildcards.benchmark, wildcards.reward, wildcards.variant, wildcards.seed)


def job_resource(name):
    def get(wildcards):
        if wildcards.benchmark not in JOB_RESOURCES:
            raise config_error(f"resources.{wildcards.benchmark}: missing")
        return JOB_RESOURCES[wildcards.benchmark][name]

    return get


GPUS_PER_JOB = 1 if DEVICE in ("auto", "cuda") else 0
