"""TOPPO reproduction: train every (benchmark, reward, variant, seed) cell, then tabulate.

    snakemake --cores all results/table3.tex                              # paper grid
    snakemake --cores all --configfile config/smoke.yaml results/table3.tex  # small CPU scale

Data flow (docs/design.md): config -> results/runs/{scale}/... (one training job per cell)
-> results/{scale}/aggregate/*.csv -> results/*.tex, results/figures/*.
"""

import os

from snakemake.utils import min_version, validate

min_version("9.0")


# The workflow's own config, found from any working directory (tests run with --directory).
configfile: os.path.join(workflow.basedir, "config", "config.yaml")


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"


rule all:
    input:
        TABLES,
        FIGURES,
        AGGREGATES,
        "results/reproduction.tex",
        "results/reproduction.csv",
    default_target: True


include: "workflow/rules/train.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/figures.smk"


# Post-processing is light: on SLURM it runs where Snakemake runs, not as cluster jobs.
localrules:
    all,
    resolved_config,
    aggregate,
    tables,
    reproduction,
    figures,
