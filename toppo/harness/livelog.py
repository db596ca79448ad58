"""Live curves of a training run, for watching a grid while it trains: TensorBoard event
files in ``{run}/tensorboard/`` and, on request, a Weights & Biases run.

Both are optional (``pip install -e '.[live]'``) and off cleanly when absent: the trainer
says so in one line and trains on. The CSV logs stay the record; these are views of the
same rows, written as the trainer appends them (``Trainer.run``):

* TensorBoard, x axis = env steps: ``train/*`` (losses, KL, clip fraction, grad norms,
  PopArt, critic fit, train success), ``diagnostics/*`` (per-side gradient norm spread,
  cosines, Gram condition), ``gradnorm_per_task/{actor,critic}/<task>``, ``time/*`` (per
  update) and ``time_budget/*`` (cumulative, ``Trainer.time_budget``), ``eval/success_mean``
  and ``eval_success/<task>``. ``tensorboard --logdir results/runs/<scale>`` shows one run per
  cell, named ``<benchmark>-<reward>/<variant>/seed<seed>/tensorboard``.
* Resume without duplicates: a resumed trainer opens its writer with ``purge_step`` P, the
  first step its checkpoint does not hold (or the step of the earliest evaluation that was
  in flight, which it redoes), so TensorBoard drops whatever the killed process logged from
  P on; the checkpoint's own rows from P on are written again.
* W&B (``wandb_project`` set; ``wandb_entity``, ``wandb_mode`` online/offline): one run per
  cell with a deterministic id (:func:`wandb_run_id`) and ``resume="allow"``, so a resumed
  cell continues the same run; W&B's step is the PPO update (monotonic, so W&B itself drops
  an update it already has), env steps are the ``env_step`` axis of every chart.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from toppo.specs.config import TrainConfig
from toppo.specs.registry import BENCHMARKS
from toppo.specs.runfiles import TB_DIR

PER_TASK = re.compile(r"^(actor|critic)_gradnorm_t(\d+)$")
INSTALL_HINT = "pip install -e '.[live]'"


def wandb_run_id(cfg: TrainConfig, variant: str) -> str:
    """One W&B run per cell and config: a resumed cell finds its run again."""
    return f"{variant}-{cfg.benchmark}-{cfg.reward_version}-s{cfg.seed}-{cfg.config_hash()}"


def cell_name(cfg: TrainConfig, variant: str) -> str:
    return f"{cfg.benchmark}-{cfg.reward_version}/{variant}/seed{cfg.seed}"


def update_scalars(row: dict[str, Any], tasks: Sequence[str]) -> dict[str, float]:
    """A train_metrics row as tagged scalars (finite numbers only)."""
    out = {}
    for key, value in row.items():
        if key in ("update", "step") or not _finite(value):
            continue
        if m := PER_TASK.match(key):
            tag = f"gradnorm_per_task/{m[1]}/{tasks[int(m[2])]}"
        elif key.endswith("_time_s"):
            tag = f"time/{key}"
        elif key.startswith(("actor_", "critic_")):
            tag = f"diagnostics/{key}"
        else:
            tag = f"train/{key}"
        out[tag] = float(value)
    return out


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class LiveLog:
    """TensorBoard and W&B writers of one run; every method is a no-op for a writer that is
    off (not requested, or its package absent)."""

    def __init__(self, out: Path, cfg: TrainConfig, variant: str, purge_step: int,
                 log: Callable[[str], None] = print):
        self.tasks = BENCHMARKS[cfg.benchmark]
        self.update = 0  # the last update logged: W&B's step
        self.tb = self.wandb = None
        if cfg.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log(f"live curves: tensorboard is not installed ({INSTALL_HINT}); "
                    "no event files, the CSV logs are unaffected")
            else:
                self.tb = SummaryWriter(str(Path(out) / TB_DIR), purge_step=purge_step,
                                        flush_secs=30)
        if cfg.wandb_project:
            self.wandb = _start_wandb(out, cfg, variant, log)

    @classmethod
    def start(cls, out: Path, cfg: TrainConfig, variant: str, metric_rows: list[dict[str, Any]],
              pending_eval_steps: Iterable[int], time_budget: dict[str, float] | None = None,
              log: Callable[[str], None] = print) -> LiveLog:
        """The writers of a run starting (no rows) or resuming from a checkpoint holding
        ``metric_rows`` and ``time_budget``, with evaluations at ``pending_eval_steps`` to be
        redone: everything from the first step not in the checkpoint, or the earliest of those
        evaluations, is written again (``purge_step``), so a resumed curve has no duplicate
        steps. (The checkpoint holds the time budget of its last update only: a rewritten
        earlier update has no ``time_budget/*`` point.)"""
        purge = min([*pending_eval_steps, metric_rows[-1]["step"] + 1 if metric_rows else 0])
        live = cls(out, cfg, variant, purge, log)
        live.update = metric_rows[-1]["update"] if metric_rows else 0
        for row in metric_rows:
            if row["step"] >= purge:
                live.log_update(row, time_budget if row is metric_rows[-1] else None)
        return live

    def log_update(self, row: dict[str, Any], time_budget: dict[str, float] | None = None) -> None:
        """One train_metrics row (and the cumulative time budget after it)."""
        self.update = int(row["update"])
        scalars = update_scalars(row, self.tasks)
        if time_budget:
            scalars.update({f"time_budget/{k}": float(v) for k, v in time_budget.items() if _finite(v)})
        step = int(row["step"])
        if self.tb is not None:
            for tag, value in scalars.items():
                self.tb.add_scalar(tag, value, step)
        if self.wandb is not None:
            self.wandb.log({**scalars, "env_step": step}, step=self.update)

    def log_eval(self, step: int, success_rate: Sequence[float]) -> None:
        """One evaluation: success rate per task (in benchmark order) and their mean."""
        scalars = {f"eval_success/{t}": float(s) for t, s in zip(self.tasks, success_rate)}
        scalars["eval/success_mean"] = sum(map(float, success_rate)) / len(success_rate)
        if self.tb is not None:
            for tag, value in scalars.items():
                self.tb.add_scalar(tag, value, step)
        if self.wandb is not None:
            self.wandb.log({**scalars, "eval/env_step": step}, step=self.update)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
            self.tb = None
        if self.wandb is not None:
            self.wandb.finish()
            self.wandb = None


def _start_wandb(out: Path, cfg: TrainConfig, variant: str, log: Callable[[str], None]):
    try:
        import wandb
    except ImportError:
        log(f"live curves: wandb_project is set but wandb is not installed ({INSTALL_HINT}); "
            "no W&B run")
        return None
    try:
        run = wandb.init(project=cfg.wandb_project, entity=cfg.wandb_entity or None,
                         mode=cfg.wandb_mode, id=wandb_run_id(cfg, variant), resume="allow",
                         name=cell_name(cfg, variant),
                         group=f"{cfg.benchmark}-{cfg.reward_version}/{variant}",
                         config={**cfg.to_dict(), "variant": variant}, dir=str(out),
                         settings=wandb.Settings(console="off", silent=True))
    except Exception as exc:  # no network, no login, a bad entity: train on without W&B
        log(f"live curves: W&B run not started ({type(exc).__name__}: "
            f"{(str(exc).splitlines() or [''])[0][:200]}); training goes on without it")
        return None
    run.define_metric("env_step")
    run.define_metric("eval/env_step")
    run.define_metric("eval/success_mean", step_metric="eval/env_step")
    run.define_metric("eval_success/*", step_metric="eval/env_step")
    for prefix in ("train", "diagnostics", "gradnorm_per_task", "time", "time_budget"):
        run.define_metric(f"{prefix}/*", step_metric="env_step")
    log(f"live curves: W&B run {run.id} ({cfg.wandb_mode}) in project {cfg.wandb_project}")
    return run
