"""The suite's own goal cache (toppo.algo.goal_cache): empty at the start of every run, shared
by the xdist workers and every trainer they start, removed at the end. So a run on a
developer's machine costs what it costs on a clean CI machine, and never reads or writes the
user's cache."""

from __future__ import annotations

import os
import shutil
import tempfile

CACHE_ENV = "TOPPO_CACHE_DIR"  # toppo.algo.goal_cache.CACHE_ENV (not imported: no metaworld here)
_OWNED: list[str] = []


def pytest_configure(config) -> None:
    if hasattr(config, "workerinput"):  # an xdist worker: the controller set it
        return
    _OWNED.append(tempfile.mkdtemp(prefix="toppo-test-goals-"))
    os.environ[CACHE_ENV] = _OWNED[0]


def pytest_unconfigure(config) -> None:
    for path in _OWNED:
        shutil.rmtree(path, ignore_errors=True)
