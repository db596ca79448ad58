"""Where a run's wall time goes (the manifest's ``time_budget``, the progress lines).

Seconds, summed over resumes: rollout env stepping, policy inference and rollout bookkeeping,
learner, evaluation as the trainer waited for it (inline: all of it; overlap: submitting,
collecting and waiting), of which idle waiting for eval workers, checkpointing; plus the
evaluation compute time wherever it ran. ``report`` adds the rest of the wall time and the
part of the evaluation compute that overlapped training.
"""

from __future__ import annotations

import math
from typing import Any

BUDGET_KEYS = ("rollout_env_s", "policy_inference_s", "learner_s", "evaluation_s", "eval_wait_s",
               "checkpoint_s", "eval_compute_s")
# the parts of the wall time that do not overlap (other_s is the wall time less these)
WALL_PARTS = ("rollout_env_s", "policy_inference_s", "learner_s", "evaluation_s", "checkpoint_s")


class TimeBudget(dict):
    """Seconds per key of BUDGET_KEYS (a dict: it is checkpointed as one)."""

    def __init__(self) -> None:
        super().__init__(dict.fromkeys(BUDGET_KEYS, 0.0))

    def report(self, wall_time: float, eval_mode: str) -> dict[str, Any]:
        """The budget rounded to ms, with other_s, eval_overlapped_s and wall_s."""
        b = {k: round(v, 3) for k, v in self.items()}
        b["other_s"] = round(wall_time - sum(self[k] for k in WALL_PARTS), 3)
        overlapped = (self["eval_compute_s"] - self["eval_wait_s"]
                      if eval_mode == "overlap" else 0.0)
        b["eval_overlapped_s"] = round(max(overlapped, 0.0), 3)
        b["wall_s"] = round(wall_time, 3)
        return b


def format_budget(b: dict[str, float]) -> str:
    """A reported budget (TimeBudget.report) in one line, with shares of the wall time."""
    wall = max(b["wall_s"], 1e-9)
    pct = lambda k: f"{b[k]:.1f} s ({100 * b[k] / wall:.0f}%)"  # noqa: E731
    return (f"rollout env {pct('rollout_env_s')}, policy inference {pct('policy_inference_s')}, "
            f"learner {pct('learner_s')}, evaluation {pct('evaluation_s')} "
            f"(idle waiting {b['eval_wait_s']:.1f} s), checkpointing {pct('checkpoint_s')}, "
            f"other {pct('other_s')}; evaluation compute {b['eval_compute_s']:.1f} s, "
            f"{b['eval_overlapped_s']:.1f} s of it overlapped with training")


def fmt_time(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"
