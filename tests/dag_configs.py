"""The smallest workflow config: MT10 with V1 rewards, MT-PPO and TOPPO, one seed, 20,000
env steps, tiny networks, evaluated at 10,000 and 20,000 steps. Shared by the local
end-to-end test (tests/test_workflow.py) and the real-SLURM test (tests/test_slurm.py).

``grid_cells`` (every cell of a workflow config's grid) is the workflow's own, toppo.specs.grid."""

from toppo.specs.grid import grid_cells  # noqa: F401  (re-exported for the tests)


def tiny_dag_config(scale: str, *, rollout_steps_per_task: int, num_minibatches: int,
                    mem_mb: int, runtime: int, max_episode_steps: int = 500) -> str:
    """The config's YAML text (indented: callers write ``textwrap.dedent`` of it);
    ``max_episode_steps`` below metaworld's 500 shortens the episodes (and the evaluations)."""
    episodes = f"\n      max_episode_steps: {max_episode_steps}" if max_episode_steps != 500 else ""
    return f"""\
    scale: {scale}
    device: cpu
    budgets: {{MT10: 20000}}
    resources:
      MT10: {{threads: 1, mem_mb: {mem_mb}, runtime: {runtime}}}
    trainer_overrides:
      rollout_steps_per_task: {rollout_steps_per_task}{episodes}
      num_epochs: 2
      num_minibatches: {num_minibatches}
      hidden_sizes: [32, 32]
      eval_every_steps: 10000
      eval_episodes: 1
      eval_envs_per_task: 1
      progress_every_s: 0
    grid:
      - {{name: main, benchmarks: [MT10], reward_versions: [v1], variants: [mtppo, toppo], seeds: 1}}
    report:
      bootstrap_reps: 50
      bootstrap_seed: 0
      worst_k: [3]
      last_n: 2
      curves_protocol: final/mean/ci95
      table3:
        protocol: final/iqm/std
        reward_version: v1
        blocks:
          - {{benchmark: MT10, ours: [toppo, mtppo], baselines: [MTMHSAC, MT-PPO]}}
      ablations: {{benchmark: MT10, reward_version: v1, protocol: final/mean/std}}
    """
