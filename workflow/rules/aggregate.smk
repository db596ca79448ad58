"""One CSV per (benchmark, reward version): every cell's evaluation rows with its
provenance (config hash, git commit, device, steps, wall time). results/runs/ holds
checkpoints and is not kept in git; these small files are the shareable record of a scale."""


rule aggregate:
    input:
        evals=lambda wc: cell_files(["eval.csv"], group_cells(wc)),
        manifests=lambda wc: cell_files(["manifest.json"], group_cells(wc)),
    output:
        f"{OUT}/aggregate/{{benchmark}}-{{reward}}.csv",
    log:
        f"{OUT}/logs/aggregate/{{benchmark}}-{{reward}}.log",
    params:
        scale=SCALE,
        runs=lambda wc: [run_dir(*c) for c in group_cells(wc)],
    conda:
        "../envs/toppo.yaml"
    script:
        "../scripts/aggregate.py"
