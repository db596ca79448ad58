"""EnvPool's native Meta-World v3 as a training-env backend (opt-in; evaluation stays on
metaworld's own envs and the benchmark's goals).

``envpool`` 1.2.5 ships a C++ port of the 50 Meta-World v3 tasks, one task per pool
(``envpool.make_gymnasium("MetaWorld/Reach-v3", ...)``). What it offers and lacks, with
the source lines, is in docs/envpool.md; what shapes this adapter:

* **Goals cannot be set.** Every reset draws a fresh ``rand_vec`` (object and goal
  positions) from the env's own ``std::mt19937`` (seeded ``env_seed[i]``) over the task's
  whole random-reset box; there is no option, call or state setter for it. MT10/MT50 train
  on 50 fixed goals per task; this backend trains on the continuous distribution those 50
  are drawn from. ``rand_vecs`` (below) replays the stream exactly, which the parity tests
  use to put metaworld in EnvPool's state.
* **Only the V2 reward** (metaworld's default ``reward_function_version="v2"``) is ported;
  ``reward_version="v1"`` is refused (``ConfigError`` naming the key). MT50 is refused too:
  two of its tasks' goals drift from reset to reset (``DRIFTING_GOAL_TASKS``).
* EnvPool simulates with its bundled MuJoCo 3.6.0 (metaworld 3.1.1 pins 3.3.0), and its V2
  rewards use the gripper pads' construction-time positions where metaworld's use the
  current ones (pick-place-v3 in MT10): docs/envpool.md, section 1.
* ``partially_observable=False`` is a pool option (the goal in obs[36:39]); the task one-hot
  is not: it is appended here, as metaworld's ``OneHotWrapper`` does (39 + K dims).
* EnvPool autoresets on the *next* step (a done env's next ``step`` is a reset that
  ignores its action). This adapter gives the trainer's ``SAME_STEP`` semantics instead:
  rows that ended are reset at once (``pool.reset(env_ids)``, a forced reset), their new
  first observation is returned in ``obs`` and the last one in ``final_obs``.
* No simulator state can be read or written. ``get_state`` records each env's seed and how
  many resets it has done (the only thing that advances its random stream);
  ``set_state`` rebuilds the pools and replays the resets, so the goal stream continues
  exactly (the same scope as metaworld's ``get_checkpoint``: random streams, not the
  episode in progress; the trainer resets every env at the start of each rollout).

Env index layout, as in ``toppo.algo.envs``: ``copy * K + task``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from toppo.algo.envs import StepBatch, TrainEnvs
from toppo.specs.config import ConfigError
from toppo.specs.registry import BENCHMARKS

MAX_PATH_LENGTH = 500  # metaworld's SawyerXYZEnv.max_path_length; EnvPool's registered limit
_SEED_TASK_STRIDE = 1_009  # seeds of one run: env_seeds()
_SEED_RUN_STRIDE = 1_000_003
# Tasks whose goal moves from reset to reset in envpool 1.2.5: PositionTargetSites() writes
# the world-frame goal into the body-local model position of the "goal" site (every step and
# at the end of ResetModel), and the next ResetModel reads the goal back as that site's
# position plus its body's, so it drifts by the body offset per episode (hammer-v3:
# x 0.24 -> 0.48 -> 0.72, y 0.74 -> 1.59 -> 2.44). MT50 contains both.
DRIFTING_GOAL_TASKS = ("hammer-v3", "shelf-place-v3")


def envpool_task_id(task_name: str) -> str:
    """``reach-v3`` -> ``MetaWorld/Reach-v3`` (envpool.mujoco.metaworld.registration)."""
    name, version = task_name.rsplit("-", 1)
    return "MetaWorld/" + "".join(p[:1].upper() + p[1:] for p in name.split("-")) + "-" + version


def env_seeds(seed: int, num_tasks: int, envs_per_task: int) -> list[int]:
    """One ``std::mt19937`` seed per env, index ``copy * K + task``; distinct, below 2**31."""
    return [(seed * _SEED_RUN_STRIDE + (c * num_tasks + k) * _SEED_TASK_STRIDE) % 2**31
            for c in range(envs_per_task) for k in range(num_tasks)]


def check_supported(reward_version: str, max_episode_steps: int, task_names: list[str] = (),
                    benchmark: str = "", allow_drifting_goals: bool = False) -> None:
    """Refuse what EnvPool's Meta-World cannot do, naming the config key."""
    if reward_version != "v2":
        raise ConfigError(
            f"reward_version: {reward_version!r} is not available with env_backend=envpool: "
            "envpool 1.2.5 ports only metaworld's V2 reward functions "
            "(envpool/mujoco/metaworld/metaworld_env.h, ComputeReward); use reward_version=v2 "
            "or env_backend=metaworld")
    if not 1 <= max_episode_steps <= MAX_PATH_LENGTH:
        raise ConfigError(
            f"max_episode_steps: {max_episode_steps} is outside 1..{MAX_PATH_LENGTH}, "
            "metaworld's max_path_length (its envs refuse a step past it)")
    drifting = [n for n in task_names if n in DRIFTING_GOAL_TASKS]
    if drifting and not allow_drifting_goals:
        raise ConfigError(
            f"benchmark: {benchmark or 'these tasks'} cannot train on env_backend=envpool: in "
            f"envpool 1.2.5 the goals of {drifting} drift further at every reset (docs/envpool.md);"
            " use env_backend=metaworld")


def _import_envpool() -> Any:
    try:
        import envpool  # noqa: F401  (registers the MetaWorld/* ids)
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ConfigError(
            "env_backend: 'envpool' needs the envpool package (pip install envpool==1.2.5, "
            f"a cp311 manylinux wheel): {e}") from e
    return envpool


class EnvPoolTrainEnvs(TrainEnvs):
    """Training envs of ``benchmark`` (MT10/MT50) on EnvPool: one pool per task, each with
    ``envs_per_task`` envs, stepped together (every pool is sent its actions before any is
    received, so pools with their own threads step in parallel).

    ``num_threads`` is per pool (EnvPool's worker threads). ``parallel_pools=False`` steps
    one pool at a time (send, then receive), so that at most one EnvPool thread runs: a
    training job then uses one core, as Snakemake's ``threads`` accounting assumes; with
    True (the default) the K pools step at once on up to K cores. ``allow_drifting_goals`` lets
    measurements build MT50, whose hammer-v3 and shelf-place-v3 goals drift (refused
    otherwise, see ``DRIFTING_GOAL_TASKS``). ``step`` is ``step_async`` then ``step_wait``:
    between the two the pools step on their threads while the caller works.
    """

    def __init__(self, benchmark: str, reward_version: str, seed: int, *, envs_per_task: int = 1,
                 max_episode_steps: int = MAX_PATH_LENGTH, num_threads: int = 1,
                 task_names: list[str] | None = None, allow_drifting_goals: bool = False,
                 parallel_pools: bool = True):
        if task_names is None:
            if benchmark not in BENCHMARKS:
                raise ConfigError(f"benchmark: unknown benchmark {benchmark!r}, expected one of "
                                  f"{sorted(BENCHMARKS)}")
            task_names = list(BENCHMARKS[benchmark])
        check_supported(reward_version, max_episode_steps, task_names, benchmark,
                        allow_drifting_goals)
        if envs_per_task < 1:
            raise ConfigError(f"envs_per_task: must be >= 1, got {envs_per_task}")
        self._envpool = _import_envpool()
        self.benchmark, self.seed = benchmark, seed
        self.task_names = list(task_names)
        self.num_tasks = K = len(self.task_names)
        self.envs_per_task = C = envs_per_task
        self.num_envs = N = C * K
        self.max_episode_steps = max_episode_steps
        self.num_threads = num_threads
        self.parallel_pools = parallel_pools
        self.task_ids = np.tile(np.arange(K), C)
        self.obs_dim = 39 + K
        self.act_dim = 4
        self.seeds = env_seeds(seed, K, C)
        # env index i = c*K + k lives in pool k at position c
        self._rows = [np.arange(C) * K + k for k in range(K)]
        self._onehot = np.eye(K, dtype=np.float64)
        self.resets = np.zeros(N, dtype=np.int64)  # resets done per env (the stream position)
        self.busy_s = 0.0
        # info['success'] of every env at the last step (before any autoreset), for tests
        self.last_success = np.zeros(N, dtype=np.float32)
        self._ids = np.arange(C, dtype=np.int32)  # every pool's env ids, in order
        self._pending: np.ndarray | None = None  # actions of a step_async not yet waited for
        self.pools = self._make_pools()
        self._started = False

    # ------------------------------------------------------------------ construction
    def _make_pools(self) -> list[Any]:
        pools = []
        for k, name in enumerate(self.task_names):
            pools.append(self._envpool.make_gymnasium(
                envpool_task_id(name), num_envs=self.envs_per_task, batch_size=self.envs_per_task,
                num_threads=self.num_threads, env_seed=[self.seeds[i] for i in self._rows[k]],
                partially_observable=False, max_episode_steps=self.max_episode_steps))
        # The step path calls the pools' C++ send/recv directly (the Python wrapper's
        # dict/tree conversion costs about as much as a step of one env): the action list
        # in the pool's action-key order, the state list read by key.
        keys = pools[0]._spec._action_keys
        if list(keys) != ["env_id", "players.env_id", "action"]:
            raise RuntimeError(f"unexpected envpool action keys {keys} (envpool 1.2.5 expected)")
        self._state_index = {k: i for i, k in enumerate(pools[0]._state_keys)}
        return pools

    def _with_onehot(self, obs39: np.ndarray, k: int) -> np.ndarray:
        return np.concatenate([obs39, np.broadcast_to(self._onehot[k], (len(obs39), self.num_tasks))],
                              axis=1)

    # ------------------------------------------------------------------ the interface
    def reset(self) -> np.ndarray:
        t0 = time.perf_counter()
        out = np.empty((self.num_envs, self.obs_dim), dtype=np.float32)
        for k, pool in enumerate(self.pools):
            obs, info = pool.reset()
            out[self._rows[k]] = self._with_onehot(obs, k)
        self.resets += 1
        self._started = True
        self.busy_s += time.perf_counter() - t0
        return out

    def step_async(self, actions: np.ndarray) -> None:
        """Start a step: every pool is sent its actions now (``parallel_pools``: they step
        on their own threads while the caller goes on), or they are kept for
        ``step_wait`` to send one pool at a time."""
        if not self._started:
            raise RuntimeError("EnvPoolTrainEnvs.step before reset()")
        if self._pending is not None:
            raise RuntimeError("EnvPoolTrainEnvs.step_async twice without step_wait")
        t0 = time.perf_counter()
        self._pending = np.array(actions, dtype=np.float32)  # a copy: the caller's may change
        if self.parallel_pools:
            for k in range(self.num_tasks):
                self._send(k)
        self.busy_s += time.perf_counter() - t0

    def _send(self, k: int) -> None:
        ids = self._ids
        self.pools[k]._send([ids, ids, np.ascontiguousarray(self._pending[self._rows[k]])])

    def step_wait(self) -> StepBatch:
        """Finish the step started by ``step_async``: receive every pool's results (a
        sequential pool is sent its actions first), reset the envs that ended."""
        if self._pending is None:
            raise RuntimeError("EnvPoolTrainEnvs.step_wait without step_async")
        t0 = time.perf_counter()
        N, D, ids = self.num_envs, self.obs_dim, self._ids
        obs = np.empty((N, D), dtype=np.float32)
        reward = np.empty(N, dtype=np.float32)
        terminated = np.zeros(N, dtype=bool)
        truncated = np.zeros(N, dtype=bool)
        final_obs = np.zeros((N, D), dtype=np.float32)
        final_success = np.full(N, np.nan, dtype=np.float32)
        ix = self._state_index
        for k, pool in enumerate(self.pools):
            if not self.parallel_pools:
                self._send(k)
            state = pool._recv()
            rows = self._rows[k]
            if not np.array_equal(state[ix["info:env_id"]], ids):  # sync pool: in the order sent
                raise RuntimeError(f"envpool returned env ids {state[ix['info:env_id']]}, "
                                   f"expected {ids}")
            full = self._with_onehot(state[ix["obs"]], k)
            done, trunc = state[ix["done"]], state[ix["trunc"]]
            success = state[ix["info:success"]]
            obs[rows] = full
            reward[rows] = state[ix["reward"]]
            terminated[rows] = done & ~trunc  # as envpool's gymnasium wrapper
            truncated[rows] = trunc
            self.last_success[rows] = success
            ended = np.flatnonzero(done)
            if ended.size:  # same-step autoreset: forced reset of the ended envs now
                final_obs[rows[ended]] = full[ended]
                final_success[rows[ended]] = success[ended]
                o2, _ = pool.reset(ended.astype(np.int32))
                obs[rows[ended]] = self._with_onehot(o2, k)
                self.resets[rows[ended]] += 1
        self._pending = None
        self.busy_s += time.perf_counter() - t0
        return StepBatch.cast(obs, reward, terminated, truncated, final_obs, final_success)

    # ------------------------------------------------------------------ checkpoints
    def get_state(self) -> dict[str, Any]:
        """What a resume needs to continue every env's goal stream exactly: the seeds and
        the number of resets per env. EnvPool exposes no simulator state, so the episode in
        progress is not saved (the trainer resets all envs at the start of every rollout)."""
        return {"backend": "envpool", "envpool_version": self._envpool.__version__,
                "task_names": list(self.task_names), "envs_per_task": self.envs_per_task,
                "max_episode_steps": self.max_episode_steps, "seeds": list(self.seeds),
                "resets": self.resets.tolist()}

    def set_state(self, state: dict[str, Any]) -> None:
        """Rebuild the pools and replay each env's resets (each reset only draws from the
        env's random stream and rebuilds the scene), so the next reset draws what the saved
        run would have drawn. Cost: one reset (50 hand-settling frames) per recorded reset."""
        if not isinstance(state, dict) or state.get("backend") != "envpool":
            raise ValueError("EnvPoolTrainEnvs.set_state: not an envpool env state "
                             f"(a checkpoint of another env_backend?): {type(state).__name__}")
        for key, mine in (("task_names", self.task_names), ("envs_per_task", self.envs_per_task),
                          ("max_episode_steps", self.max_episode_steps), ("seeds", self.seeds)):
            if state[key] != mine:
                raise ValueError(f"EnvPoolTrainEnvs.set_state: {key} differs: saved {state[key]}, "
                                 f"these envs {mine}")
        if state["envpool_version"] != self._envpool.__version__:
            raise ValueError(f"EnvPoolTrainEnvs.set_state: saved with envpool "
                             f"{state['envpool_version']}, running {self._envpool.__version__}")
        resets = np.asarray(state["resets"], dtype=np.int64)
        t0 = time.perf_counter()
        self.close()
        self.pools = self._make_pools()
        for k, pool in enumerate(self.pools):
            counts = resets[self._rows[k]]
            for r in range(int(counts.max(initial=0))):
                pool.reset(np.flatnonzero(counts > r).astype(np.int32))
        self.resets = resets.copy()
        self._started = bool(resets.any())
        self._pending = None
        self.busy_s += time.perf_counter() - t0

    def close(self) -> None:
        for pool in self.pools:
            pool.close()
        self.pools = []


def make_envpool_train_envs(benchmark: str, reward_version: str, seed: int, *, envs_per_task: int,
                            max_episode_steps: int, parallel_pools: bool
                            ) -> tuple[EnvPoolTrainEnvs, list]:
    """Training envs of a run with ``env_backend=envpool`` and, as ``toppo.algo.envs.
    make_train_envs`` returns them, metaworld's evaluation constructors of the benchmark
    generated from ``seed``: evaluation runs on the same envs and goals on both backends."""
    from toppo.algo.envs import _task_names, benchmark_env_fns, eval_env_fns

    envs = EnvPoolTrainEnvs(benchmark, reward_version, seed, envs_per_task=envs_per_task,
                            max_episode_steps=max_episode_steps, parallel_pools=parallel_pools)
    try:
        base, fns = benchmark_env_fns(benchmark, reward_version, seed, max_episode_steps)
        names = _task_names(base)
        base.close()  # only its constructors are needed
        if names != envs.task_names:
            raise RuntimeError(f"envpool tasks {envs.task_names} are not metaworld's {names}")
    except BaseException:
        envs.close()
        raise
    return envs, eval_env_fns(fns, seed)


# ---------------------------------------------------------------------- EnvPool's goal stream
class StdMt19937Uniform:
    """``std::uniform_real_distribution<double>(lo, hi)(gen)`` with ``std::mt19937 gen(seed)``
    as libstdc++ computes it (``generate_canonical<double, 53>``: two 32-bit draws), which is
    how EnvPool's Meta-World draws ``rand_vec`` (``SampleRandVec``). numpy's legacy
    ``RandomState(seed)`` seeds MT19937 with the same ``init_genrand``."""

    def __init__(self, seed: int):
        self._bg = np.random.RandomState(seed & 0xFFFFFFFF)._bit_generator

    def canonical(self) -> float:
        lo, hi = self._bg.random_raw(2)
        r = (float(lo) + float(hi) * 4294967296.0) / 18446744073709551616.0
        return r if r < 1.0 else float(np.nextafter(1.0, 0.0))

    def uniform(self, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        return np.array([self.canonical() * (h - lo) + lo for lo, h in zip(low, high)],
                        dtype=np.float64)
