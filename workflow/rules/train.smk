"""One training job per cell: workflow/scripts/train_cell.py writes the cell's resolved
TrainConfig (toppo.specs.grid.Grid.train_config) to a file beside the job's log and runs
`python -m toppo.train --config <that file>` into the cell's run directory, appending its output
and the exact command to the cell's train.log, attempt after attempt.

The outputs are `update()`d, not deleted before the job: the trainer decides, under the run
directory's lock, what to do with the run it finds (docs/design.md, run-directory
guarantees), so a job never loses a record. checkpoints/latest.pt is not an output: a job that
failed, was killed at its time limit or is retried resumes from it. A forced rerun of a
finished cell does nothing (the trainer finds it complete; with its logs gone but a finished
checkpoint, it rewrites them from the checkpoint); with `retrain:
true` (--config retrain=true) the finished run -- config, manifest, logs, checkpoints,
benchmark.tsv and a copy of train.log -- moves to superseded/<time>-<config>-retrain/ and the
cell trains from scratch. A run of another config is set aside the same way. (When a job
fails, Snakemake puts back the outputs it found; the next trainer sets them aside again or
rewrites them from the checkpoint, so the directory still never mixes two runs.)
"""

CELL_DIR = f"{RUNS}/{{benchmark}}-{{reward}}/{{variant}}/seed{{seed}}"


rule train:
    output:
        eval=update(f"{CELL_DIR}/eval.csv"),
        manifest=update(f"{CELL_DIR}/manifest.json"),
        metrics=update(f"{CELL_DIR}/train_metrics.csv"),
        config=update(f"{CELL_DIR}/config.yaml"),
    log:
        # this attempt's output; the cell's own train.log keeps every attempt (train_cell.py)
        f"{OUT}/logs/train/{{benchmark}}-{{reward}}/{{variant}}/seed{{seed}}.log",
    benchmark:
        f"{CELL_DIR}/benchmark.tsv"
    params:
        # Rerun trigger: the hash of the resolved TrainConfig, which changes with everything
        # that decides the result (a budget, an override, the variant's definition, a default).
        # The execution-only fields (device, threads, live curves), `numerics` and `retrain`
        # are not hashed and not params: changing them re-runs nothing.
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
