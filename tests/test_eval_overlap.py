"""Evaluation off the critical path (toppo.harness.evalworker) on the real MT10 benchmark.

An overlapped run (worker processes evaluating frozen weights) writes the inline run's
eval.csv byte for byte, also when the evaluation that was in flight when the trainer
stopped is redone on resume; every run reports its time budget.
"""

import json
import re

import pytest

from toppo.harness.evalworker import snapshot_weights
from toppo.train import build_parser, config_from_args
from toppo.trainer import Trainer

TINY = ["--variant", "toppo", "--benchmark", "MT10", "--reward-version", "v1", "--seed", "3",
        "--device", "cpu", "--total-steps", "10000", "rollout_steps_per_task=500",
        "max_episode_steps=100", "num_epochs=2",
        "num_minibatches=2", "hidden_sizes=32,32", "eval_episodes=2", "eval_envs_per_task=2",
        "eval_every_steps=5000", "torch_threads=1", "progress_every_s=0"]
PARTS = ("rollout_env_s", "policy_inference_s", "learner_s", "evaluation_s", "checkpoint_s",
         "other_s")


def _cfg(*extra: str):
    return config_from_args(build_parser().parse_args([*TINY, *extra]))


def _budget_adds_up(out) -> dict:
    b = json.loads((out / "manifest.json").read_text())["time_budget"]
    assert sum(b[k] for k in PARTS) == pytest.approx(b["wall_s"], abs=0.01)
    assert all(b[k] >= 0 for k in PARTS if k != "other_s") and b["eval_compute_s"] > 0
    return b


@pytest.mark.slow
def test_overlapped_evaluation_resumed_mid_evaluation_writes_the_inline_eval_csv(tmp_path, capsys):
    inline_cfg, overlap_cfg = _cfg("eval_mode=inline"), _cfg("eval_mode=overlap")
    assert inline_cfg.config_hash() == overlap_cfg.config_hash()

    ref = tmp_path / "inline"
    trainer = Trainer(inline_cfg, ref, "toppo")
    try:
        trainer.run()
    finally:
        trainer.close()
    b = _budget_adds_up(ref)
    assert b["eval_wait_s"] == 0 and b["eval_overlapped_s"] == 0
    assert b["evaluation_s"] >= b["eval_compute_s"]

    # overlapped: stop the trainer while the evaluation at step 5000 is in the worker
    out = tmp_path / "overlap"
    first = Trainer(overlap_cfg, out, "toppo")
    try:
        row = first.train_one_update()
        first.metric_rows.append({**row, "wall_time_s": 0.0})
        assert first.eval_due()
        first.evals.submit(first.global_step, snapshot_weights(first.learner.actor))
        state = first.state_dict()  # what the checkpoint holds
    finally:
        first.close()  # the worker is stopped mid-evaluation
    assert [step for step, _ in state["eval_pending"]] == [5000] and state["eval_rows"] == []

    resumed = Trainer(overlap_cfg, out, "toppo")
    try:
        resumed.load_state_dict(state)
        resumed.run()  # redoes step 5000 in a worker, then trains and evaluates step 10000
    finally:
        resumed.close()
    assert (out / "eval.csv").read_bytes() == (ref / "eval.csv").read_bytes()
    assert sorted({r["step"] for r in resumed.evals.rows}) == [5000, 10000]
    assert _budget_adds_up(out)["eval_compute_s"] > 0
    assert "time budget: rollout env" in capsys.readouterr().out


def test_eval_mode_is_validated_and_not_hashed():
    from toppo.specs.config import ConfigError, make_config

    with pytest.raises(ConfigError, match="eval_mode"):
        make_config(eval_mode="background")
    with pytest.raises(ConfigError, match="eval_workers"):
        make_config(eval_workers=0)
    assert make_config(eval_mode="inline").config_hash() == make_config(eval_workers=3).config_hash()


@pytest.mark.slow
def test_workers_split_each_evaluation_by_task_and_commit_what_inline_evaluation_gives():
    import torch

    from toppo.algo.envs import make_train_envs
    from toppo.algo.networks import build_actor
    from toppo.harness.evalworker import (
        EvalSpec,
        EvalWorkerError,
        InlineEvaluator,
        OverlapEvaluator,
    )
    from toppo.specs.config import make_config

    cfg = make_config(_cfg().to_dict(), eval_episodes=3, max_episode_steps=20)
    train, eval_fns = make_train_envs("MT10", "v1", 3, envs_per_task=1, async_envs=False,
                                      max_episode_steps=20)
    obs_dim, act_dim = train.obs_dim, train.act_dim
    train.close()
    spec = EvalSpec(cfg, eval_fns, obs_dim, act_dim)
    torch.manual_seed(0)
    snaps = [(step, snapshot_weights(build_actor(cfg, obs_dim, act_dim))) for step in (10, 20, 30)]

    inline = InlineEvaluator(spec, async_envs=False)
    for step, w in snaps:
        inline.submit(step, w)
    want = inline.collect()
    inline.close()
    assert len({d.result.mean_return.tobytes() for d in want}) == 3  # the weights matter

    for n, slices in ((1, [range(0, 10)]), (3, [range(0, 4), range(4, 7), range(7, 10)])):
        workers = OverlapEvaluator(spec, async_envs=False, workers=n)
        try:
            assert workers.slices == slices  # each worker builds the eval envs of its tasks only
            for step, w in snaps:
                workers.submit(step, w)
            assert [s for s, _ in workers.pending()] == [10, 20, 30]
            got = workers.collect(wait=True)
            assert workers.pending() == [] and len(workers.ready_s) == n
            assert [d.step for d in got] == [10, 20, 30]
            for a, b in zip(got, want):
                assert a.result.env_steps == b.result.env_steps
                assert a.result.mean_return.tobytes() == b.result.mean_return.tobytes()
                assert a.result.success_rate.tobytes() == b.result.success_rate.tobytes()
            if n == 3:
                # every worker fails on these weights; whichever reports first is named, with
                # its own pid and tasks and its traceback
                workers.submit(40, {"not": torch.zeros(1)})
                with pytest.raises(EvalWorkerError) as failed:
                    workers.collect(wait=True)
                m = re.fullmatch(r"(?s)evaluation worker (\d) \(pid (\d+), tasks (\d+)-(\d+)\) "
                                 r"failed:\n.*load_state_dict.*", str(failed.value))
                assert m, str(failed.value)
                i = int(m[1])
                assert int(m[2]) == workers._procs[i].pid
                assert range(int(m[3]), int(m[4]) + 1) == slices[i]
        finally:
            workers.close()
