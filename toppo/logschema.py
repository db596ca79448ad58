"""The columns of a run directory's log tables (docs/design.md), shared by the trainer that
writes them and the analysis that reads them. Imports nothing heavy: analysis must not
need torch."""

EVAL_COLUMNS = ["benchmark", "reward_version", "variant", "seed", "step", "task_index", "task",
                "success_rate", "mean_return", "episodes"]

# one row per PPO update; per-task columns critic_gradnorm_t{i} follow these
TRAIN_METRIC_COLUMNS = ["update", "step", "wall_time_s", "env_sps", "rollout_time_s", "learn_time_s",
                        "update_time_s", "policy_loss", "value_loss", "entropy", "approx_kl", "clipfrac",
                        "grad_norm_actor", "grad_norm_critic", "critic_gradnorm_max", "critic_gradnorm_min",
                        "critic_gradnorm_spread", "critic_cos_mean", "critic_cos_min", "critic_gram_cond",
                        "popart_mu_mean", "popart_sigma_min", "popart_sigma_max", "mean_train_success"]
