"""Meta-World MT10/MT50 vector environments, built by the package's own factory.

``gym.make_vec("Meta-World/MT10", ...)`` generates the benchmark (the 50 goals per task
depend on the seed) and one env per task. Env copies reuse that factory's per-task
constructors with a different env seed, so every copy sees the *same* 50 goals per task
with its own random stream; evaluation envs are the same constructors with
``terminate_on_success=True`` and ``task_select="pseudorandom"``. Building the benchmark
once serves training and evaluation (MT50's goal generation is the slow part); the
constructors pickle, so an evaluation worker process builds its envs from them.

Env index layout everywhere: ``copy * K + task``.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import gymnasium as gym
import metaworld
import numpy as np

# Seed offsets keep the random streams of the copies and of evaluation apart.
_COPY_SEED_STRIDE = 10_007
_EVAL_SEED_OFFSET = 1_000_003


def _vector_class(async_envs: bool) -> type[gym.vector.VectorEnv]:
    return gym.vector.AsyncVectorEnv if async_envs else gym.vector.SyncVectorEnv


class EnvCopies:
    """Several vector envs (one per copy, each with one env per task) stepped together.

    Async copies are stepped with ``step_async`` on all of them before any ``step_wait``,
    so their subprocesses run in parallel.
    """

    def __init__(self, copies: list[gym.vector.VectorEnv], num_tasks: int):
        self.copies = copies
        self.num_tasks = num_tasks
        self.num_envs = len(copies) * num_tasks
        self.task_ids = np.tile(np.arange(num_tasks), len(copies))
        self.single_observation_space = copies[0].single_observation_space
        self.single_action_space = copies[0].single_action_space
        self.task_names: list[str] = _task_names(copies[0])
        self.busy_s = 0.0  # seconds spent in reset() and step() (the trainer's time budget)

    def reset(self) -> np.ndarray:
        t0 = time.perf_counter()
        obs = np.concatenate([c.reset()[0] for c in self.copies]).astype(np.float32)
        self.busy_s += time.perf_counter() - t0
        return obs

    def step(self, actions: np.ndarray):
        t0 = time.perf_counter()
        chunks = np.split(actions, len(self.copies))
        if isinstance(self.copies[0], gym.vector.AsyncVectorEnv):
            for c, a in zip(self.copies, chunks):
                c.step_async(a)
            results = [c.step_wait() for c in self.copies]
        else:
            results = [c.step(a) for c, a in zip(self.copies, chunks)]
        obs = np.concatenate([r[0] for r in results]).astype(np.float32)
        reward = np.concatenate([r[1] for r in results]).astype(np.float32)
        terminated = np.concatenate([r[2] for r in results])
        truncated = np.concatenate([r[3] for r in results])
        infos = [r[4] for r in results]
        self.busy_s += time.perf_counter() - t0
        return obs, reward, terminated, truncated, infos

    @staticmethod
    def final_obs(infos: list[dict], num_tasks: int) -> dict[int, np.ndarray]:
        """Map env index -> the last observation of an episode that ended this step."""
        out = {}
        for c, info in enumerate(infos):
            if "_final_obs" in info:
                for i in np.flatnonzero(info["_final_obs"]):
                    out[c * num_tasks + i] = np.asarray(info["final_obs"][i], dtype=np.float32)
        return out

    @staticmethod
    def final_success(infos: list[dict], num_tasks: int) -> dict[int, float]:
        """Map env index -> the final ``success`` of an episode that ended this step."""
        out = {}
        for c, info in enumerate(infos):
            if "_final_info" in info:
                fin = info["final_info"]
                for i in np.flatnonzero(info["_final_info"]):
                    out[c * num_tasks + i] = float(fin["success"][i])
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
    part on MT50) and its per-task constructors, which carry the goals and pickle."""
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


def make_eval_envs(eval_fns: list[functools.partial], copies: int, async_envs: bool) -> EnvCopies:
    """``copies`` identical eval vector envs (same seed): each evaluation restores them to one
    snapshot and places copy c at its own offset of the shared goal cycle (``place_copies``),
    so the copies split the goals."""
    vec_cls = _vector_class(async_envs)
    evals = [vec_cls(eval_fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
             for _ in range(copies)]
    for e in evals:
        e.call("toggle_sample_tasks_on_reset", True)  # next goal of the cycle at every reset
    return EnvCopies(evals, len(eval_fns))


def make_train_envs(benchmark: str, reward_version: str, seed: int, *, envs_per_task: int,
                    async_envs: bool, max_episode_steps: int
                    ) -> tuple[EnvCopies, list[functools.partial]]:
    """Training envs for one run and the evaluation constructors of the same benchmark goals
    (``eval_env_fns``), for ``make_eval_envs`` here or in an evaluation worker."""
    base, fns = benchmark_env_fns(benchmark, reward_version, seed, max_episode_steps)
    vec_cls = _vector_class(async_envs)
    train = []
    for copy in range(envs_per_task):
        if copy == 0 and not async_envs:
            train.append(base)  # exactly the package's env for copy 0
        else:
            train.append(vec_cls(_reseeded(fns, seed + copy * _COPY_SEED_STRIDE),
                                 autoreset_mode=gym.vector.AutoresetMode.SAME_STEP))
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
