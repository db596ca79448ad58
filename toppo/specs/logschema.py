"""The columns of a run directory's log tables (docs/design.md), shared by the trainer that
writes them and the analysis that reads them. Imports nothing heavy: analysis must not
need torch. The benchmarks' task names are toppo.specs.registry.BENCHMARKS."""

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
