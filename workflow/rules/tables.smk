"""LaTeX tables from every run directory of the scale (python -m analysis tables)."""


rule resolved_config:
    output:
        f"{OUT}/config.yaml",
    log:
        f"{OUT}/logs/resolved_config.log",
    params:
        # The merged config (config/config.yaml + --configfile + --config) that analysis reads
        # its `report:` section from; rewritten whenever it changes.
        config=EFFECTIVE_CONFIG,
    conda:
        "../envs/toppo.yaml"
    script:
        "../scripts/write_config.py"


rule tables:
    input:
        evals=cell_files(["eval.csv"]),
        manifests=cell_files(["manifest.json"]),
        config=rules.resolved_config.output[0],
        baselines=BASELINES,
    output:
        TABLES,
    log:
        f"{OUT}/logs/tables.log",
    params:
        command="tables",
        runs=RUN_DIRS,
        scale=SCALE,
    conda:
        "../envs/toppo.yaml"
    script:
        "../scripts/analysis_cli.py"


rule reproduction:
    input:
        evals=cell_files(["eval.csv"]),
        manifests=cell_files(["manifest.json"]),
        config=rules.resolved_config.output[0],
        baselines=BASELINES,
    output:
        # The paper's numbers (the report's paper methods in the baselines file) next to ours
        # under the same protocol, with a 95% bootstrap CI and a verdict (analysis.reproduction).
        REPRODUCTION,
    log:
        f"{OUT}/logs/reproduction.log",
    params:
        command="reproduction",
        runs=RUN_DIRS,
        scale=SCALE,
    conda:
        "../envs/toppo.yaml"
    script:
        "../scripts/analysis_cli.py"


rule reference_check:
    input:
        evals=cell_files(["eval.csv"]),
        manifests=cell_files(["manifest.json"]),
        config=rules.resolved_config.output[0],
        baselines=BASELINES,
    output:
        # TOPPO's gain over the paper's MT-PPO and over the reference MT-PPO, with 95% CIs
        # and verdicts, and its figure (analysis.reference_check; the .tex comes first: the
        # script writes into its folder)
        REFERENCE_CHECK,
    log:
        f"{OUT}/logs/reference_check.log",
    params:
        command="reference-check",
        runs=RUN_DIRS,
        scale=SCALE,
    conda:
        "../envs/toppo.yaml"
    script:
        "../scripts/analysis_cli.py"
