"""One training job per cell: `python -m toppo.train` into the cell's run directory
(workflow/scripts/train_cell.py runs it, its output and the exact command in train.log).

checkpoints/latest.pt is not an output, so Snakemake never deletes it: a job that failed, was
killed at its time limit or is retried resumes from it. A finished checkpoint of the same
config makes a rerun cheap (the trainer rewrites the logs from it); with `retrain: true`
(--config retrain=true) a finished checkpoint is moved to checkpoints/previous.pt first and
the cell trains from scratch. A checkpoint of another config is set aside by the trainer.
"""


rule train:
    output:
        eval=f"{RUNS}/{{benchmark}}-{{reward}}/{{variant}}/seed{{seed}}/eval.csv",
        manifest=f"{RUNS}/{{benchmark}}-{{reward}}/{{variant}}/seed{{seed}}/manifest.json",
        metrics=f"{RUNS}/{{benchmark}}-{{reward}}/{{variant}}/seed{{seed}}/train_metrics.csv",
        config=f"{RUNS}/{{benchmark}}-{{reward}}/{{variant}}/seed{{seed}}/config.yaml",
    log:
        f"{RUNS}/{{benchmark}}-{{reward}}/{{variant}}/seed{{seed}}/train.log",
    benchmark:
        f"{RUNS}/{{benchmark}}-{{reward}}/{{variant}}/seed{{seed}}/benchmark.tsv"
    params:
        # Rerun triggers: the result-deciding trainer arguments and the hash of the resolved
        # TrainConfig (which also changes when the variant's definition or a default does).
        # device, torch_threads and `retrain` are read from the config by the script and are
        # deliberately not params: changing them re-runs nothing.
        args=train_args,
        config_hash=lambda wc: cell_config(wc).config_hash(),
        num_updates=lambda wc: cell_config(wc).num_updates,
        run_dir=lambda wc: run_dir(wc.benchmark, wc.reward, wc.variant, wc.seed),
    threads: job_resource("threads")
    resources:
        mem_mb=job_resource("mem_mb"),
        runtime=job_resource("runtime"),
        gpu=GPUS_PER_JOB,
    conda:
        "../envs/toppo.yaml"
    script:
        "../scripts/train_cell.py"
