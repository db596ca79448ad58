"""The run-keeping around the algorithm: everything the trainer needs to run for days, on many
cores, and be stopped and resumed anywhere, none of which decides a number it logs.

    rundir      a run directory's state: complete?, resume candidates, setting a run aside
    io          the run directory's lock, checkpoints written atomically, provenance
    numerics    the numerics mode put in place before torch loads, and the machine described
    envworkers  the training envs stepped in worker processes (shared memory, pipes)
    evalworker  evaluations in worker processes while training goes on, in step order
    livelog     live curves (TensorBoard, Weights & Biases) beside the CSV logs
    procs       process lifetime, the one copy of it: no worker outlives its trainer, no
                trainer outlives its workflow job, SIGTERM ends a trainer with one line

The algorithm (``toppo.algo``) imports nothing from here; the trainer (``toppo.trainer``,
``toppo.train``) joins the two. What a run is (its config, names, file format) is
``toppo.specs``.
"""
