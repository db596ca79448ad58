"""Meta-World MT10/MT50 vector environments, built by the package's own factory.

``gym.make_vec("Meta-World/MT10", ...)`` generates the benchmark (the 50 goals per task
depend on the seed) and one env per task. Env copies reuse that factory's per-task
constructors with a different env seed, so every copy sees the *same* 50 goals per task
with its own random stream; evaluation envs are the same constructors with
``terminate_on_success=True`` and ``task_select="pseudorandom"``. Building the benchmark
once serves training and evaluation (the goal generation is the slow part, so its result is
kept on disk for the next process that builds the same benchmark and seed:
``toppo.algo.goal_cache``); the constructors pickle, so an evaluation worker process builds
its envs from them.

Env index layout everywhere: ``copy * K + task``.

Every training-env backend (``EnvCopies`` here, in the trainer's process;
``toppo.harness.envworkers.EnvWorkerPool``, in worker processes) answers ``reset()`` with the
observations and ``step(actions)`` with a ``StepBatch``: the per-step info reduced to the
arrays the trainer uses, so the trainer has one rollout path whatever steps the envs.
Synchronous envs (the trainer's own, an env worker's, evaluation's) are stepped one by one
by ``step_envs``, which makes the same calls as gymnasium's ``SyncVectorEnv`` without
building its per-step info dict; only subprocess copies (``async_envs``) go through the
vector env, their info reduced by ``reduce_step``.
"""

from __future__ import annotations

import functools
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import metaworld
import numpy as np

from toppo.algo import metaworld_fast
from toppo.algo.compiled_models import compile_once
from toppo.algo.goal_cache import cached_goals

# metaworld's hot Python paths replaced by bit-identical code (toppo.algo.metaworld_fast), in
# every process that imports this module to build envs: trainer, env and evaluation workers
# (under other metaworld/scipy/numpy versions than it copies: metaworld's own code, a warning).
metaworld_fast.install_where_pinned()

# gymnasium's Box warns (gym.logger.warn: a UserWarning attributed to gymnasium.spaces.box)
# whenever a space's float64 bounds are cast to its float32 dtype, which metaworld's spaces do
# twice per env built ("Box low's ..." and "Box high's precision lowered by casting to
# float32"): 20 lines for MT10, 100 for MT50, at the top of every train.log. The bounds only
# describe the space; the trainer casts every observation itself (StepBatch.cast).
BOX_PRECISION_MESSAGE = r".*Box (?:low|high)'s precision lowered by casting to float32"
BOX_PRECISION_MODULE = r"gymnasium\.spaces\.box\Z"


def quiet_box_precision_warnings() -> None:
    """Ignore gymnasium's Box precision warnings, matched by message, category and module, so
    every other warning still shows. Called by each function that builds metaworld envs, in
    whatever process builds them (filters are per process, and pytest resets them per test);
    a repeated call replaces its own filter, so calling it again costs nothing."""
    warnings.filterwarnings("ignore", message=BOX_PRECISION_MESSAGE, category=UserWarning,
                            module=BOX_PRECISION_MODULE)


# Seed offsets keep the random streams of the copies and of evaluation apart.
_COPY_SEED_STRIDE = 10_007
_EVAL_SEED_OFFSET = 1_000_003


def _vector_class(async_envs: bool) -> type[gym.vector.VectorEnv]:
    return gym.vector.AsyncVectorEnv if async_envs else gym.vector.SyncVectorEnv


@dataclass
class StepBatch:
    """One step of N envs, the info reduced to arrays. Observations, rewards and final
    observations are the envs' float64 values cast to float32 in one place (``cast``), so
    every backend hands the trainer the same numbers."""
    obs: np.ndarray  # (N, D) float32: next observation (a new episode's first after an end)
    reward: np.ndarray  # (N,) float32
    terminated: np.ndarray  # (N,) bool
    truncated: np.ndarray  # (N,) bool
    final_obs: np.ndarray  # (N, D) float32: last observation of an episode that ended; 0 elsewhere
    final_success: np.ndarray  # (N,) float32: that episode's final info["success"]; nan elsewhere

    @property
    def ended(self) -> np.ndarray:
        return self.terminated | self.truncated

    @staticmethod
    def cast(obs, reward, terminated, truncated, final_obs, final_success) -> StepBatch:
        return StepBatch(np.asarray(obs, dtype=np.float32), np.asarray(reward, dtype=np.float32),
                         np.asarray(terminated, dtype=bool), np.asarray(truncated, dtype=bool),
                         np.asarray(final_obs, dtype=np.float32),
                         np.asarray(final_success, dtype=np.float32))


def empty_step(n: int, obs_dim: int) -> tuple[np.ndarray, ...]:
    """The float64 arrays of one step of ``n`` envs, as no env has written them yet: obs,
    reward, terminated, truncated, final_obs (0: no episode ended), final_success (nan)."""
    return (np.zeros((n, obs_dim)), np.zeros(n), np.zeros(n, dtype=bool), np.zeros(n, dtype=bool),
            np.zeros((n, obs_dim)), np.full(n, np.nan))


def reduce_step(result: tuple, obs_dim: int) -> tuple[np.ndarray, ...]:
    """A same-step-autoreset vector env's ``step`` result as ``empty_step``'s arrays: what
    ``step_envs`` writes, read from gymnasium's info dict (asynchronous copies)."""
    obs, reward, terminated, truncated, info = result
    *_, final_obs, final_success = empty_step(len(reward), obs_dim)
    if "_final_obs" in info:
        for i in np.flatnonzero(info["_final_obs"]):
            final_obs[i] = info["final_obs"][i]
    if "_final_info" in info:
        for i in np.flatnonzero(info["_final_info"]):
            final_success[i] = info["final_info"]["success"][i]
    return obs, reward, terminated, truncated, final_obs, final_success


def step_envs(envs: Sequence[gym.Env], actions: np.ndarray, out: Sequence[np.ndarray],
              which: Iterable[int] | None = None) -> None:
    """Step ``envs[i]`` with ``actions[i]`` for each i of ``which`` (all by default), in
    order, with same-step autoreset, writing ``out`` (``empty_step``'s arrays, or views of
    them) at row i: no info dict is built, none is read but the ended episode's ``success``.

    The calls and the numbers are those of ``gymnasium.vector.SyncVectorEnv`` in
    ``AutoresetMode.SAME_STEP`` followed by ``reduce_step`` (tests/test_envs_eval.py checks
    it array for array): each env's ``step(action)``, and ``reset()`` (no seed, no options)
    once its episode ended. The observations stay float64 until ``StepBatch.cast`` (the
    vector env casts them to its space's float32 itself: one rounding either way). Only what it costs differs: the vector env merges every env's info
    into arrays at every step, which the trainer reads two fields of at an episode's end
    (with our reading of them, 250-280 us of CPU per step of ref_mt10's 10 envs on the
    2-core Xeon VM, against 45 us here: about 5% of its rollout; docs/throughput.md)."""
    obs, reward, terminated, truncated, final_obs, final_success = out
    rows = slice(None) if which is None else which
    final_obs[rows], final_success[rows] = 0.0, np.nan
    for i in range(len(envs)) if which is None else which:
        o, reward[i], terminated[i], truncated[i], info = envs[i].step(actions[i])
        if terminated[i] or truncated[i]:
            final_obs[i] = o
            final_success[i] = info["success"]
            o, _ = envs[i].reset()
        obs[i] = o


class TrainEnvs:
    """What every training-env backend shares: ``step`` is ``step_async`` then ``step_wait``
    (the trainer's rollout calls the two apart, to work while the envs step)."""

    def step(self, actions: np.ndarray) -> StepBatch:
        self.step_async(actions)
        return self.step_wait()


class EnvCopies(TrainEnvs):
    """Several vector envs (one per copy, each with one env per task) stepped together, in
    this process (``SyncVectorEnv``: its envs stepped by ``step_envs``) or in one subprocess
    per env (``AsyncVectorEnv``).

    Async copies are stepped with ``step_async`` on all of them before any ``step_wait``,
    so their subprocesses run in parallel. ``first_task``: the task index of the copies'
    first env (an evaluation worker holds a slice of the tasks).
    """

    def __init__(self, copies: list[gym.vector.VectorEnv], num_tasks: int, first_task: int = 0):
        self.copies = copies
        self.num_tasks = num_tasks
        self.num_envs = len(copies) * num_tasks
        self.task_ids = np.tile(np.arange(first_task, first_task + num_tasks), len(copies))
        self.single_observation_space = copies[0].single_observation_space
        self.single_action_space = copies[0].single_action_space
        self.obs_dim = self.single_observation_space.shape[0]
        self.act_dim = self.single_action_space.shape[0]
        self.task_names: list[str] = _task_names(copies[0])
        self.busy_s = 0.0  # seconds spent in reset() and step() (the trainer's time budget)
        # the individual envs in index order where every copy is synchronous (stepped by
        # step_envs), else None: subprocess copies, stepped by gymnasium
        self._singles = self.single_envs()
        self._actions: np.ndarray | None = None  # the step begun by step_async

    def reset(self) -> np.ndarray:
        t0 = time.perf_counter()
        obs = np.concatenate([c.reset()[0] for c in self.copies]).astype(np.float32)
        self.busy_s += time.perf_counter() - t0
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        """Start one step of every env: subprocess copies (``async_envs``) start stepping now,
        in-process envs in ``step_wait``. The trainer works on its buffers and the critic's
        value in between, while env workers step (``toppo.harness.envworkers``)."""
        t0 = time.perf_counter()
        self._actions = np.array(actions)  # a copy: the caller's may change
        if self._singles is None:
            for c, a in zip(self.copies, np.split(self._actions, len(self.copies))):
                c.step_async(a)
        self.busy_s += time.perf_counter() - t0

    def step_wait(self) -> StepBatch:
        return StepBatch.cast(*self.step_wait_raw())

    def step_raw(self, actions: np.ndarray) -> tuple[np.ndarray, ...]:
        self.step_async(actions)
        return self.step_wait_raw()

    def step_wait_raw(self) -> tuple[np.ndarray, ...]:
        """The step begun by ``step_async`` as ``empty_step``'s float64 arrays (evaluation
        sums the float64 rewards, whichever way its envs are stepped)."""
        t0 = time.perf_counter()
        if self._actions is None:
            raise RuntimeError("step_wait without a step_async before it")
        if self._singles is None:
            parts = [reduce_step(c.step_wait(), self.obs_dim) for c in self.copies]
            out = tuple(np.concatenate(col) for col in zip(*parts))
        else:
            out = empty_step(self.num_envs, self.obs_dim)
            step_envs(self._singles, self._actions, out)
        self._actions = None
        self.busy_s += time.perf_counter() - t0
        return out

    def single_envs(self) -> list[gym.Env] | None:
        """The individual envs in index order, when every copy is synchronous."""
        if all(isinstance(c, gym.vector.SyncVectorEnv) for c in self.copies):
            return [env for c in self.copies for env in c.envs]
        return None

    def get_state(self) -> list[Any]:
        """Random streams, goal lists and task pointers of every env (metaworld's own
        checkpoint API), per copy."""
        return [c.call("get_checkpoint") for c in self.copies]

    def set_state(self, state: list[Any]) -> None:
        for c, ckpts in zip(self.copies, state):
            c.call("load_checkpoint", list(ckpts))

    def call(self, name: str, *args: Any) -> None:
        for c in self.copies:
            c.call(name, *args)

    def close(self) -> None:
        for c in self.copies:
            c.close()


def _task_names(vec: gym.vector.VectorEnv) -> list[str]:
    cls_to_name = {v.__name__: k for k, v in metaworld.ALL_V3_ENVIRONMENTS.items()}
    return [cls_to_name[n] for n in vec.get_attr("task_name")]


def _reseeded(fns: list[functools.partial], seed: int, **changes: Any) -> list[functools.partial]:
    """The factory's per-task constructors with another env seed (same goals) and changes."""
    return [functools.partial(f.func, *f.args, **{**f.keywords, "seed": seed, **changes}) for f in fns]


def benchmark_env_fns(benchmark: str, reward_version: str, seed: int, max_episode_steps: int
                      ) -> tuple[gym.vector.SyncVectorEnv, list[functools.partial]]:
    """The package's own vector env for ``benchmark`` (goals generated from ``seed``: the slow
    part, so they are kept on disk, ``toppo.algo.goal_cache``) and its per-task constructors,
    which carry the goals and pickle."""
    quiet_box_precision_warnings()
    # the goals generated from this seed before, if kept; one compile of each task's model
    with cached_goals(benchmark), compile_once():
        base = gym.make_vec(
            f"Meta-World/{benchmark}", seed=seed, vector_strategy="sync", use_one_hot=True,
            reward_function_version=reward_version, max_episode_steps=max_episode_steps,
            terminate_on_success=False,
        )
    return base, list(base.env_fns)


def eval_env_fns(fns: list[functools.partial], seed: int) -> list[functools.partial]:
    """Evaluation constructors: the benchmark's, reseeded, terminate-on-success, pseudorandom
    goal order. They pickle, so an evaluation worker builds the same envs without generating
    the benchmark again."""
    return _reseeded(fns, seed + _EVAL_SEED_OFFSET, terminate_on_success=True,
                     task_select="pseudorandom")


def make_eval_envs(eval_fns: list[functools.partial], copies: int, async_envs: bool,
                   tasks: range | None = None) -> EnvCopies:
    """``copies`` identical eval vector envs (same seed) of the tasks ``tasks`` (all by
    default; an evaluation worker holds a slice): each evaluation restores them to one
    snapshot and places copy c at its own offset of the shared goal cycle (``place_copies``),
    so the copies split the goals. Each env is built from its task's constructor alone, so a
    slice's envs are the same envs as in the whole set."""
    quiet_box_precision_warnings()
    tasks = tasks if tasks is not None else range(len(eval_fns))
    vec_cls = _vector_class(async_envs)
    with compile_once():  # the copies' models: copies of one compile per task
        evals = [vec_cls([eval_fns[k] for k in tasks], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
                 for _ in range(copies)]
    for e in evals:
        e.call("toggle_sample_tasks_on_reset", True)  # next goal of the cycle at every reset
    return EnvCopies(evals, len(tasks), first_task=tasks.start)


def train_env_fns(fns: list[functools.partial], seed: int, envs_per_task: int
                  ) -> list[functools.partial]:
    """The constructor of every training env, in env index order ``copy * K + task``: copy c
    is the benchmark's env reseeded with ``seed + c * stride`` (copy 0: exactly the
    package's own constructors, same goals). An env worker builds its slice from these."""
    return [f for c in range(envs_per_task)
            for f in _reseeded(fns, seed + c * _COPY_SEED_STRIDE)]


def make_train_envs(benchmark: str, reward_version: str, seed: int, *, envs_per_task: int,
                    async_envs: bool, max_episode_steps: int) -> tuple[EnvCopies, list[functools.partial]]:
    """Training envs for one run, in this process (``async_envs``: a subprocess per env), and
    the evaluation constructors of the same benchmark goals (``eval_env_fns``), for
    ``make_eval_envs`` here or in an evaluation worker. The same envs in worker processes:
    ``toppo.harness.envworkers.make_worker_train_envs``; both return the same ``StepBatch``es."""
    with compile_once():  # the copies' models: copies of one compile per task
        base, fns = benchmark_env_fns(benchmark, reward_version, seed, max_episode_steps)
        K, vec_cls = len(fns), _vector_class(async_envs)
        every = train_env_fns(fns, seed, envs_per_task)
        train = [base if c == 0 and not async_envs  # exactly the package's env for copy 0
                 else vec_cls(every[c * K:(c + 1) * K], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
                 for c in range(envs_per_task)]
    if async_envs:
        base.close()  # only its constructors were needed
    return EnvCopies(train, len(fns)), eval_env_fns(fns, seed)


def make_envs(benchmark: str, reward_version: str, seed: int, *, envs_per_task: int,
              eval_envs_per_task: int, async_envs: bool, max_episode_steps: int
              ) -> tuple[EnvCopies, EnvCopies]:
    """Training and evaluation envs for one run (same benchmark goals, separate envs)."""
    train, eval_fns = make_train_envs(benchmark, reward_version, seed, envs_per_task=envs_per_task,
                                      async_envs=async_envs, max_episode_steps=max_episode_steps)
    return train, make_eval_envs(eval_fns, eval_envs_per_task, async_envs)


# ---------------------------------------------------------------------- goal-cycle placement
def advance_goal_cycle(ckpt: dict[str, Any], resets: int) -> dict[str, Any]:
    """The checkpoint of a pseudorandom-goal env (``PseudoRandomTaskSelectWrapper``) after
    ``resets`` more resets, computed without running them.

    A reset with goal sampling on moves the task pointer one step along the goal list and,
    on wrapping to 0, shuffles the list with the env's own ``np_random``; the reset itself
    draws nothing from ``np_random`` (metaworld freezes the goal vector of a set task), and
    every later reset rebuilds the simulator state. Pointer, goal order and ``np_random``
    state are therefore all a reset changes that outlives the next one (tested against the
    reset loop in tests/test_envs_eval.py)."""
    if resets == 0:
        return ckpt
    if not ckpt.get("sample_tasks_on_reset", False):
        raise ValueError("advance_goal_cycle: the env does not sample a goal on reset")
    tasks, idx = list(ckpt["tasks"]), int(ckpt["current_task_idx"])
    rng_state = ckpt["env_rng_state"]["np_random_state"]
    rng = np.random.Generator(getattr(np.random, rng_state["bit_generator"])())
    rng.bit_generator.state = rng_state
    for _ in range(resets):
        idx = (idx + 1) % len(tasks)
        if idx == 0:
            rng.shuffle(tasks)  # what the wrapper does with self.np_random
    return {**ckpt, "tasks": tasks, "current_task_idx": idx,
            "env_rng_state": {**ckpt["env_rng_state"], "np_random_state": rng.bit_generator.state}}


def place_copies(snapshot: list[Any], offsets: list[int]) -> list[Any]:
    """Per-copy eval states: copy c's snapshot advanced ``offsets[c]`` goals along the cycle."""
    return [[(env_id, advance_goal_cycle(ck, n)) for env_id, ck in copy_state]
            for copy_state, n in zip(snapshot, offsets, strict=True)]
