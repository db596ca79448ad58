"""Meta-World's generated benchmark goals, kept on disk and read back the same, byte for byte.

``gym.make_vec("Meta-World/MT10", seed=s)`` generates the benchmark first: metaworld's
``_make_tasks`` builds one env per task and resets it 50 times under ``np.random.seed(s)``
to draw the task's 50 goals. That is most of building MT10's envs (about 9 of 13 s on one
core here) and MT50's (about 45 s), and every process that builds a cell's envs repeats it
for the same (benchmark, seed): each cell's trainer, each resume after a kill or a SLURM
time limit, ``verify``, the tests' many short runs.

``cached_goals()`` wraps the factory call: metaworld's ``_make_tasks`` is replaced, for that
call only, by one that returns the list it returned before for the same arguments, read from
``<cache dir>/metaworld-goals/``, and otherwise runs the original and writes its result
there. The rest of the factory (the envs, the wrappers, the per-task constructors) is
metaworld's own, unchanged. The generated list is a pure function of its arguments and the
installed metaworld, mujoco and numpy (numpy's legacy global ``RandomState``; the original
restores that state when it returns, so skipping it leaves the same global state behind):
the file name hashes all of them, so another version never reads this one's goals.
``tests/test_goal_cache.py`` checks that a cached list equals a freshly generated one.

The cache directory is ``$TOPPO_CACHE_DIR``, else ``$XDG_CACHE_HOME/toppo``, else
``~/.cache/toppo``; ``TOPPO_CACHE_DIR=off`` generates every time. A file is written
atomically (a finished file or none, so concurrent builders are safe), and an unreadable
or mismatched one is generated again and replaced. Where the directory cannot be written,
the goals are generated as without a cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import metaworld
import mujoco
import numpy as np

from toppo.specs.runfiles import write_bytes_atomic

CACHE_ENV = "TOPPO_CACHE_DIR"


def cache_dir() -> Path | None:
    """Where generated goals are kept (None: ``TOPPO_CACHE_DIR=off``)."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit == "off":
        return None
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "toppo"


def _key(classes: dict, args_kwargs: dict, kwargs_override: dict, seed: int | None) -> str:
    """A hash of everything the generated list depends on."""
    parts = (list(classes), [(name, args_kwargs[name]) for name in classes], sorted(kwargs_override.items()),
             seed, metaworld._N_GOALS, version("metaworld"), mujoco.__version__, np.__version__)
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def _fits(tasks: Any, classes: dict) -> bool:
    """``tasks`` is a list of ``_N_GOALS`` metaworld Tasks per class, in ``classes``' order."""
    names = [name for name in classes for _ in range(metaworld._N_GOALS)]
    return (isinstance(tasks, list) and len(tasks) == len(names)
            and all(isinstance(t, metaworld.Task) and t.env_name == n for t, n in zip(tasks, names)))


@contextlib.contextmanager
def cached_goals(label: str) -> Iterator[None]:
    """Inside this block, metaworld's benchmark goals come from the cache where they are
    there (``label``, e.g. ``MT10``, names the file for people; the hash decides)."""
    root = cache_dir()
    if root is None:
        yield
        return
    original = metaworld._make_tasks

    def make_tasks(classes, args_kwargs, kwargs_override, seed=None):
        if seed is None:  # goals from fresh entropy: nothing to keep
            return original(classes, args_kwargs, kwargs_override, seed=seed)
        path = root / "metaworld-goals" / f"{label}-seed{seed}-{_key(classes, args_kwargs, kwargs_override, seed)}.pkl"
        try:
            tasks = pickle.loads(path.read_bytes())
            if _fits(tasks, classes):
                return tasks
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError, TypeError):
            pass  # missing or unreadable: generated below
        tasks = original(classes, args_kwargs, kwargs_override, seed=seed)
        with contextlib.suppress(OSError):  # an unwritable cache is no cache
            write_bytes_atomic(path, pickle.dumps(tasks, protocol=pickle.HIGHEST_PROTOCOL))
        return tasks

    metaworld._make_tasks = make_tasks
    try:
        yield
    finally:
        metaworld._make_tasks = original
