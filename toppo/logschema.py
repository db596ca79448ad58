"""The columns of a run directory's log tables (docs/design.md), shared by the trainer that
writes them and the analysis that reads them. Imports nothing heavy: analysis must not
need torch."""

EVAL_COLUMNS = ["benchmark", "reward_version", "variant", "seed", "step", "task_index", "task",
                "success_rate", "mean_return", "episodes"]

# one row per PPO update; per-task columns {actor,critic}_gradnorm_t{i} follow these.
# Gradient diagnostics are over each side's body parameters on a random sample of every
# task's rollout; value_abs_err / explained_variance are the critic's fit on that sample
# before and after the update (unnormalised units).
TRAIN_METRIC_COLUMNS = ["update", "step", "wall_time_s", "env_sps", "rollout_time_s", "learn_time_s",
                        "update_time_s", "diagnostics_time_s", "policy_loss", "value_loss", "entropy",
                        "approx_kl", "clipfrac", "grad_norm_actor", "grad_norm_critic",
                        "critic_gradnorm_max", "critic_gradnorm_min", "critic_gradnorm_spread",
                        "critic_cos_mean", "critic_cos_min", "critic_gram_cond",
                        "actor_gradnorm_max", "actor_gradnorm_min", "actor_gradnorm_spread",
                        "actor_cos_mean", "actor_cos_min", "actor_gram_cond",
                        "value_abs_err_before", "value_abs_err_after", "explained_variance_before",
                        "explained_variance_after",
                        "popart_mu_mean", "popart_sigma_min", "popart_sigma_max", "mean_train_success"]

# Columns that time the run (they differ between any two runs): left out of every comparison
# of two runs' numbers (python -m analysis verify)
TIMING_COLUMNS = ["wall_time_s", "env_sps", "rollout_time_s", "learn_time_s", "update_time_s",
                  "diagnostics_time_s"]

# The tasks of each benchmark in env order (task_index = position): metaworld 3.x
# ``metaworld.env_dict.MT10_V3`` / ``MT50_V3``, the order ``gym.make_vec("Meta-World/MT10")``
# builds them in (tests/test_rundir.py checks these lists against the installed metaworld).
BENCHMARK_TASKS: dict[str, tuple[str, ...]] = {
    "MT10": ("reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-open-v3",
             "drawer-close-v3", "button-press-topdown-v3", "peg-insert-side-v3", "window-open-v3",
             "window-close-v3"),
    "MT50": ("assembly-v3", "basketball-v3", "bin-picking-v3", "box-close-v3",
             "button-press-topdown-v3", "button-press-topdown-wall-v3", "button-press-v3",
             "button-press-wall-v3", "coffee-button-v3", "coffee-pull-v3", "coffee-push-v3",
             "dial-turn-v3", "disassemble-v3", "door-close-v3", "door-lock-v3", "door-open-v3",
             "door-unlock-v3", "hand-insert-v3", "drawer-close-v3", "drawer-open-v3",
             "faucet-open-v3", "faucet-close-v3", "hammer-v3", "handle-press-side-v3",
             "handle-press-v3", "handle-pull-side-v3", "handle-pull-v3", "lever-pull-v3",
             "pick-place-wall-v3", "pick-out-of-hole-v3", "pick-place-v3", "plate-slide-v3",
             "plate-slide-side-v3", "plate-slide-back-v3", "plate-slide-back-side-v3",
             "peg-insert-side-v3", "peg-unplug-side-v3", "soccer-v3", "stick-push-v3",
             "stick-pull-v3", "push-v3", "push-wall-v3", "push-back-v3", "reach-v3",
             "reach-wall-v3", "shelf-place-v3", "sweep-into-v3", "sweep-v3", "window-open-v3",
             "window-close-v3"),
}
