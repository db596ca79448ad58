"""End-to-end training on the real MT10 benchmark (tiny networks and budgets).

Checks the log tables' shape and content, and that a run killed with SIGKILL and started
again with the same command resumes from its checkpoint and writes exactly the evaluation
table of an uninterrupted run.
"""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from toppo.specs.logschema import EVAL_COLUMNS

# episodes of 100 steps (5 per rollout): short runs and evaluations; the length is not under test
TINY = ["--benchmark", "MT10", "--reward-version", "v1", "--seed", "3", "--device", "cpu",
        "rollout_steps_per_task=500", "max_episode_steps=100", "num_epochs=2", "num_minibatches=2",
        "hidden_sizes=32,32", "eval_episodes=2", "eval_envs_per_task=2", "eval_every_steps=5000",
        "torch_threads=1", "progress_every_s=0"]


def train(out: Path, variant: str, total_steps: int, extra=()) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "toppo.train", "--variant", variant, "--total-steps",
           str(total_steps), "--out-dir", str(out), *TINY, *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["mtppo", "toppo"])
def test_training_writes_complete_logs(tmp_path, variant):
    out = tmp_path / variant
    proc = train(out, variant, 10_000)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "update 2/2" in proc.stdout and "ETA" in proc.stdout

    ev = pd.read_csv(out / "eval.csv")
    assert list(ev.columns) == EVAL_COLUMNS
    assert len(ev) == 2 * 10  # two evaluations x ten tasks
    assert sorted(ev.step.unique()) == [5000, 10000]
    assert ev.task.nunique() == 10 and set(ev.task_index) == set(range(10))
    assert ev.success_rate.between(0, 1).all() and (ev.episodes == 2).all()
    assert (ev.variant == variant).all() and (ev.seed == 3).all()

    tm = pd.read_csv(out / "train_metrics.csv")
    assert len(tm) == 2 and list(tm.step) == [5000, 10000]
    for col in ["policy_loss", "value_loss", "critic_gradnorm_spread", "critic_gram_cond",
                "critic_gradnorm_t9", "env_sps"]:
        assert tm[col].notna().all(), col
    assert (tm.critic_gradnorm_spread >= 1).all()
    if variant == "toppo":
        assert tm.popart_sigma_max.notna().all()

    man = json.loads((out / "manifest.json").read_text())
    assert man["status"] == "complete" and man["env_steps"] == 10_000
    assert man["eval_env_steps"] > 0 and man["param_count"]["total"] > 0
    assert (out / "checkpoints" / "latest.pt").exists()

    again = train(out, variant, 10_000)  # a complete run directory is a no-op
    assert again.returncode == 0 and "nothing to do" in again.stdout


@pytest.mark.slow
def test_sigkill_and_resume_reproduces_the_uninterrupted_run(tmp_path):
    ref, cut = tmp_path / "ref", tmp_path / "cut"
    steps = 15_000
    assert train(ref, "toppo", steps).returncode == 0

    cmd = [sys.executable, "-m", "toppo.train", "--variant", "toppo", "--total-steps", str(steps),
           "--out-dir", str(cut), *TINY]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = cut / "checkpoints" / "latest.pt"
    deadline = time.time() + 300
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ckpt.exists(), "the run never wrote a checkpoint"
    assert json.loads((cut / "manifest.json").read_text())["status"] == "running"

    resumed = train(cut, "toppo", steps)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stdout
    pd.testing.assert_frame_equal(pd.read_csv(cut / "eval.csv"), pd.read_csv(ref / "eval.csv"))
    cols = ["policy_loss", "value_loss", "entropy", "critic_gradnorm_spread", "popart_mu_mean"]
    pd.testing.assert_frame_equal(pd.read_csv(cut / "train_metrics.csv")[cols],
                                  pd.read_csv(ref / "train_metrics.csv")[cols])
