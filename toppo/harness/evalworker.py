"""Evaluation of frozen policy snapshots, inline or in worker processes overlapping training.

At an evaluation step the trainer hands the evaluator a frozen copy of the actor's weights
(a CPU ``state_dict``). The evaluator rebuilds the actor from the config
(``toppo.algo.networks.build_actor``) and acts with ``Actor.act_deterministic`` on CPU in float32
with one torch thread, in both modes, so an evaluation's numbers depend on the weights and
the eval envs only -- not on the mode, the number of eval workers, the learner's device or
its thread count (``eval_mode`` and ``eval_workers`` are left out of the config hash).

* ``InlineEvaluator`` evaluates at once in the trainer process (training waits).
* ``OverlapEvaluator`` splits every evaluation by task across ``eval_workers`` processes
  (spawn context: no fork of a process that already runs torch threads): worker w holds a
  contiguous slice of the tasks, all their eval copies, and evaluates them from the same
  env snapshot every time; the parts join in task order. Each worker builds its envs once,
  from the benchmark's pickled per-task constructors (no second goal generation), so more
  workers shorten each evaluation and shrink each worker's envs. The policy acts per task
  (``toppo.algo.evaluation``), so a task's numbers do not depend on which tasks share its
  process. Results are committed in step order.

Both keep every submitted evaluation ``pending`` until its result is committed; the
trainer's checkpoint stores the pending steps with their weights and a resumed trainer
submits them again, so an evaluation in flight when the trainer died is redone and gives
the same numbers.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import multiprocessing as mp
import os
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from toppo.harness import numerics

numerics.apply()  # before torch loads, in a spawned worker too (toppo.harness.numerics)

import numpy as np
import torch

from toppo.algo.envs import EnvCopies, make_eval_envs
from toppo.algo.evaluation import EvalResult, concat_results, evaluate
from toppo.algo.networks import build_actor, policy_input
from toppo.harness.procs import die_with_parent, exit_description
from toppo.specs.config import TrainConfig
from toppo.specs.cores import eval_worker_count


@dataclass
class EvalSpec:
    """What an evaluator needs to rebuild the eval envs and the actor of a run."""
    cfg: TrainConfig
    eval_fns: list[functools.partial]  # eval env constructors (toppo.algo.envs.eval_env_fns)
    obs_dim: int
    act_dim: int

    @property
    def copies(self) -> int:
        return min(self.cfg.eval_envs_per_task, self.cfg.eval_episodes)

    def task_slices(self, workers: int) -> list[range]:
        """Contiguous task slices for ``workers`` evaluation workers (at most one per task)."""
        parts = np.array_split(np.arange(len(self.eval_fns)), min(workers, len(self.eval_fns)))
        return [range(int(p[0]), int(p[-1]) + 1) for p in parts]


@dataclass
class Done:
    """A committed evaluation: its step, result and the seconds it took where it ran."""
    step: int
    result: EvalResult
    eval_s: float


def snapshot_weights(actor: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A frozen CPU copy of the actor's weights (later optimiser steps do not touch it)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in actor.state_dict().items()}


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def _rng_untouched() -> Iterator[None]:
    """Building eval envs and an actor must not move the trainer's global random streams
    (torch's initialises the actor, numpy's some env constructors draw from), or training
    would depend on where evaluation runs."""
    np_state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        yield
    np.random.set_state(np_state)


class _SnapshotPolicy:
    """The evaluation policy: an actor rebuilt on CPU, loaded with a snapshot's weights."""

    def __init__(self, spec: EvalSpec):
        with _rng_untouched():
            self.actor = build_actor(spec.cfg, spec.obs_dim, spec.act_dim).eval()

    def load(self, weights: dict[str, torch.Tensor]) -> None:
        self.actor.load_state_dict(weights)

    @torch.no_grad()
    def __call__(self, obs: np.ndarray, task: np.ndarray) -> np.ndarray:
        # a copy in torch's own aligned memory: MKL rounds by address (networks.policy_input)
        return self.actor.act_deterministic(policy_input(obs), torch.as_tensor(task)).numpy()


def _run_one(policy: _SnapshotPolicy, envs: EnvCopies, snapshot: list[Any], episodes: int,
             weights: dict[str, torch.Tensor]) -> tuple[EvalResult, float]:
    t0 = time.perf_counter()
    policy.load(weights)
    res = evaluate(policy, envs, snapshot, episodes)
    return res, time.perf_counter() - t0


class InlineEvaluator:
    """Evaluates each snapshot at once, in the calling process."""

    def __init__(self, spec: EvalSpec, async_envs: bool):
        self.spec = spec
        with _rng_untouched():
            self.envs = make_eval_envs(spec.eval_fns, spec.copies, async_envs)
        self.snapshot = self.envs.get_state()
        self.policy = _SnapshotPolicy(spec)
        self._done: list[Done] = []

    def submit(self, step: int, weights: dict[str, torch.Tensor]) -> None:
        with _one_thread(), _rng_untouched():
            res, dt = _run_one(self.policy, self.envs, self.snapshot, self.spec.cfg.eval_episodes,
                               weights)
        self._done.append(Done(step, res, dt))

    def pending(self) -> list[tuple[int, dict[str, torch.Tensor]]]:
        return []  # nothing is ever in flight

    def collect(self, wait: bool = False) -> list[Done]:
        done, self._done = self._done, []
        return done

    def close(self) -> None:
        self.envs.close()


# ---------------------------------------------------------------------- worker processes
def _worker_main(conn, spec: EvalSpec, async_envs: bool, tasks: range, parent_pid: int) -> None:
    if not die_with_parent(parent_pid):  # the parent died before prctl took effect
        return
    envs = None
    try:
        numerics.configure_torch(1)
        numerics.check()  # the trainer's numerics mode, in effect here too
        t0 = time.perf_counter()
        envs = make_eval_envs(spec.eval_fns, spec.copies, async_envs, tasks)
        snapshot = envs.get_state()
        policy = _SnapshotPolicy(spec)
        conn.send(("ready", time.perf_counter() - t0))
        while True:
            try:
                msg = conn.recv()
            except EOFError:  # the trainer is gone
                break
            if msg is None:
                break
            seq, step, weights = msg
            res, dt = _run_one(policy, envs, snapshot, spec.cfg.eval_episodes, weights)
            conn.send(("result", seq, step, res, dt))
    except KeyboardInterrupt:
        pass
    except BaseException:  # report anything else to the trainer, which raises it
        with contextlib.suppress(OSError, EOFError, BrokenPipeError):
            conn.send(("error", traceback.format_exc()))
    finally:
        if envs is not None:
            envs.close()
        conn.close()


class EvalWorkerError(RuntimeError):
    """An evaluation worker failed or exited; the message carries its traceback or exit code."""


class OverlapEvaluator:
    """Evaluates snapshots in ``workers`` spawned processes while training goes on, each
    evaluation split by task across all of them."""

    def __init__(self, spec: EvalSpec, async_envs: bool, workers: int):
        self.spec = spec
        ctx = mp.get_context("spawn")
        self._procs, self._conns = [], []
        self.slices = spec.task_slices(workers)
        for i, tasks in enumerate(self.slices):  # they compute in this process's numerics mode
            parent, child = ctx.Pipe(duplex=True)
            # not a daemon: a worker may own AsyncVectorEnv subprocesses; close() (also at
            # interpreter exit) stops it, and die_with_parent covers a killed trainer
            proc = ctx.Process(target=_worker_main, name=f"toppo-eval-{i}",
                               args=(child, spec, async_envs, tasks, os.getpid()))
            with numerics.for_workers():
                proc.start()
            child.close()  # only the worker holds its end: its exit reads as EOF here
            self._procs.append(proc)
            self._conns.append(parent)
        self._pending: dict[int, tuple[int, dict[str, torch.Tensor]]] = {}  # seq -> step, weights
        self._parts: dict[int, dict[int, tuple[EvalResult, float]]] = {}  # seq -> worker -> part
        self._next_seq = 0  # the next sequence number to hand out
        self._commit_seq = 0  # the next one to commit
        self.wait_s = 0.0  # seconds the trainer spent blocked waiting for results
        self.ready_s: list[float] = []  # each worker's env-build time
        self._closed = False
        atexit.register(self.close)

    def submit(self, step: int, weights: dict[str, torch.Tensor]) -> None:
        seq = self._next_seq
        self._next_seq += 1
        self._pending[seq] = (step, weights)
        self._parts[seq] = {}
        for conn in self._conns:  # every worker evaluates its tasks
            conn.send((seq, step, weights))

    def pending(self) -> list[tuple[int, dict[str, torch.Tensor]]]:
        """Submitted evaluations not yet committed, in step order (for the checkpoint)."""
        return [self._pending[s] for s in sorted(self._pending)]

    def _describe(self, i: int) -> str:
        tasks = self.slices[i]
        return f"evaluation worker {i} (pid {self._procs[i].pid}, tasks {tasks.start}-{tasks.stop - 1})"

    def _receive(self, i: int) -> None:
        conn, proc = self._conns[i], self._procs[i]
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            proc.join(timeout=5)
            raise EvalWorkerError(f"{self._describe(i)} {exit_description(proc.exitcode)} "
                                  "with evaluations pending") from None
        if msg[0] == "ready":
            self.ready_s.append(msg[1])
        elif msg[0] == "result":
            _, seq, step, res, dt = msg
            self._parts[seq][i] = (res, dt)
        else:
            raise EvalWorkerError(f"{self._describe(i)} failed:\n{msg[1]}")

    def _complete(self, seq: int) -> bool:
        return len(self._parts[seq]) == len(self._conns)

    def collect(self, wait: bool = False) -> list[Done]:
        """Results ready to commit, in step order; ``wait``: block until none is pending."""
        t0 = time.perf_counter()
        while True:
            for i, conn in enumerate(self._conns):
                while conn.poll():
                    self._receive(i)
            if not wait or all(self._complete(s) for s in self._pending):
                break
            # block on a worker that still owes a part of the oldest unfinished evaluation
            oldest = min(s for s in self._pending if not self._complete(s))
            self._receive(min(set(range(len(self._conns))) - set(self._parts[oldest])))
        if wait:
            self.wait_s += time.perf_counter() - t0
        done = []
        while self._commit_seq in self._pending and self._complete(self._commit_seq):
            step, _ = self._pending.pop(self._commit_seq)
            parts = self._parts.pop(self._commit_seq)
            ordered = [parts[i] for i in range(len(self._conns))]
            # the evaluation took as long as its slowest part (the parts run side by side)
            done.append(Done(step, concat_results([r for r, _ in ordered]),
                             max(dt for _, dt in ordered)))
            self._commit_seq += 1
        return done

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        busy = bool(self._pending)  # closing mid-run (an error): stop, do not wait
        for conn in self._conns:
            with contextlib.suppress(OSError, BrokenPipeError):
                conn.send(None)
        for proc in self._procs:
            proc.join(timeout=1 if busy else 30)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
        for conn in self._conns:
            conn.close()


def make_evaluator(spec: EvalSpec) -> InlineEvaluator | OverlapEvaluator:
    cfg = spec.cfg
    if cfg.eval_mode == "inline":
        return InlineEvaluator(spec, cfg.async_envs)
    return OverlapEvaluator(spec, cfg.async_envs, eval_worker_count(cfg))
