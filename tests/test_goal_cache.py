"""toppo.algo.goal_cache: metaworld's generated goals read back the same as generated.

One MT10 task keeps it cheap (50 resets per generation); the cache wraps metaworld's own
``_make_tasks``, which MT10 and MT50 call with every task at once. The real generation is
checked against the cache's copy once; the cache's other paths run on a counting stand-in
for the generator."""

from __future__ import annotations

import os
import pickle
from collections import OrderedDict

import metaworld
import numpy as np
import pytest
from metaworld import _env_dict

from toppo.algo import goal_cache
from toppo.algo.goal_cache import cached_goals

NAMES = ["reach-v3"]
CLASSES = OrderedDict((n, _env_dict.MT10_V3[n]) for n in NAMES)
ARGS = {n: _env_dict.MT10_V3_ARGS_KWARGS[n] for n in NAMES}


def generate(seed: int | None = 3) -> list:
    """MT10's call of metaworld's _make_tasks (whatever ``metaworld._make_tasks`` is now)."""
    return metaworld._make_tasks(CLASSES, ARGS, metaworld._MT_OVERRIDE, seed=seed)


@pytest.fixture(scope="module")
def fresh() -> list:
    return generate()  # outside any cached_goals block: metaworld's own generation


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(goal_cache.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache" / "metaworld-goals"


@pytest.fixture
def generator(fresh, monkeypatch) -> list:
    """metaworld's generator replaced by one that counts its calls: ``fresh`` for seed 3,
    other goals (as Tasks of the same env) for other seeds."""
    calls = []

    def make_tasks(classes, args_kwargs, kwargs_override, seed=None):
        calls.append(seed)
        return fresh if seed == 3 else [metaworld.Task(t.env_name, pickle.dumps(seed)) for t in fresh]

    monkeypatch.setattr(metaworld, "_make_tasks", make_tasks)
    return calls


def files(cache) -> list:
    return sorted(cache.glob("*.pkl")) if cache.exists() else []


def test_goals_read_from_the_cache_are_the_generated_goals(fresh, cache, monkeypatch):
    state = np.random.get_state()[1].copy()
    with cached_goals("MT10"):
        first = generate()  # metaworld's generation, written
    assert first == fresh and len(first) == metaworld._N_GOALS
    [path] = files(cache)
    assert path.name.startswith("MT10-seed3-")

    def no_generation(*args, **kwargs):
        raise AssertionError("generated again")

    monkeypatch.setattr(metaworld, "_make_tasks", no_generation)
    with cached_goals("MT10"):
        again = generate()
    assert again == fresh  # Task(env_name, pickled goal data): the bytes themselves
    assert metaworld._make_tasks is no_generation  # restored after the block
    # numpy's global random state is what generation leaves behind: untouched
    assert np.array_equal(np.random.get_state()[1], state)


def test_each_seed_and_version_has_its_own_file(fresh, cache, generator, monkeypatch):
    with cached_goals("MT10"):
        assert generate(3) == fresh and generate(4) != fresh
        assert generate(3) == fresh and generate(4) != fresh
    assert generator == [3, 4] and len(files(cache)) == 2
    monkeypatch.setattr(goal_cache, "version", lambda name: "9.9.9")  # another metaworld
    with cached_goals("MT10"):
        assert generate(3) == fresh
    assert generator == [3, 4, 3] and len(files(cache)) == 3


def test_a_damaged_or_mismatched_file_is_generated_again(fresh, cache, generator):
    with cached_goals("MT10"):
        generate()
    [path] = files(cache)
    path.write_bytes(path.read_bytes()[:100])  # truncated
    with cached_goals("MT10"):
        assert generate() == fresh
    assert pickle.loads(path.read_bytes()) == fresh  # replaced
    path.write_bytes(pickle.dumps(fresh[:10]))  # readable, but not this call's list
    with cached_goals("MT10"):
        assert generate() == fresh
    assert pickle.loads(path.read_bytes()) == fresh and generator == [3, 3, 3]


def test_off_unseeded_and_unwritable_generate_without_a_file(fresh, tmp_path, generator, monkeypatch):
    monkeypatch.setenv(goal_cache.CACHE_ENV, "off")
    with cached_goals("MT10"):
        assert generate() == fresh
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(goal_cache.CACHE_ENV, str(blocker / "cache"))  # cannot be created
    with cached_goals("MT10"):
        assert generate() == fresh
    monkeypatch.setenv(goal_cache.CACHE_ENV, str(tmp_path / "cache"))
    with cached_goals("MT10"):
        generate(None)  # fresh entropy: nothing to keep
    assert generator == [3, 3, None] and not (tmp_path / "cache").exists()


def test_the_default_directory_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv(goal_cache.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert goal_cache.cache_dir() == tmp_path / "toppo"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert goal_cache.cache_dir() == tmp_path / "home" / ".cache" / "toppo"


def test_the_suite_runs_on_its_own_empty_cache():
    # tests/conftest.py points the whole run (the trainers it starts too) at a fresh directory
    assert "toppo-test-goals-" in os.environ[goal_cache.CACHE_ENV]
