"""What a run is, in names and numbers: read by the trainer, the workflow and the analysis
alike. Imports no torch and nothing of the trainer: ``analysis`` depends on this layer alone.

    registry       every name the project knows: benchmarks, reward versions, combiners,
                   variants, their labels and groups
    config         TrainConfig: every hyperparameter, its default and its help; the config hash
    variants       a variant name resolved to a validated TrainConfig
    grid           the workflow config's grid: its cells, run directories and trainer configs
    schema         JSON-schema checks whose errors read as one line each
    logschema      the columns of a run directory's log tables
    runfiles       the run directory's format: its file names, and atomic writes
    cores          how a job's cores are split between env workers and evaluation workers
    numerics_mode  the numerics modes: their names, which one a process asks for, which one a
                   record ran in
"""
