"""The algorithm: everything that decides a number a run logs. Multi-task PPO on Meta-World
(envs, rollout, networks, the learner with its per-task gradients, combiners and PopArt) and
its evaluation. Imports ``toppo.specs`` and nothing of the harness.

One PPO update, top to bottom (``toppo.trainer.Trainer.train_one_update``), in this order:
``rollout`` (env steps, values, GAE: ``ppo``), then ``learner`` (PopArt: ``popart``; the
minibatch epochs; per-task gradients, ``pertask``, combined by ``combiners``; one clip and
Adam step per side), and at the cadence ``evaluation``. ``envs`` builds metaworld's
environments, ``envpool_envs`` EnvPool's (opt-in training backend).
"""
