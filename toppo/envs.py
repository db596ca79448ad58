"""Meta-World MT10/MT50 vector environments, built by the package's own factory.

``gym.make_vec("Meta-World/MT10", ...)`` generates the benchmark (the 50 goals per task
depend on the seed) and one env per task. Env copies reuse that factory's per-task
constructors with a different env seed, so every copy sees the *same* 50 goals per task
with its own random stream; evaluation envs are the same constructors with
``terminate_on_success=True`` and ``task_select="pseudorandom"``. Building the benchmark
once serves training and evaluation (MT50's goal generation is the slow part).

Env index layout everywhere: ``copy * K + task``.
"""

from __future__ import annotations

import functools
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

    def reset(self) -> np.ndarray:
        return np.concatenate([c.reset()[0] for c in self.copies]).astype(np.float32)

    def step(self, actions: np.ndarray):
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


def make_envs(benchmark: str, reward_version: str, seed: int, *, envs_per_task: int,
              eval_envs_per_task: int, async_envs: bool, max_episode_steps: int
              ) -> tuple[EnvCopies, EnvCopies]:
    """Training and evaluation envs for one run (same benchmark goals, separate envs)."""
    base = gym.make_vec(
        f"Meta-World/{benchmark}", seed=seed, vector_strategy="sync", use_one_hot=True,
        reward_function_version=reward_version, max_episode_steps=max_episode_steps,
        terminate_on_success=False,
    )
    fns = list(base.env_fns)
    num_tasks = len(fns)
    vec_cls = _vector_class(async_envs)
    autoreset = gym.vector.AutoresetMode.SAME_STEP

    train = []
    for copy in range(envs_per_task):
        if copy == 0 and not async_envs:
            train.append(base)  # exactly the package's env for copy 0
        else:
            train.append(vec_cls(_reseeded(fns, seed + copy * _COPY_SEED_STRIDE),
                                 autoreset_mode=autoreset))
    # Every eval copy is identical (same seed): each run starts from the same snapshot and
    # skips ahead in the shared pseudorandom goal order, so the copies split the goals.
    eval_fns = _reseeded(fns, seed + _EVAL_SEED_OFFSET, terminate_on_success=True,
                         task_select="pseudorandom")
    evals = [vec_cls(eval_fns, autoreset_mode=autoreset) for _ in range(eval_envs_per_task)]
    for e in evals:
        e.call("toggle_sample_tasks_on_reset", True)  # next goal of the cycle at every reset
    return EnvCopies(train, num_tasks), EnvCopies(evals, num_tasks)
