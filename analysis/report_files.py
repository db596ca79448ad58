"""The report's file names, by the part of ``python -m analysis`` that writes them: the
tables, the figures (each in every format), the reproduction report and the reference check.

They are the workflow's outputs too (workflow/rules/common.smk), read on every ``snakemake``
call, each job's on a cluster included: this module imports nothing, where the modules that
write the files load pandas, scipy, rliable and matplotlib (about 1.2 s of CPU per call).
"""

TABLE_FILES = ("table3", "ablation_cumulative", "ablation_combiners", "protocols", "per_task", "diagnosis")
FIGURE_NAMES = ("curves", "worst_k", "gradnorm_spread", "heatmap", "diagnosis")
# Every figure is written in these formats, ``name.pdf`` and ``name.png`` (the workflow's
# outputs are FIGURE_NAMES x FIGURE_FORMATS), with these savefig arguments.
# No creation date in the PDF: the same logs render the same bytes (a re-render is no diff).
FIGURE_FORMATS = {"pdf": {"metadata": {"CreationDate": None}}, "png": {"dpi": 150}}
REPRODUCTION_FILES = ("reproduction.tex", "reproduction.csv")
REFERENCE_CHECK_FILES = ("reference_check.tex", "reference_check.csv", "figures/reference_check.pdf",
                         "figures/reference_check.png")
