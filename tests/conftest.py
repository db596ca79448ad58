"""The order in which pytest-xdist hands out the test files (`--dist loadfile`: whole files,
to whichever of the two workers is free): the files that take longest first, so that no two
long files are left to run last on one worker while the other idles. pytest-xdist's own
order (most tests first; `--no-loadscope-reorder` in pyproject.toml turns it off) put these
files, long runs of a few tests each, last. Every other file keeps pytest's order after them.
"""

# longest first, from `pytest --durations` of the whole suite (docs/development.md)
LONGEST_FIRST = (
    "test_slurm.py",
    "test_envworkers.py",
    "test_workflow.py",
    "test_train_e2e.py",
    "test_numerics.py",
    "test_eval_overlap.py",
    "test_rundir.py",
    "test_envpool_parity.py",
    "test_verify.py",
    "test_retrain.py",
    "test_livelog.py",
    "test_envs_eval.py",
)


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest in order
