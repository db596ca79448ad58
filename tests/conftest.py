"""The suite's own goal cache (toppo.algo.goal_cache): empty at the start of every run, shared
by the xdist workers and every trainer they start, removed at the end. So a run on a
developer's machine costs what it costs on a clean CI machine, and never reads or writes the
user's cache."""

from __future__ import annotations

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


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(items) -> None:
    """With ``--dist loadgroup`` (pyproject.toml) xdist hands out tests one by one, except
    those of one group, which go to one worker together. A test that uses a fixture shared
    beyond it (module or session scope: built envs, a rendered report) is put in its
    module's group, so the fixture is built once; every other test is its own unit, and the
    two workers end together instead of one waiting for the other's last file."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)  # doctests and the like have none
        if info and any(defs[-1].baseid and defs[-1].scope != "function"  # the suite's own
                        for defs in info.name2fixturedefs.values()):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
