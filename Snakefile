"""TOPPO reproduction: train every (benchmark, reward, variant, seed) cell, then tabulate.

    snakemake --cores all results/table3.tex                                    # paper grid
    snakemake --cores all results/smoke/table3.tex --configfile config/smoke.yaml  # small CPU scale

Data flow (docs/design.md): config -> results/runs/{scale}/... (one training job per cell)
-> results/{scale}/aggregate/*.csv -> the report: results/*.tex, results/figures/*,
results/reproduction.* for the paper scale, the same under results/{scale}/ for any other
(common.smk, REPORT), so scales never mix.
"""

from snakemake.utils import min_version

min_version("9.0")


# The config (config/config.yaml, found from any working directory, with the --configfile
# files merged over it), checked against workflow/schemas/config.schema.yaml with one line
# per error; the grid of cells built from it.
include: "workflow/rules/common.smk"


# Before jobs run (not in a dry run): the plan of the training jobs (common.smk, print_plan).
onstart:
    print_plan()



rule all:
    input:
        TABLES,
        FIGURES,
        AGGREGATES,
        REPRODUCTION,
        REFERENCE_CHECK,
    default_target: True


# The report's files where this scale does not write them: an error naming the right path
# (common.smk, misplaced_report), raised while Snakemake builds the DAG; never a job.
rule misplaced_report:
    input:
        misplaced_report,
    output:
        f"{ELSEWHERE}/{{report_file}}",
    wildcard_constraints:
        report_file=REPORT_FILE,


include: "workflow/rules/train.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/partial.smk"


# Post-processing is light: on SLURM it runs where Snakemake runs, not as cluster jobs.
localrules:
    all,
    resolved_config,
    aggregate,
    tables,
    reproduction,
    reference_check,
    figures,
    partial_report,
