"""Device sweep: the real trainer's update (toppo.trainer.Trainer.train_one_update) on one
benchmark for several (variant, device, torch_threads) configs, on one machine, so CUDA and
CPU numbers are same-machine ratios (docs/throughput.md, "Measured on a GPU machine").

The envs are built once and reused for every config (each rollout starts with a reset); for
each config a fresh Learner is built on that device, as Trainer.__init__ would. The
evaluator is replaced by a no-op so no eval envs are built (nothing is evaluated). One JSON
line per (config, update) is printed and appended to --jsonl.

    python benchmarks/device_sweep.py --benchmark MT10 --configs toppo:cuda:0,toppo:cpu:1 \
        --updates 2 --jsonl out.jsonl rollout_steps_per_task=1000 num_epochs=4 num_minibatches=4

torch_threads 0 = torch's default thread count on the machine. The run of 2026-11-26 on an
H200 machine: benchmarks/measurements/h200-2026-11-26/ (device_run.sh, log.txt, *.jsonl).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

import toppo.trainer as _tt  # noqa: E402
from toppo.algo.learner import Learner  # noqa: E402
from toppo.specs.config import parse_value  # noqa: E402
from toppo.specs.variants import resolve  # noqa: E402
from toppo.trainer import Trainer  # noqa: E402


class _NoEvaluator:  # the sweep never evaluates: skip building eval envs
    def close(self) -> None:
        pass


_tt.make_evaluator = lambda spec: _NoEvaluator()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--benchmark", required=True)
    p.add_argument("--configs", required=True, help="variant:device:threads,...")
    p.add_argument("--updates", type=int, default=2)
    p.add_argument("--jsonl", required=True)
    p.add_argument("overrides", nargs="*")
    a = p.parse_args()
    ov = {}
    for item in a.overrides:
        k, _, v = item.partition("=")
        ov[k] = parse_value(k, v)
    default_threads = torch.get_num_threads()
    print(f"[sweep] {a.benchmark}: torch {torch.__version__}, default threads {default_threads}, "
          f"cpu count {os.cpu_count()}, cuda {torch.cuda.is_available()}"
          + (f" ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "")
          + f", overrides {ov}, updates per config {a.updates}", flush=True)
    configs = [c.split(":") for c in a.configs.split(",")]
    if any(d == "cuda" for _, d, _ in configs):
        t0 = time.perf_counter()
        torch.zeros(1, device="cuda")
        torch.cuda.synchronize()
        print(f"[sweep] cuda context init {time.perf_counter() - t0:.2f} s", flush=True)

    def cfg_for(variant: str, device: str, threads: int):
        return resolve(variant, {"benchmark": a.benchmark, "device": device, "torch_threads": threads,
                                 "eval_mode": "inline", "eval_every_steps": 10**12,
                                 "progress_every_s": 1e9, **ov, "total_steps": 10**9})

    tmp = tempfile.mkdtemp()
    t0 = time.perf_counter()
    trainer = Trainer(cfg_for("mtppo", "cpu", 0), Path(tmp))
    print(f"[sweep] built {a.benchmark} envs ({trainer.envs.num_envs} envs) in "
          f"{time.perf_counter() - t0:.1f} s", flush=True)
    obs_dim = trainer.envs.single_observation_space.shape[0]
    act_dim = trainer.envs.single_action_space.shape[0]
    for variant, device, threads in configs:
        threads = int(threads)
        cfg = cfg_for(variant, device, threads)
        torch.set_num_threads(threads if threads > 0 else default_threads)
        torch.manual_seed(0)
        dev = torch.device(device)
        trainer.cfg, trainer.device = cfg, dev
        trainer.learner = None
        trainer.learner = Learner(cfg, obs_dim, act_dim, dev)
        trainer.task_of_env = torch.as_tensor(trainer.envs.task_ids, device=dev)
        trainer.update_idx = 0
        n_mb = cfg.num_epochs * cfg.num_minibatches
        for u in range(a.updates):
            busy0 = trainer.envs.busy_s
            row = trainer.train_one_update()
            env_s = trainer.envs.busy_s - busy0
            steps = cfg.steps_per_update
            learn = row["learn_time_s"]
            diag = row.get("diagnostics_time_s", 0.0)
            rec = {"benchmark": a.benchmark, "variant": variant, "device": device,
                   "torch_threads": torch.get_num_threads(), "update": u + 1, "steps": steps,
                   "rollout_s": round(row["rollout_time_s"], 3),
                   "rollout_sps": round(steps / row["rollout_time_s"], 1),
                   "env_step_s": round(env_s, 3),
                   "policy_and_rest_s": round(row["rollout_time_s"] - env_s, 3),
                   "learn_s": round(learn, 3), "diagnostics_s": round(diag, 3),
                   "minibatches": n_mb,
                   "ms_per_minibatch_excl_diag": round(1000 * (learn - diag) / n_mb, 2),
                   "update_s": round(row["update_time_s"], 3),
                   "e2e_sps": round(steps / row["update_time_s"], 1),
                   "rollout_steps_per_task": cfg.rollout_steps_per_task,
                   "num_epochs": cfg.num_epochs, "num_minibatches": cfg.num_minibatches,
                   "minibatch_per_task": cfg.minibatch_per_task,
                   "diagnostics": cfg.diagnostics, "diagnostics_samples": cfg.diagnostics_samples}
            print("[sweep] " + json.dumps(rec), flush=True)
            with open(a.jsonl, "a") as f:
                f.write(json.dumps(rec) + "\n")
    trainer.close()


if __name__ == "__main__":
    main()
