"""The suite's own goal cache (toppo.algo.goal_cache): empty at the start of every run, shared
by the xdist workers and every trainer they start, removed at the end. So a run on a
developer's machine costs what it costs on a clean CI machine, and never reads or writes the
user's cache."""

from __future__ import annotations

import gc
import os
import shutil
import tempfile

import pytest

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


# Python's cyclic garbage collector against the suite's imports (torch, pandas, matplotlib,
# MuJoCo, metaworld, Snakemake's API: millions of objects that live to the end): off while the
# test modules are imported, those objects then frozen (gc.freeze: left out of every later
# collection), and the same again for what lives at the end. Collecting took 4.8 s of CPU
# with the collector on, 3.7 s with it off (each xdist worker collects everything); an
# xdist worker's exit, which the controller waits for after the last test, took 1-2 s of
# final collection.
def pytest_sessionstart(session) -> None:
    if not session.config.pluginmanager.has_plugin("dsession"):  # not xdist's controller: collects
        gc.disable()


def pytest_collection_finish(session) -> None:
    gc.freeze()
    gc.enable()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session) -> None:
    gc.freeze()
