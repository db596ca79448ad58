"""Live curves (toppo.harness.livelog): TensorBoard event files read back with TensorBoard's own
reader, a resumed run without duplicate steps, W&B in offline mode (no network) continuing
the same run, and both off cleanly when their packages are absent."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from toppo.harness.livelog import LiveLog, wandb_run_id
from toppo.specs.config import make_config
from toppo.specs.registry import BENCHMARKS
from toppo.specs.runfiles import TB_DIR

TASKS = BENCHMARKS["MT10"]
STEP = 10_000  # env steps per update of CFG


def config(**overrides):
    return make_config(benchmark="MT10", reward_version="v1", rollout_steps_per_task=1000,
                       total_steps=50_000, **overrides)


def row(update, loss):
    return {"update": update, "step": update * STEP, "wall_time_s": 2.0 * update,
            "env_sps": 5000.0, "rollout_time_s": 1.5, "policy_loss": loss, "value_loss": None,
            "critic_gradnorm_spread": 10.0 * update, "critic_gradnorm_t3": 0.5,
            "mean_train_success": float("nan")}


def scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar curve of the run's event files, as TensorBoard shows them (purges applied),
    values rounded to float32's 6 digits."""
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    EventAccumulator = accumulator.EventAccumulator

    acc = EventAccumulator(str(run / TB_DIR), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, float(f"{e.value:.6g}")) for e in acc.Scalars(tag)]
            for tag in acc.Tags()["scalars"]}


def test_tensorboard_curves_and_a_resume_without_duplicates(tmp_path):
    cfg = config()
    # First process: updates 1-3, the evaluation of step 10K and (overlapped, committed during
    # update 3) the one of step 20K; then it is killed. Its last checkpoint was after update 2,
    # with the evaluation of step 20K still in flight.
    live = LiveLog.start(tmp_path, cfg, "toppo", [], [], log=print)
    live.log_update(row(1, 1.0), {"wall_s": 2.0, "learner_s": 0.5})
    live.log_eval(10_000, [0.1] * 10)
    live.log_update(row(2, 2.0))
    live.log_eval(20_000, [0.2] * 10)
    live.log_update(row(3, 3.0))
    live.close()
    first = scalars(tmp_path)
    assert first["train/policy_loss"] == [(10_000, 1.0), (20_000, 2.0), (30_000, 3.0)]
    assert first["diagnostics/critic_gradnorm_spread"][0] == (10_000, 10.0)
    assert first["gradnorm_per_task/critic/door-open-v3"][0] == (10_000, 0.5)  # task 3 of MT10
    assert first["time/rollout_time_s"][0] == (10_000, 1.5)
    assert first["time_budget/learner_s"] == [(10_000, 0.5)]
    assert first["eval/success_mean"] == [(10_000, 0.1), (20_000, 0.2)]
    assert first[f"eval_success/{TASKS[9]}"] == [(10_000, 0.1), (20_000, 0.2)]
    assert "train/value_loss" not in first and "train/mean_train_success" not in first  # no value

    time.sleep(1.1)  # event file names carry the second they were opened in
    # The resumed process: from the checkpoint of update 2, the evaluation of 20K redone (other
    # numbers, to tell them apart), then updates 3 and 4 trained again.
    live = LiveLog.start(tmp_path, cfg, "toppo", [row(1, 1.0), row(2, 2.0)], [20_000],
                         {"learner_s": 1.0}, log=print)
    live.log_eval(20_000, [0.4] * 10)
    live.log_update(row(3, 30.0))
    live.log_update(row(4, 40.0))
    live.close()
    assert len(list((tmp_path / TB_DIR).iterdir())) == 2
    resumed = scalars(tmp_path)
    assert resumed["train/policy_loss"] == [(10_000, 1.0), (20_000, 2.0), (30_000, 30.0),
                                            (40_000, 40.0)]
    assert resumed["eval/success_mean"] == [(10_000, 0.1), (20_000, 0.4)]
    assert resumed["time_budget/learner_s"] == [(10_000, 0.5), (20_000, 1.0)]  # the checkpoint's


def test_off_cleanly_without_the_packages(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    monkeypatch.setitem(sys.modules, "wandb", None)
    said = []
    live = LiveLog.start(tmp_path, config(wandb_project="toppo"), "toppo", [], [], log=said.append)
    live.log_update(row(1, 1.0))
    live.log_eval(10_000, [0.0] * 10)
    live.close()
    assert said == ["live curves: tensorboard is not installed (pip install -e '.[live]'); no "
                    "event files, the CSV logs are unaffected",
                    "live curves: wandb_project is set but wandb is not installed (pip install -e "
                    "'.[live]'); no W&B run"]
    assert list(tmp_path.iterdir()) == []


def test_nothing_is_written_when_switched_off(tmp_path):
    said = []
    live = LiveLog.start(tmp_path, config(tensorboard=False), "toppo", [], [], log=said.append)
    live.log_update(row(1, 1.0))
    live.close()
    assert said == [] and list(tmp_path.iterdir()) == []


def test_wandb_offline_resume_continues_the_same_run(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb-home"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = config(wandb_project="toppo-test", wandb_mode="offline", tensorboard=False)
    run_id = wandb_run_id(cfg, "toppo")
    assert run_id == f"toppo-MT10-v1-s0-{cfg.config_hash()}"
    said = []
    live = LiveLog.start(tmp_path, cfg, "toppo", [], [], log=said.append)
    live.log_update(row(1, 1.0))
    live.log_eval(10_000, [0.5] * 10)
    live.close()
    # wandb names an offline run's folder by the second it starts (a second start in the same
    # second gets a "-1" suffix): start the resumed run in the next second
    time.sleep(1.0 - time.time() % 1.0 + 0.01)
    live = LiveLog.start(tmp_path, cfg, "toppo", [row(1, 1.0)], [], log=said.append)
    live.log_update(row(2, 2.0))
    live.close()
    assert said == [f"live curves: W&B run {run_id} (offline) in project toppo-test"] * 2
    runs = sorted((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and all(r.name.endswith(f"-{run_id}") for r in runs)
    assert all((r / f"run-{run_id}.wandb").stat().st_size > 0 for r in runs)


@pytest.mark.slow
def test_trainer_killed_and_resumed_writes_each_step_once(tmp_path):
    """The real trainer (tiny MT10 run, 3 updates): killed after its first checkpoint and run
    again, its event files hold each update and evaluation once, equal to the CSV logs."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "toppo.train", "--variant", "toppo", "--benchmark", "MT10",
           "--reward-version", "v1", "--seed", "3", "--device", "cpu", "--total-steps", "15000",
           "--out-dir", str(out), "rollout_steps_per_task=500", "max_episode_steps=100",
           "num_epochs=2", "num_minibatches=2",
           "hidden_sizes=32,32", "eval_episodes=1", "eval_envs_per_task=1", "eval_every_steps=5000",
           "torch_threads=1", "progress_every_s=0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = out / "checkpoints" / "latest.pt"
    deadline = time.time() + 300
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(1.1)  # let it log past the checkpoint, and open the next file in a new second
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert json.loads((out / "manifest.json").read_text())["status"] == "running"
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resumed from" in done.stdout

    curves = scalars(out)
    metrics = pd.read_csv(out / "train_metrics.csv")
    evals = pd.read_csv(out / "eval.csv").groupby("step").success_rate.mean()
    for tag, steps, values in (("train/policy_loss", metrics.step, metrics.policy_loss),
                               ("eval/success_mean", evals.index, evals)):
        got_steps, got_values = zip(*curves[tag])
        assert list(got_steps) == list(steps), tag  # each step once, in order
        assert list(got_values) == pytest.approx(list(values), rel=1e-5), tag
    assert [s for s, _ in curves["time_budget/wall_s"]] == [5000, 10_000, 15_000]
