"""A report from what has finished (python -m analysis ... --partial; analysis.partial):
`snakemake partial_report` renders the tables, the reproduction report and the figures under
{report}/partial/ from the cells evaluated so far, while the grid trains.

It never schedules training: its inputs are not the cells' outputs but the checkpoints that
exist (checkpoints/latest.pt, rewritten after every update, is no rule's output), so it is
out of date, and re-rendered, exactly when a cell has trained further. While the grid's own
Snakemake holds the working directory, run it with --nolock (it writes only below
{report}/partial/), or call `python -m analysis tables --partial` directly.
"""

from analysis.partial import PARTIAL_CELLS

PARTIAL = f"{REPORT}/partial"
PARTIAL_OUTPUTS = {
    "tables": [f"{PARTIAL}/{name}" for name in REPORT_NAMES["tables"]],
    "reproduction": [f"{PARTIAL}/{name}" for name in REPORT_NAMES["reproduction"]],
    "reference_check": [f"{PARTIAL}/{name}" for name in REPORT_NAMES["reference_check"]],
    "figures": [f"{PARTIAL}/{name}" for name in REPORT_NAMES["figures"]],
}


rule partial_report:
    input:
        checkpoints=existing_checkpoints,
        config=rules.resolved_config.output[0],
        baselines=BASELINES,
    output:
        *PARTIAL_OUTPUTS["tables"],
        *PARTIAL_OUTPUTS["reproduction"],
        *PARTIAL_OUTPUTS["reference_check"],
        *PARTIAL_OUTPUTS["figures"],
        f"{PARTIAL}/{PARTIAL_CELLS}",
        f"{PARTIAL}/figures/{PARTIAL_CELLS}",
    log:
        f"{OUT}/logs/partial_report.log",
    params:
        # each command and the folder it writes (python -m analysis ... --partial)
        commands={"tables": PARTIAL, "reproduction": PARTIAL, "reference-check": PARTIAL,
                  "figures": f"{PARTIAL}/figures"},
        partial=True,
        runs=RUN_DIRS,
        scale=SCALE,
    conda:
        "../envs/toppo.yaml"
    script:
        "../scripts/analysis_cli.py"
