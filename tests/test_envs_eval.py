"""Real MT10 envs: evaluation covers every goal once, is repeatable, and copies split goals;
building them shows every warning but gymnasium's Box precision ones; stepping the envs
directly (``step_envs``) gives what gymnasium's vector env gives, array for array."""

import os
import pickle
import re
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.spaces import Box
from metaworld.policies import ENV_POLICY_MAP

from toppo.algo.envs import (
    EnvCopies,
    StepBatch,
    advance_goal_cycle,
    benchmark_env_fns,
    eval_env_fns,
    make_envs,
    make_eval_envs,
    place_copies,
    quiet_box_precision_warnings,
    reduce_step,
    train_env_fns,
)
from toppo.algo.evaluation import evaluate
from toppo.algo.goal_cache import CACHE_ENV


@pytest.fixture(scope="module")
def built_envs():
    """The envs, and every warning their building raised (each one shown: "always")."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # 5-step episodes keep 50 evaluation episodes per task cheap; two copies of each
        # evaluation env split its goals as five would, and cost 30 env builds fewer
        train, ev = make_envs("MT10", "v2", seed=7, envs_per_task=2, eval_envs_per_task=2,
                              async_envs=False, max_episode_steps=5)
    yield train, ev, caught
    train.close()
    ev.close()


@pytest.fixture(scope="module")
def short_envs(built_envs):
    return built_envs[:2]


def _shown(caught) -> list[tuple[str, str]]:
    """(module file's name, message without gymnasium's colour codes) of each warning."""
    return [(w.filename.rsplit("/", 1)[-1], re.sub(r"\x1b\[[0-9;]*m", "", str(w.message)))
            for w in caught]


def test_building_envs_hides_the_box_precision_warnings_and_nothing_else(built_envs):
    _, ev, caught = built_envs
    assert _shown(caught) == []  # 20 training and 20 evaluation envs, two warnings each before
    # the source does warn: one env of the same constructors, built without the filter
    with warnings.catch_warnings(record=True) as raw:
        warnings.simplefilter("always")
        ev.copies[0].env_fns[0]().close()
    assert _shown(raw) == [
        ("box.py", "WARN: Box low's precision lowered by casting to float32, current low.dtype=float64"),
        ("box.py", "WARN: Box high's precision lowered by casting to float32, current high.dtype=float64")]
    # and with the filter every other warning still shows: the same module's other messages
    # (float16, a cast), the same message from another module
    with warnings.catch_warnings(record=True) as others:
        warnings.simplefilter("always")
        quiet_box_precision_warnings()
        Box(np.zeros(2, np.float32), np.ones(2, np.float32), dtype=np.float16)
        Box(np.zeros(2), np.ones(2), dtype=np.float32).contains([0.5, 0.5])  # only the cast shows
        warnings.warn("Box low's precision lowered by casting to float32 (not gymnasium's)", UserWarning)
    assert _shown(others) == [
        ("box.py", "WARN: Box low's precision lowered by casting to float16, current low.dtype=float32"),
        ("box.py", "WARN: Box high's precision lowered by casting to float16, current high.dtype=float32"),
        ("box.py", "WARN: Casting input x to numpy array."),
        ("test_envs_eval.py", "Box low's precision lowered by casting to float32 (not gymnasium's)")]


def _goal(env) -> tuple:
    return tuple(np.round(env.unwrapped._last_rand_vec, 8))


def test_fifty_eval_episodes_visit_each_of_the_fifty_goals_once(short_envs):
    _, ev = short_envs
    seen: dict[int, list] = {k: [] for k in range(ev.num_tasks)}
    singles = ev.single_envs()
    for i, env in enumerate(singles):  # record the goal of every episode the evaluator starts
        orig = env.reset

        def reset(*a, _orig=orig, _env=env, _k=i % ev.num_tasks, **kw):
            out = _orig(*a, **kw)
            seen[_k].append(_goal(_env))
            return out
        env.reset = reset
    evaluate(lambda obs, task: np.zeros((len(obs), 4)), ev, ev.get_state(), episodes=50)
    for env in singles:
        del env.reset
    for k in range(ev.num_tasks):
        tasks = singles[k].get_wrapper_attr("tasks")
        all_goals = {tuple(np.round(pickle.loads(t.data)["rand_vec"], 8)) for t in tasks}
        assert len(all_goals) == 50
        # each copy resets once more after its last counted episode; the counted ones:
        assert all_goals <= set(seen[k])


def test_evaluation_is_repeatable_and_uses_mean_actions_of_experts(short_envs):
    train, ev = short_envs
    snap = ev.get_state()
    names = ev.task_names
    policies = [ENV_POLICY_MAP[n]() for n in names]
    act = lambda obs, task: np.stack([policies[k].get_action(o[:39]) for o, k in zip(obs, task)])  # noqa: E731
    a = evaluate(act, ev, snap, episodes=10)
    b = evaluate(act, ev, snap, episodes=10)
    np.testing.assert_array_equal(a.success_rate, b.success_rate)
    np.testing.assert_array_equal(a.mean_return, b.mean_return)
    assert a.success_rate.shape == (10,) and a.episodes == 10
    assert a.env_steps <= 10 * 10 * 5  # finished envs stop stepping


def test_training_copies_share_goals_but_not_random_streams(short_envs):
    train, _ = short_envs
    assert train.num_envs == 20 and list(train.task_ids[:12]) == list(range(10)) + [0, 1]
    c0, c1 = train.copies
    g0 = {tuple(np.round(pickle.loads(t.data)["rand_vec"], 8)) for t in c0.envs[0].get_wrapper_attr("tasks")}
    g1 = {tuple(np.round(pickle.loads(t.data)["rand_vec"], 8)) for t in c1.envs[0].get_wrapper_attr("tasks")}
    assert g0 == g1
    obs = train.reset()
    assert obs.shape == (20, 49)
    assert not np.array_equal(obs[0], obs[10]) or _goal(c0.envs[0]) != _goal(c1.envs[0])


def test_env_state_round_trip_reproduces_rollouts(short_envs):
    train, _ = short_envs
    state = train.get_state()
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, size=(12, train.num_envs, 4))

    def roll():
        obs = [train.reset()]
        for a in actions:
            obs.append(train.step(a).obs)
        return np.stack(obs)
    first = roll()
    train.set_state(state)
    np.testing.assert_array_equal(roll(), first)


def _goals_of_next_resets(vec, n: int) -> list[list[tuple]]:
    out = []
    for _ in range(n):
        vec.reset()
        out.append([_goal(env) for env in vec.envs])
    return out


@pytest.mark.slow
def test_placing_a_copy_in_the_goal_cycle_equals_running_the_resets(short_envs):
    """At each offset, placed is where the reset loop (evaluation's old way) gets: the same
    checkpoint and, from there, the same next 51 goals, across a reshuffle of the 50-goal
    list. The offsets' loops are one loop, its checkpoints taken on the way."""
    _, ev = short_envs
    snap = ev.get_state()
    vec = ev.copies[0]
    vec.call("load_checkpoint", list(snap[0]))
    offsets = (1, 50, 101)
    looped, loop_goals = {}, []  # the checkpoint at each offset; the goals of each reset
    for resets in range(1, max(offsets) + 52):
        loop_goals += _goals_of_next_resets(vec, 1)
        if resets in offsets:
            looped[resets] = vec.call("get_checkpoint")

    for offset in offsets:
        placed = place_copies([snap[0]], [offset])[0]
        assert [ck for _, ck in placed] == [ck for _, ck in looped[offset]]  # pointer, order, rng: exact
        assert placed != list(snap[0])
        vec.call("load_checkpoint", list(placed))
        assert _goals_of_next_resets(vec, 51) == loop_goals[offset:offset + 51], offset


def test_placement_refuses_an_env_that_does_not_sample_goals():
    ck = {"tasks": [1, 2], "current_task_idx": 0, "sample_tasks_on_reset": False,
          "env_rng_state": {"np_random_state": np.random.default_rng(0).bit_generator.state}}
    with pytest.raises(ValueError, match="does not sample a goal"):
        advance_goal_cycle(ck, 3)
    assert advance_goal_cycle(ck, 0) is ck


@pytest.fixture(scope="module")
def benchmark_fns():
    """MT10's constructors with 60-step episodes, the goals of ``built_envs``' seed (read back
    from the goal cache: toppo.algo.goal_cache)."""
    base, fns = benchmark_env_fns("MT10", "v2", 7, max_episode_steps=60)
    base.close()
    return fns


def test_the_benchmarks_goals_are_kept_for_the_next_build(benchmark_fns):
    [path] = (Path(os.environ[CACHE_ENV]) / "metaworld-goals").glob("MT10-seed7-*.pkl")
    assert pickle.loads(path.read_bytes()) == [t for f in benchmark_fns for t in f.keywords["tasks"]]


@pytest.mark.parametrize("kind", ["train", "eval"])
def test_stepping_the_envs_directly_gives_what_gymnasiums_vector_env_gives(benchmark_fns, kind):
    """``EnvCopies`` steps in-process envs with ``step_envs``, not through
    ``SyncVectorEnv.step``: the same envs built twice, one set stepped each way with the same
    actions (a noisy expert's), give the same arrays at every step, through truncations
    (both kinds: 60-step episodes) and successes that end an episode (evaluation envs:
    terminate on success), and leave the envs in the same state."""
    fns = benchmark_fns
    quiet_box_precision_warnings()  # this test builds gymnasium's vector env itself
    if kind == "train":
        every = train_env_fns(fns, 3, envs_per_task=1)
        build = lambda: gym.vector.SyncVectorEnv(every, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)  # noqa: E731
    else:
        build = lambda: make_eval_envs(eval_env_fns(fns, 3), 1, async_envs=False).copies[0]  # noqa: E731
    ours, theirs = EnvCopies([build()], 10), build()
    assert ours.single_envs() is not None  # so ours steps them directly
    ours.set_state([theirs.call("get_checkpoint")])  # the same goals and random streams
    policies = [ENV_POLICY_MAP[n]() for n in ours.task_names]
    rng = np.random.default_rng(0)
    obs, _ = theirs.reset()
    np.testing.assert_array_equal(ours.reset(), obs.astype(np.float32))
    terminated = truncated = 0
    try:
        for _ in range(130):
            actions = np.stack([p.get_action(o[:39]) for p, o in zip(policies, obs)])
            actions = np.clip(actions + rng.normal(0, 0.1, actions.shape), -1, 1).astype(np.float32)
            want = reduce_step(theirs.step(actions), ours.obs_dim)
            got = ours.step_raw(actions)
            # the vector env's observations are in its space's dtype (float32), ours float64
            # until StepBatch.cast: compare in the vector env's dtypes
            for name, g, w in zip(("obs", "reward", "terminated", "truncated", "final_obs",
                                   "final_success"), got, want):
                np.testing.assert_array_equal(g.astype(w.dtype), w, err_msg=name)
                np.testing.assert_array_equal(getattr(StepBatch.cast(*got), name),
                                              getattr(StepBatch.cast(*want), name), err_msg=name)
            obs = want[0]
            terminated += int(want[2].sum())
            truncated += int(want[3].sum())
        assert ours.get_state() == [theirs.call("get_checkpoint")]
    finally:
        ours.close()
        theirs.close()
    assert truncated >= 10 and (terminated > 0) == (kind == "eval")
