"""Figures from every run directory of the scale (python -m analysis figures)."""


rule figures:
    input:
        evals=cell_files(["eval.csv"]),
        metrics=cell_files(["train_metrics.csv"]),
        manifests=cell_files(["manifest.json"]),
        config=rules.resolved_config.output[0],
        baselines=BASELINES,
    output:
        FIGURES,
    log:
        f"{OUT}/logs/figures.log",
    params:
        command="figures",
        runs=RUN_DIRS,
        scale=SCALE,
    conda:
        "../envs/toppo.yaml"
    script:
        "../scripts/analysis_cli.py"
