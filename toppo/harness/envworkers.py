"""Training envs stepped by persistent worker processes (``env_workers`` = N > 0).

Worker w owns a contiguous slice of the run's env indices (``copy * K + task``), the slices
cut to about equal stepping time by each task's measured cost (``toppo.specs.cores``), and steps it
as one ``gymnasium.vector.SyncVectorEnv`` with same-step autoreset, exactly as the trainer's
own process does with ``env_workers=0``: the same constructors (``toppo.algo.envs.train_env_fns``),
the same env seeds, the same float64 arithmetic. All workers step in lockstep: the trainer
writes the actions to shared memory, sends each worker one short message, and waits for one
short reply from each; the workers write observations, rewards, terminated / truncated
flags, final observations and final success straight into shared memory
(``toppo.algo.envs.step_envs``: no info dict is built or pickled per step). So the trainer reads the same
arrays whatever the worker count, and the worker count is not in the config hash.

Faults: a worker that dies (any signal, any exit) is noticed at once through its process
sentinel, and the trainer stops with ``EnvWorkerDied`` naming the worker, its pid and its
envs' tasks; the run then resumes from its checkpoint. Workers ask the kernel for SIGKILL
when the trainer dies (``toppo.harness.procs.die_with_parent``), so no worker outlives it, and
``multiprocessing``'s resource tracker unlinks the shared memory of a trainer that was
killed.

Workers import no torch: they step envs only, started in the trainer's numerics mode
(``toppo.harness.numerics.for_workers``: numpy's OpenBLAS kernel changes MT50 stepping). How many
there are: ``toppo.specs.cores``.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import multiprocessing as mp
import os
import signal
import time
import traceback
from multiprocessing import shared_memory
from multiprocessing.connection import wait
from typing import Any

import numpy as np

from toppo.algo.compiled_models import compile_once
from toppo.algo.envs import (
    StepBatch,
    TrainEnvs,
    _task_names,
    benchmark_env_fns,
    eval_env_fns,
    quiet_box_precision_warnings,
    step_envs,
    train_env_fns,
)
from toppo.harness import numerics
from toppo.harness.procs import die_with_parent, exit_description
from toppo.specs.cores import STEP_COST_US, balanced_slices


class EnvWorkerError(RuntimeError):
    """An env worker failed; the message names the worker and its tasks."""


class EnvWorkerDied(EnvWorkerError):
    """An env worker process exited or was killed."""


# ---------------------------------------------------------------------- shared arrays
class _SharedArrays:
    """Named numpy arrays in shared memory, all of the first dimension N (the envs)."""

    def __init__(self, layout: dict[str, tuple[tuple[int, ...], str]],
                 names: dict[str, str] | None = None):
        self.layout = layout
        self._shm: dict[str, shared_memory.SharedMemory] = {}
        self.arrays: dict[str, np.ndarray] = {}
        for key, (shape, dtype) in layout.items():
            size = max(1, int(np.prod(shape)) * np.dtype(dtype).itemsize)
            shm = (shared_memory.SharedMemory(create=True, size=size) if names is None
                   else shared_memory.SharedMemory(name=names[key]))
            self._shm[key] = shm
            self.arrays[key] = np.ndarray(shape, dtype=dtype, buffer=shm.buf)
        self.owner = names is None

    @property
    def names(self) -> dict[str, str]:
        return {k: shm.name for k, shm in self._shm.items()}

    def __getitem__(self, key: str) -> np.ndarray:
        return self.arrays[key]

    def close(self) -> None:
        self.arrays.clear()  # no view may outlive the buffers
        for shm in self._shm.values():
            with contextlib.suppress(BufferError, OSError):
                shm.close()
            if self.owner:
                with contextlib.suppress(FileNotFoundError):
                    shm.unlink()
        self._shm.clear()


def _layout(num_envs: int, obs_dim: int, act_dim: int) -> dict[str, tuple[tuple[int, ...], str]]:
    n = num_envs
    return {"actions": ((n, act_dim), "float32"), "obs": ((n, obs_dim), "float64"),
            "reward": ((n,), "float64"), "terminated": ((n,), "bool"),
            "truncated": ((n,), "bool"), "final_obs": ((n, obs_dim), "float64"),
            "final_success": ((n,), "float64")}


_OUTPUTS = ("obs", "reward", "terminated", "truncated", "final_obs", "final_success")


# ---------------------------------------------------------------------- worker process
def _worker_main(conn, fns: list[functools.partial], lo: int, hi: int, dims: tuple[int, int, int],
                 names: dict[str, str] | None, parent_pid: int, cpu: int | None) -> None:
    if not die_with_parent(parent_pid, signal.SIGKILL):  # the trainer died already
        return
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    # Ctrl-C reaches the whole process group: the trainer decides, the workers only step
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import gymnasium as gym

    quiet_box_precision_warnings()  # a spawned process: the trainer's filters are not here
    envs = shm = None
    try:
        with compile_once():  # a slice with env copies: one compile per task
            envs = gym.vector.SyncVectorEnv(fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
        shm = _SharedArrays(_layout(*dims), names)
        conn.send(("ready", os.getpid()))
        while True:
            try:
                msg = conn.recv()
            except EOFError:  # the trainer is gone
                break
            if msg == "step":
                step_envs(envs.envs, shm["actions"][lo:hi], [shm[k][lo:hi] for k in _OUTPUTS])
                conn.send("ok")
            elif msg == "reset":
                shm["obs"][lo:hi] = envs.reset()[0]
                conn.send("ok")
            elif msg == "get_state":  # each env's own checkpoint, in index order
                conn.send([env.get_checkpoint() for env in envs.envs])
            elif msg[0] == "set_state":
                for env, ckpt in zip(envs.envs, msg[1], strict=True):
                    env.load_checkpoint([ckpt])  # env ids repeat across copies: one at a time
                conn.send("ok")
            elif msg[0] == "call":
                envs.call(msg[1], *msg[2])
                conn.send("ok")
            elif msg == "close":
                break
            else:
                raise ValueError(f"unknown command {msg!r}")
    except BaseException:  # report it to the trainer, which raises it with the worker's name
        with contextlib.suppress(OSError, EOFError, BrokenPipeError):
            conn.send(("error", traceback.format_exc()))
    finally:
        if shm is not None:
            shm.close()
        if envs is not None:
            envs.close()
        conn.close()


# ---------------------------------------------------------------------- the pool
class EnvWorkerPool(TrainEnvs):
    """N env worker processes over the run's envs, with ``EnvCopies``' interface.

    ``fns``: every env's constructor in index order (``toppo.algo.envs.train_env_fns``);
    ``like``: a vector env of the same benchmark (one env per task), for the spaces and the
    task names; ``cpus``: worker w runs on ``cpus[w % len(cpus)]`` (None: anywhere;
    ``toppo.specs.cores.env_worker_cpus``)."""

    def __init__(self, fns: list[functools.partial], like, workers: int,
                 cpus: list[int] | None = None):
        self.num_envs, self.num_tasks = len(fns), like.num_envs
        self.task_ids = np.tile(np.arange(self.num_tasks), self.num_envs // self.num_tasks)
        self.single_observation_space = like.single_observation_space
        self.single_action_space = like.single_action_space
        self.task_names: list[str] = _task_names(like)
        self.obs_dim = self.single_observation_space.shape[0]
        self.act_dim = self.single_action_space.shape[0]
        self.busy_s = 0.0  # seconds spent in reset() and step() (the trainer's time budget)
        # contiguous slices of about equal stepping time (tasks differ up to 3x in cost)
        self.slices = balanced_slices([STEP_COST_US[self.task_names[i % self.num_tasks]]
                                       for i in range(self.num_envs)], workers)
        dims = (self.num_envs, self.obs_dim, self.act_dim)
        self.shm = _SharedArrays(_layout(*dims))
        ctx = mp.get_context("spawn")  # no fork of a process that already runs torch threads
        self._procs, self._conns = [], []
        self._closed = False
        self._stepping = False  # a step sent by step_async, not yet gathered
        atexit.register(self.close)
        try:
            for w, (lo, hi) in enumerate(self.slices):
                parent, child = ctx.Pipe(duplex=True)
                proc = ctx.Process(target=_worker_main, name=f"toppo-env-{w}", daemon=True,
                                   args=(child, fns[lo:hi], lo, hi, dims, self.shm.names,
                                         os.getpid(), cpus[w % len(cpus)] if cpus else None))
                with numerics.for_workers():  # numpy's kernels as in the trainer (toppo.harness.numerics)
                    proc.start()
                child.close()  # only the worker holds its end: its exit reads as EOF here
                self._procs.append(proc)
                self._conns.append(parent)
            self.pids = self._gather("building its envs")
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ messaging
    def describe(self, w: int) -> str:
        lo, hi = self.slices[w]
        tasks = sorted({self.task_names[i % self.num_tasks] for i in range(lo, hi)},
                       key=self.task_names.index)
        return (f"env worker {w} (pid {self._procs[w].pid}, envs {lo}-{hi - 1}: "
                f"{', '.join(tasks)})")

    def _gather(self, doing: str, workers: list[int] | None = None) -> list[Any]:
        """One reply from each of ``workers`` (all by default), in worker order; a worker
        that dies or fails first raises, naming it."""
        todo = list(range(len(self._conns)) if workers is None else workers)
        replies: dict[int, Any] = {}
        waiting = {self._conns[w]: w for w in todo} | {self._procs[w].sentinel: w for w in todo}
        while len(replies) < len(todo):
            for ready in wait(list(waiting)):
                w = waiting[ready]
                if w in replies:
                    continue
                if ready is self._conns[w]:
                    try:
                        msg = ready.recv()
                    except (EOFError, OSError):
                        msg = None
                    if msg is not None and not (isinstance(msg, tuple) and msg[:1] == ("error",)):
                        replies[w] = msg
                        del waiting[self._conns[w]], waiting[self._procs[w].sentinel]
                        continue
                    if msg is not None:
                        self.close()
                        raise EnvWorkerError(f"{self.describe(w)} failed while {doing}:\n{msg[1]}")
                # the sentinel (or a closed pipe): the process is gone
                proc = self._procs[w]
                proc.join(timeout=5)
                who = self.describe(w)
                self.close()
                raise EnvWorkerDied(f"{who} {exit_description(proc.exitcode)} while {doing}")
        return [replies[w] for w in todo]

    def _send(self, msg: Any) -> None:
        """``msg`` (or ``msg(w)``) to every worker; the replies are ``_gather``ed."""
        if self._closed:
            raise EnvWorkerError("the env worker pool is closed")
        for w, conn in enumerate(self._conns):
            try:
                conn.send(msg if not callable(msg) else msg(w))
            except (BrokenPipeError, OSError):
                pass  # _gather names the dead worker

    def _broadcast(self, msg: Any, doing: str) -> list[Any]:
        self._send(msg)
        return self._gather(doing)

    # ------------------------------------------------------------------ the env interface
    def reset(self) -> np.ndarray:
        t0 = time.perf_counter()
        self._broadcast("reset", "resetting its envs")
        obs = self.shm["obs"].astype(np.float32)
        self.busy_s += time.perf_counter() - t0
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        """The workers start stepping; the trainer works on until ``step_wait``."""
        t0 = time.perf_counter()
        if self._stepping:
            raise RuntimeError("step_async while a step is in flight")
        self.shm["actions"][:] = actions
        self._send("step")
        self._stepping = True
        self.busy_s += time.perf_counter() - t0

    def step_wait(self) -> StepBatch:
        t0 = time.perf_counter()
        if not self._stepping:
            raise RuntimeError("step_wait without a step_async before it")
        self._stepping = False
        self._gather("stepping its envs")
        batch = StepBatch.cast(*(self.shm[k] for k in _OUTPUTS))  # casts copy out of shared memory
        self.busy_s += time.perf_counter() - t0
        return batch

    def get_state(self) -> list[Any]:
        """Every env's checkpoint, per copy (the layout of ``EnvCopies.get_state``, so a
        checkpoint resumes with any worker count)."""
        flat = [ck for part in self._broadcast("get_state", "saving its envs' state") for ck in part]
        K = self.num_tasks
        return [tuple(flat[c * K:(c + 1) * K]) for c in range(self.num_envs // K)]

    def set_state(self, state: list[Any]) -> None:
        flat = [ck for copy in state for ck in copy]
        if len(flat) != self.num_envs:
            raise ValueError(f"env state holds {len(flat)} envs, this run has {self.num_envs}")
        self._broadcast(lambda w: ("set_state", flat[slice(*self.slices[w])]),
                        "restoring its envs' state")

    def call(self, name: str, *args: Any) -> None:
        self._broadcast(("call", name, args), f"calling {name}")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        for conn in self._conns:
            with contextlib.suppress(OSError, BrokenPipeError):
                conn.send("close")
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
        for conn in self._conns:
            conn.close()
        self.shm.close()


def make_worker_train_envs(benchmark: str, reward_version: str, seed: int, *, envs_per_task: int,
                           max_episode_steps: int, workers: int, cpus: list[int] | None = None
                           ) -> tuple[EnvWorkerPool, list[functools.partial]]:
    """``toppo.algo.envs.make_train_envs``' envs, stepped by ``workers`` worker processes (pinned
    to ``cpus``), and the evaluation constructors of the same benchmark goals."""
    base, fns = benchmark_env_fns(benchmark, reward_version, seed, max_episode_steps)
    try:
        return EnvWorkerPool(train_env_fns(fns, seed, envs_per_task), base, workers, cpus), \
            eval_env_fns(fns, seed)
    finally:
        base.close()  # only its constructors, spaces and task names were needed
