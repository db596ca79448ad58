"""Metaworld's own envs put in EnvPool's states: the reference for the EnvPool parity tests
(tests/test_envpool_parity.py) and benchmarks/envpool_parity.py.

EnvPool's release wheel does not expose its reset state (the ``qpos0``/``rand_vec0`` infos
of its own alignment test exist only in its ``ENVPOOL_TEST`` build), and no goal can be set
in it. But each EnvPool env draws its ``rand_vec`` with ``std::mt19937(env_seed)`` and
``std::uniform_real_distribution`` and uses that generator for nothing else, so the stream
can be replayed in Python (``StdMt19937Uniform``). A metaworld env whose
``_get_state_rand_vec`` draws from that replayed stream (its own rejection loops included)
starts every episode in EnvPool's state; the tests check that the reset observations agree.

Each oracle env is built like one env of ``gym.make_vec("Meta-World/MT10", use_one_hot=True,
reward_function_version="v2", terminate_on_success=False)`` (metaworld's ``_init_each_env``:
TimeLimit, AutoTerminateOnSuccessWrapper off, OneHotWrapper), without the task-select
wrapper that would impose the benchmark's fixed goals.
"""

from __future__ import annotations

import types
from dataclasses import dataclass

import gymnasium as gym
import metaworld
import numpy as np
from metaworld.policies import ENV_POLICY_MAP
from metaworld.wrappers import AutoTerminateOnSuccessWrapper, OneHotWrapper

from toppo.algo.envpool_envs import StdMt19937Uniform, env_seeds
from toppo.algo.envs import quiet_box_precision_warnings


def oracle_env(task_name: str, env_seed: int, task_index: int, num_tasks: int,
               max_episode_steps: int = 500, frozen_pads: bool = False) -> gym.Env:
    """One metaworld env (goal observable, V2 reward, one-hot) drawing EnvPool's goals.

    ``frozen_pads``: metaworld's ``init_left_pad``/``init_right_pad`` are
    ``get_body_com`` results, i.e. views of ``data.xpos`` that follow the pads (7 tasks' V2
    rewards read them); EnvPool keeps copies taken at construction. True gives the twin
    EnvPool's copies (after every reset), to show that this is the whole reward difference."""
    quiet_box_precision_warnings()
    env = metaworld.ALL_V3_ENVIRONMENTS[task_name](reward_function_version="v2")
    pads = env.init_left_pad.copy(), env.init_right_pad.copy()  # at construction
    # what set_task does for an MT task (partially_observable=False), minus the frozen goal
    if "sawyer_observation_space" in env.__dict__:
        del env.sawyer_observation_space
    env._partially_observable = False
    env._set_task_called = True
    env._freeze_rand_vec = False
    stream = StdMt19937Uniform(env_seed)
    # metaworld's reset runs reset_model twice (SawyerXYZEnv.reset, then MujocoEnv.reset);
    # EnvPool once. The first run draws from the stream (rejection loops included); the
    # second reuses the accepted vector, as a frozen (benchmark) goal would be.
    calls = {"n": 0}
    model_reset, env_reset = env.reset_model, env.reset

    def _get_state_rand_vec(self: metaworld.SawyerXYZEnv) -> np.ndarray:
        if calls["n"] <= 1:
            space = self._random_reset_space
            self._last_rand_vec = stream.uniform(space.low, space.high)
        return self._last_rand_vec

    def reset_model(self: metaworld.SawyerXYZEnv) -> np.ndarray:
        calls["n"] += 1
        return model_reset()

    def reset(self: metaworld.SawyerXYZEnv, **kwargs):  # noqa: ANN202
        calls["n"] = 0
        out = env_reset(**kwargs)
        if frozen_pads:
            self.init_left_pad, self.init_right_pad = pads[0].copy(), pads[1].copy()
        return out

    env._get_state_rand_vec = types.MethodType(_get_state_rand_vec, env)
    env.reset_model = types.MethodType(reset_model, env)
    env.reset = types.MethodType(reset, env)
    wrapped: gym.Env = gym.wrappers.TimeLimit(env, max_episode_steps)
    wrapped = AutoTerminateOnSuccessWrapper(wrapped)
    wrapped.toggle_terminate_on_success(False)
    return OneHotWrapper(wrapped, task_index, num_tasks)


def oracle_vector(task_names: list[str], seed: int, envs_per_task: int = 1,
                  max_episode_steps: int = 500, frozen_pads: bool = False
                  ) -> gym.vector.SyncVectorEnv:
    """The metaworld twin of ``EnvPoolTrainEnvs(task_names=..., seed=..., envs_per_task=...)``:
    same env index layout and seeds, ``SAME_STEP`` autoreset like the trainer's envs."""
    K = len(task_names)
    seeds = env_seeds(seed, K, envs_per_task)
    fns = [(lambda n=task_names[i % K], s=seeds[i], k=i % K:
            oracle_env(n, s, k, K, max_episode_steps, frozen_pads))
           for i in range(K * envs_per_task)]
    return gym.vector.SyncVectorEnv(fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


# ---------------------------------------------------------------------- parity measurements
@dataclass
class StepParity:
    """Per task, EnvPool against its metaworld twin (same goals), same actions every step."""

    task_names: list[str]
    steps: int  # vector steps run
    goal_maxdiff: np.ndarray  # (K,) max |goal obs difference| over every reset
    reset_obs_maxdiff: np.ndarray  # (K,) max |obs difference| of reset observations
    step_obs_maxdiff: np.ndarray  # (K,) max |obs difference| of step observations (see below)
    first_diverged_step: np.ndarray  # (K,) first episode step with an obs difference > 1e-3 (-1: none)
    reward_maxdiff: np.ndarray  # (K,) max |reward difference|
    reward_meandiff: np.ndarray  # (K,) mean |reward difference|
    success_agree: np.ndarray  # (K,) fraction of steps with the same info['success']
    final_success_equal: bool  # final_success of every ended episode equal
    ends_equal: bool  # terminated and truncated equal at every step
    truncation_steps: list[int]  # episode lengths at which EnvPool truncated


def step_parity(task_names: list[str], seed: int, steps: int, *, policy: str = "random",
                action_seed: int = 0, frozen_pads: bool = False) -> StepParity:
    """Step ``EnvPoolTrainEnvs`` and ``oracle_vector`` (one env per task) with the same
    actions (uniform random, or each task's scripted expert acting on EnvPool's observation)
    and compare every output of the trainer's interface.

    Step observations leave out what metaworld computes before its simulator is brought up
    to date at reset (``SawyerXYZEnv.reset`` returns the observation ``reset_model`` built
    before any ``mj_forward``; EnvPool's ``ResetModel`` ends with one): the reset
    observation itself (``reset_obs_maxdiff``) and the previous-frame block obs[18:36] of
    each episode's first step, which repeats it.
    """
    from toppo.algo.envpool_envs import EnvPoolTrainEnvs

    K = len(task_names)
    ep = EnvPoolTrainEnvs("custom", "v2", seed, task_names=task_names,
                          allow_drifting_goals=True)
    orc = oracle_vector(task_names, seed, frozen_pads=frozen_pads)
    experts = [ENV_POLICY_MAP[n]() for n in task_names] if policy == "expert" else None
    rng = np.random.default_rng(action_seed)
    try:
        o1 = ep.reset()
        o0 = orc.reset()[0].astype(np.float32)
        goal = np.abs(o1[:, 36:39] - o0[:, 36:39]).max(axis=1)
        reset = np.abs(o1 - o0).max(axis=1)
        step_obs = np.zeros(K)
        first_div = np.full(K, -1)
        rmax, rsum, agree = np.zeros(K), np.zeros(K), np.zeros(K)
        t_ep = np.zeros(K, dtype=int)
        final_equal = ends_equal = True
        trunc_at: list[int] = []
        obs = o1
        for _ in range(steps):
            if experts is None:
                a = rng.uniform(-1, 1, (K, 4)).astype(np.float32)
            else:
                a = np.stack([np.clip(p.get_action(obs[k, :39]), -1, 1)
                              for k, p in enumerate(experts)]).astype(np.float32)
            b = ep.step(a)
            n0, r0, te0, tr0, info0 = orc.step(a)
            n0 = n0.astype(np.float32)
            t_ep += 1
            ended = b.terminated | b.truncated
            ends_equal &= bool(np.array_equal(b.terminated, te0) and np.array_equal(b.truncated, tr0))
            s0 = np.where(info0["_success"], info0["success"], 0.0) if "success" in info0 \
                else np.zeros(K)
            if ended.any():  # metaworld's info of an ended row is the new episode's reset info
                s0 = s0.copy()
                s0[ended] = np.asarray(info0["final_info"]["success"])[ended]
            agree += ep.last_success == s0
            dr = np.abs(b.reward - np.asarray(r0, dtype=np.float32))
            rmax, rsum = np.maximum(rmax, dr), rsum + dr
            # compare the step's own observation: the final one for ended rows
            mine = np.where(ended[:, None], b.final_obs, b.obs)
            theirs = n0.copy()
            if ended.any():
                theirs[ended] = np.stack(info0["final_obs"][ended]).astype(np.float32)
                f0 = np.asarray(info0["final_info"]["success"], dtype=np.float32)[ended]
                final_equal &= bool(np.array_equal(b.final_success[ended], f0))
                trunc_at.extend(int(t) for t in t_ep[ended & b.truncated])
            d = np.abs(mine - theirs)
            d[t_ep == 1, 18:36] = 0.0  # metaworld's previous frame is its stale reset obs
            dm = d.max(axis=1)
            step_obs = np.maximum(step_obs, dm)
            first_div = np.where((first_div < 0) & (dm > 1e-3), t_ep, first_div)
            if ended.any():  # the new episodes' first observations
                g = np.zeros(K)
                g[ended] = np.abs(b.obs[ended, 36:39] - n0[ended, 36:39]).max(axis=1)
                goal = np.maximum(goal, g)
                rr = np.zeros(K)
                rr[ended] = np.abs(b.obs[ended] - n0[ended]).max(axis=1)
                reset = np.maximum(reset, rr)
                t_ep[ended] = 0
            obs = b.obs
    finally:
        ep.close()
        orc.close()
    return StepParity(list(task_names), steps, goal, reset, step_obs, first_div, rmax,
                      rsum / steps, agree / steps, final_equal, ends_equal, trunc_at)


def _vector_success(info: dict, ended: np.ndarray, n: int) -> np.ndarray:
    """info['success'] of a SAME_STEP gymnasium vector step (an ended row's from final_info)."""
    s = np.where(info["_success"], info["success"], 0.0) if "success" in info else np.zeros(n)
    if ended.any():
        s = np.asarray(s, dtype=np.float64).copy()
        s[ended] = np.asarray(info["final_info"]["success"], dtype=np.float64)[ended]
    return np.asarray(s, dtype=np.float64)


def expert_success(backend: str, seed: int, episodes: int, *, benchmark: str = "MT10",
                   task_names: list[str] | None = None) -> tuple[list[str], np.ndarray]:
    """Success rate per task of metaworld's scripted experts (``metaworld.policies``) over
    ``episodes`` full 500-step episodes per task (an episode succeeds if ``info['success']``
    is 1 at any step, as under terminate-on-success evaluation), on

    * ``envpool``: ``EnvPoolTrainEnvs`` (EnvPool's own goals),
    * ``metaworld-matched``: ``oracle_vector`` (metaworld, EnvPool's goals),
    * ``metaworld-benchmark``: the harness's metaworld training envs
      (``toppo.algo.envs.make_train_envs``: the benchmark's 50 fixed goals per task; the whole
      benchmark, ``task_names`` not allowed).

    The expert acts on each backend's float32 observation (the trainer's)."""
    from toppo.algo.envpool_envs import EnvPoolTrainEnvs

    if backend == "metaworld-benchmark":
        if task_names is not None:
            raise ValueError("metaworld-benchmark runs the whole benchmark")
        from toppo.algo.envs import make_train_envs
        envs, _ = make_train_envs(benchmark, "v2", seed, envs_per_task=1, async_envs=False,
                                  max_episode_steps=500)
        names = envs.task_names

        def reset() -> np.ndarray:
            return envs.reset()

        def step(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            obs, _, te, tr, infos = envs.step(a)
            ended = te | tr
            return obs, _vector_success(infos[0], ended, len(names)), ended
        close = envs.close
    else:
        names = list(task_names) if task_names is not None else None
        if names is None:
            from toppo.specs.registry import BENCHMARKS
            names = list(BENCHMARKS[benchmark])
        if backend == "envpool":
            ep = EnvPoolTrainEnvs(benchmark, "v2", seed, task_names=names,
                                  allow_drifting_goals=True)

            def reset() -> np.ndarray:
                return ep.reset()

            def step(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
                b = ep.step(a)
                return b.obs, ep.last_success.astype(np.float64), b.terminated | b.truncated
            close = ep.close
        elif backend == "metaworld-matched":
            orc = oracle_vector(names, seed)

            def reset() -> np.ndarray:
                return orc.reset()[0].astype(np.float32)

            def step(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
                obs, _, te, tr, info = orc.step(a)
                ended = te | tr
                return obs.astype(np.float32), _vector_success(info, ended, len(names)), ended
            close = orc.close
        else:
            raise ValueError(f"unknown backend {backend!r}")
    K = len(names)
    experts = [ENV_POLICY_MAP[n]() for n in names]
    wins = np.zeros(K)
    try:
        obs = reset()
        for _ in range(episodes):
            hit = np.zeros(K, dtype=bool)
            for _t in range(500):
                a = np.stack([np.clip(p.get_action(obs[k, :39]), -1, 1)
                              for k, p in enumerate(experts)]).astype(np.float32)
                obs, success, ended = step(a)
                hit |= success > 0
            if not ended.all():
                raise RuntimeError("episodes did not end together at step 500")
            wins += hit
    finally:
        close()
    return list(names), wins / episodes


def goal_distribution(benchmark: str, seed: int, resets: int) -> list[dict[str, float]]:
    """How EnvPool's training goals relate to the benchmark's 50 fixed goals per task.

    The scene of an episode is its reset observation's object position obs[4:7] and goal
    obs[36:39] (what rand_vec places). Per task: ``resets`` EnvPool scenes (fresh goals, as
    training on EnvPool sees them) against the 50 scenes of metaworld's benchmark generated
    from ``seed`` (what MT training on metaworld cycles through and evaluation uses).
    Reported per task: the distance (m, 6-d scene) from an EnvPool scene to the nearest
    benchmark scene (mean, 95th percentile), the same for a benchmark scene to its nearest
    *other* benchmark scene (the set's own spacing), and the per-coordinate range of each
    set."""
    import pickle

    from toppo.algo.envpool_envs import EnvPoolTrainEnvs
    from toppo.specs.registry import BENCHMARKS

    names = list(BENCHMARKS[benchmark])
    copies = 50
    ep = EnvPoolTrainEnvs(benchmark, "v2", seed, envs_per_task=copies, allow_drifting_goals=True)
    scenes_ep = {k: [] for k in range(len(names))}
    try:
        for _ in range(max(1, resets // copies)):
            obs = ep.reset()
            for i, k in enumerate(ep.task_ids):
                scenes_ep[k].append(np.r_[obs[i, 4:7], obs[i, 36:39]])
    finally:
        ep.close()
    bench = getattr(metaworld, benchmark)(seed=seed)
    rows = []
    for k, name in enumerate(names):
        env = metaworld.ALL_V3_ENVIRONMENTS[name](reward_function_version="v2")
        tasks = [t for t in bench.train_tasks if t.env_name == name]
        scenes_mw = []
        for t in tasks:
            env.set_task(t)
            env.reset()
            o, *_ = env.step(np.zeros(4, np.float32))  # metaworld's reset obs is stale
            scenes_mw.append(np.r_[o[4:7], o[36:39]])
        env.close()
        a, b = np.asarray(scenes_ep[k]), np.asarray(scenes_mw)
        d_ep = np.linalg.norm(a[:, None] - b[None], axis=2).min(axis=1)
        d_bb = np.linalg.norm(b[:, None] - b[None], axis=2)
        np.fill_diagonal(d_bb, np.inf)
        d_bb = d_bb.min(axis=1)
        rows.append({"task": name, "envpool_scenes": len(a), "benchmark_scenes": len(b),
                     "nn_envpool_to_benchmark_mean": float(d_ep.mean()),
                     "nn_envpool_to_benchmark_p95": float(np.percentile(d_ep, 95)),
                     "nn_benchmark_to_benchmark_mean": float(d_bb.mean()),
                     "range_envpool": np.ptp(a.astype(np.float64), axis=0).round(3).tolist(),
                     "range_benchmark": np.ptp(b, axis=0).round(3).tolist(),
                     "goal_unique_benchmark": len({tuple(np.round(pickle.loads(t.data)["rand_vec"], 9))
                                                   for t in tasks})})
    return rows
