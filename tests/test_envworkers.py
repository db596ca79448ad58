"""Training envs in worker processes (toppo.harness.envworkers) on the real MT10 benchmark.

The pool steps the same envs as the trainer's own process, array for array; a cell writes
the same logs with 0, 1, 2 or 3 env workers; a worker killed mid-run stops the trainer with
one line naming it and its tasks, and the cell resumes (with another worker count) to the
same logs; a killed trainer leaves no worker behind.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from toppo.harness.procs import alive, children
from toppo.specs.config import ConfigError, make_config, parse_value
from toppo.specs.cores import (
    STEP_COST_US,
    auto_env_workers,
    auto_eval_workers,
    balanced_slices,
    env_worker_count,
    env_worker_cpus,
    eval_steps_per_train_step,
    eval_worker_count,
)
from toppo.specs.logschema import TRAIN_METRIC_COLUMNS

TIMING = ["wall_time_s", "env_sps", "rollout_time_s", "learn_time_s", "update_time_s",
          "diagnostics_time_s"]
# 3 updates of 250 steps per task in episodes of 100 steps: every env's episode is truncated
# twice inside a rollout, so the bootstrapped final observations travel through shared memory
# too (short episodes keep the runs and their evaluations cheap; the length is not under test)
TINY = ["--variant", "toppo", "--benchmark", "MT10", "--reward-version", "v2", "--seed", "5",
        "--device", "cpu", "--total-steps", "7500", "rollout_steps_per_task=250",
        "max_episode_steps=100", "num_epochs=2", "num_minibatches=2", "hidden_sizes=32,32",
        "eval_episodes=2", "eval_envs_per_task=2", "eval_every_steps=2500", "eval_mode=inline",
        "torch_threads=1", "progress_every_s=0"]


def test_auto_gives_evaluation_its_share_of_the_cores_and_the_envs_the_rest():
    # the paper's cadence: 50 episodes per task every 1M steps, episodes of at most 500 steps
    assert eval_steps_per_train_step(50, 50, 500, 1_000_000) == 1.25  # MT50
    assert eval_steps_per_train_step(50, 10, 500, 1_000_000) == 0.25  # MT10
    assert auto_eval_workers(cores=16, eval_ratio=1.25, num_tasks=50) == 9  # 16 x 5/9 = 8.9
    assert auto_eval_workers(cores=16, eval_ratio=0.25, num_tasks=10) == 3  # 16 x 1/5 = 3.2
    assert auto_eval_workers(cores=2, eval_ratio=1.25, num_tasks=50) == 1
    assert auto_eval_workers(cores=1, eval_ratio=0.25, num_tasks=10) == 1  # always one
    assert auto_eval_workers(cores=64, eval_ratio=1.25, num_tasks=10) == 10  # one per task at most
    assert auto_env_workers(cores=16, eval_workers=6, num_envs=50) == 10
    assert auto_env_workers(cores=16, eval_workers=0, num_envs=10) == 10  # never more than envs
    assert auto_env_workers(cores=2, eval_workers=0, num_envs=10) == 2
    assert auto_env_workers(cores=2, eval_workers=1, num_envs=10) == 0  # 1 worker: in-process
    assert auto_env_workers(cores=1, eval_workers=1, num_envs=10) == 0
    cfg = make_config(cores=8, eval_workers=3)
    assert env_worker_count(cfg) == 5
    paper_mt50 = make_config(benchmark="MT50", cores=16)
    assert (eval_worker_count(paper_mt50), env_worker_count(paper_mt50)) == (9, 7)
    assert eval_worker_count(make_config(cores=16, eval_mode="inline")) == 0
    assert env_worker_count(make_config(cores=8, eval_mode="inline")) == 8
    assert env_worker_count(make_config(cores=8, async_envs=True)) == 0
    assert env_worker_count(make_config(cores=8, env_workers=3)) == 3


def test_slices_are_contiguous_and_the_costliest_is_as_cheap_as_possible():
    assert balanced_slices([5, 1, 1, 1], 2) == [(0, 1), (1, 4)]
    assert balanced_slices([1, 1, 1, 5], 2) == [(0, 3), (3, 4)]
    assert balanced_slices([3, 3, 3, 3], 2) == [(0, 2), (2, 4)]
    assert balanced_slices([2, 2, 2, 2, 2], 3) == [(0, 2), (2, 4), (4, 5)]  # costliest: 4
    assert balanced_slices([1, 9, 1], 3) == [(0, 1), (1, 2), (2, 3)]  # one slice per env
    assert balanced_slices([1, 1], 5) == [(0, 1), (1, 2)]  # never more slices than envs
    assert balanced_slices([7], 1) == [(0, 1)]
    # MT10's own order: contiguous halves would cost 3,380 and 2,230 us per step; here 2,980 and 2,630
    mt10 = ["reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-open-v3",
            "drawer-close-v3", "button-press-topdown-v3", "peg-insert-side-v3",
            "window-open-v3", "window-close-v3"]
    costs = [STEP_COST_US[name] for name in mt10]
    assert balanced_slices(costs, 2) == [(0, 4), (4, 10)]
    assert [sum(costs[a:b]) for a, b in balanced_slices(costs, 2)] == [2980, 2630]


def test_workers_are_pinned_only_where_the_job_owns_the_cores_of_its_affinity():
    affinity = sorted(os.sched_getaffinity(0))
    assert env_worker_cpus(make_config()) == affinity  # cores unset: the affinity is the job's
    assert env_worker_cpus(make_config(cores=len(affinity))) == affinity
    # a job given fewer (or more) cores than its affinity shares the machine: not pinned
    assert env_worker_cpus(make_config(cores=len(affinity) + 1)) is None


def test_every_meta_world_task_has_a_step_cost():
    import metaworld

    assert set(STEP_COST_US) == set(metaworld.ALL_V3_ENVIRONMENTS)


def test_worker_counts_are_counts_or_auto_and_not_hashed():
    assert parse_value("env_workers", "auto") == "auto" and parse_value("env_workers", "3") == 3
    with pytest.raises(ConfigError, match="'env_workers': expected a count or auto"):
        parse_value("env_workers", "many")
    with pytest.raises(ConfigError, match="env_workers"):
        make_config(env_workers=-1)
    with pytest.raises(ConfigError, match="env_workers"):
        make_config(env_workers=2, async_envs=True)
    with pytest.raises(ConfigError, match="'eval_workers': must be an integer of at least 1"):
        make_config(eval_workers=0)
    hashes = {make_config(env_workers=w, eval_workers=e, cores=c).config_hash()
              for w, e, c in ((0, 1, 0), (3, 2, 0), ("auto", "auto", 16))}
    assert len(hashes) == 1


@pytest.mark.slow
def test_pool_steps_exactly_the_envs_of_the_trainers_process():
    import gymnasium as gym

    from toppo.algo.envs import EnvCopies, benchmark_env_fns, train_env_fns
    from toppo.harness.envworkers import EnvWorkerPool

    base, fns = benchmark_env_fns("MT10", "v2", 11, max_episode_steps=30)
    base.close()
    every = train_env_fns(fns, 11, envs_per_task=2)  # 20 envs: copy * 10 + task
    local = EnvCopies([gym.vector.SyncVectorEnv(every[c * 10:(c + 1) * 10],
                                                autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
                       for c in range(2)], 10)
    cpu = min(os.sched_getaffinity(0))
    pool = EnvWorkerPool(every, local.copies[0], workers=3, cpus=[cpu])  # slices straddle the copies
    try:
        assert pool.slices == [(0, 6), (6, 12), (12, 20)]  # balanced by the tasks' step costs
        assert [os.sched_getaffinity(pid) for _, pid in pool.pids] == [{cpu}] * 3
        assert pool.task_names == local.task_names and (pool.task_ids == local.task_ids).all()
        rng = np.random.default_rng(0)

        def run(steps: int) -> int:
            ended = 0
            for _ in range(steps):
                a = rng.uniform(-1, 1, (20, 4)).astype(np.float32)
                want, got = local.step(a), pool.step(a)
                for field in ("obs", "reward", "terminated", "truncated", "final_obs",
                              "final_success"):
                    np.testing.assert_array_equal(getattr(got, field), getattr(want, field),
                                                  err_msg=field)
                ended += int(want.ended.sum())
            return ended

        np.testing.assert_array_equal(pool.reset(), local.reset())
        assert run(70) == 40  # two truncations of every env at 30 steps
        state = local.get_state()
        assert pool.get_state() == state  # same layout: a checkpoint resumes either way
        run(10)
        pool.set_state(state)  # back to the goals and random streams of step 70
        local.set_state(state)
        np.testing.assert_array_equal(pool.reset(), local.reset())
        run(35)
    finally:
        pool.close()
        local.close()


def _train(out: Path, *extra: str, wait: bool = True):
    """``TINY`` with ``extra`` key=value arguments (replacing TINY's value of a key)."""
    keys = {e.split("=")[0] for e in extra}
    args = [a for a in TINY if a.split("=")[0] not in keys]
    cmd = [sys.executable, "-m", "toppo.train", "--out-dir", str(out), *args, *extra]
    if wait:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _logs(out: Path) -> tuple[bytes, pd.DataFrame]:
    metrics = pd.read_csv(out / "train_metrics.csv")
    assert set(TIMING) <= set(TRAIN_METRIC_COLUMNS) and len(metrics) == 3
    return (out / "eval.csv").read_bytes(), metrics.drop(columns=TIMING)


def _spawned_children(pid: int) -> list[int]:
    """multiprocessing-spawned children of ``pid`` (env and eval workers; not the tracker)."""
    out = []
    for child in children(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            out.append(child)
    return out



@pytest.fixture(scope="module")
def reference_run(tmp_path_factory) -> Path:
    """The cell trained with its envs in the trainer's own process (env_workers=0): what every
    worker count, and the resumed run, must write."""
    out = tmp_path_factory.mktemp("envworkers") / "w0"
    proc = _train(out, "env_workers=0")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert pd.read_json(out / "manifest.json", typ="series")["env_workers"] == 0
    return out


@pytest.mark.slow
def test_a_cell_writes_the_same_logs_with_any_number_of_env_workers(reference_run, tmp_path):
    ref = _logs(reference_run)
    for workers in (1, 2, 3):
        out = tmp_path / f"w{workers}"
        proc = _train(out, f"env_workers={workers}")
        assert proc.returncode == 0, proc.stderr[-3000:]
        manifest = pd.read_json(out / "manifest.json", typ="series")
        assert manifest["env_workers"] == workers
        logs = _logs(out)
        assert logs[0] == ref[0], f"eval.csv differs with {workers} env workers"
        pd.testing.assert_frame_equal(logs[1], ref[1], check_exact=True)


@pytest.mark.slow
def test_a_killed_worker_stops_the_trainer_and_the_cell_resumes_to_the_same_logs(reference_run,
                                                                                 tmp_path):
    ref = reference_run
    out = tmp_path / "killed"
    proc = _train(out, "env_workers=2", wait=False)
    try:
        deadline = time.monotonic() + 300
        while not (out / "checkpoints" / "latest.pt").exists():  # update 1 is saved
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.05)
        workers = _spawned_children(proc.pid)
        assert len(workers) == 2
        os.kill(workers[1], signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1
    # stderr otherwise holds only gymnasium's warnings from building metaworld's envs
    lines = [ln for ln in err.splitlines() if "WARN" not in ln and "gym.logger.warn(" not in ln]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("python -m toppo.train: error: env worker 1 (pid ")
    assert "envs 4-9: drawer-open-v3, drawer-close-v3, button-press-topdown-v3, " \
           "peg-insert-side-v3, window-open-v3, window-close-v3) was killed by SIGKILL while" in lines[0]
    assert not any(alive(w) for w in workers)

    resumed = _train(out, "env_workers=3")  # another count: not in the config hash
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stdout
    got, want = _logs(out), _logs(ref)
    assert got[0] == want[0]
    pd.testing.assert_frame_equal(got[1], want[1], check_exact=True)


@pytest.mark.slow
def test_a_killed_trainer_leaves_no_worker_behind(tmp_path):
    proc = _train(tmp_path / "run", "env_workers=3", "eval_mode=overlap", "eval_workers=2",
                  wait=False)
    try:
        deadline = time.monotonic() + 300
        while len(workers := _spawned_children(proc.pid)) < 5 or not (
                tmp_path / "run" / "checkpoints" / "latest.pt").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.05)
        proc.kill()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    deadline = time.monotonic() + 20
    while any(alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(w) for w in workers), "a worker outlived the trainer"
