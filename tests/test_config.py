"""Config validation and the named variants: bad input is refused by name, before any env."""

import re

import pytest

from toppo import registry, variants
from toppo.config import ConfigError, TrainConfig, make_config, parse_value
from toppo.train import main


def test_every_variant_resolves_and_toppo_is_the_paper_configuration():
    for name in registry.VARIANTS:
        variants.resolve(name)
    t = variants.resolve("toppo")
    assert (t.popart, t.critic_heads, t.ln_critic, t.actor_combiner, t.critic_combiner,
            t.fairgrad_alpha) == (True, "per_task", True, "pcgrad", "fairgrad", 1.0)
    assert t.stratified_minibatches and not t.clip_vloss
    plain = variants.resolve("mtppo")
    assert (plain.popart, plain.ln_critic, plain.actor_combiner, plain.critic_combiner,
            plain.critic_heads) == (False, False, "sum", "sum", "shared")


def _changed(a: str, b: str) -> set[str]:
    x, y = variants.resolve(a).to_dict(), variants.resolve(b).to_dict()
    return {k for k in x if x[k] != y[k]}


def test_cumulative_rows_add_one_module_each():
    cumulative = registry.GROUPS["cumulative"]
    for prev, nxt in zip(cumulative, cumulative[1:]):
        assert len(_changed(prev, nxt) - {"stratified_minibatches"}) == 1, (prev, nxt)
    assert _changed("mtppo", "mtppo_mhc") == {"critic_heads"}
    assert _changed("mtppo_mhc", "mtppo_popart") == {"popart"}  # normalisation alone


def test_single_rows_change_one_module_of_mtppo():
    for name in registry.GROUPS["single"][1:]:
        changed = _changed("mtppo", name)
        if changed != {"stratified_minibatches"}:
            changed -= {"stratified_minibatches"}
        assert len(changed) == 1 or changed == {"critic_heads", "popart"}, (name, changed)


def test_reference_presets_are_the_metaworld_scripts_setting_by_setting():
    # rainx0r/metaworld-algorithms@30c9991: examples/multi_task/ppo_mt50.py, ppo_mt10.py,
    # rl/algorithms/ppo.py (PPOConfig), config/optim.py, config/nn.py, config/networks.py
    common = {"gamma": 0.99, "gae_lambda": 0.97, "num_epochs": 16, "num_minibatches": 32,
              "rollout_steps_per_task": 10_000, "clip_coef": 0.2, "ent_coef": 5e-3,
              "vf_coef": 1e-3, "learning_rate": 3e-4, "adam_eps": 1e-5, "max_grad_norm": 1.0,
              "clip_vloss": False, "target_kl": 0.0, "anneal_lr": False,
              "hidden_sizes": (400, 400, 400), "activation": "relu", "init": "he_uniform",
              "policy_std": "head", "log_std_min": -20.0, "log_std_max": 2.0,
              "bootstrap_truncation": False, "eval_every_steps": 1_000_000, "eval_episodes": 50,
              "max_episode_steps": 500, "envs_per_task": 1, "popart": False, "ln_critic": False,
              "ln_actor": False, "critic_heads": "shared", "stratified_minibatches": False,
              "actor_combiner": "sum", "critic_combiner": "sum"}
    mt50 = variants.resolve("ref_mt50")
    mt10 = variants.resolve("ref_mt10")
    for cfg, own in ((mt50, {"benchmark": "MT50", "squash_tanh": True, "baseline": "mlp",
                             "adv_norm": "minibatch"}),
                     (mt10, {"benchmark": "MT10", "squash_tanh": False, "baseline": "linear",
                             "adv_norm": "none"})):
        for key, value in {**common, **own}.items():
            assert getattr(cfg, key) == value, key
    mtppo = variants.resolve("mtppo", {"benchmark": "MT50"}).to_dict()
    ref = mt50.to_dict()
    assert {k for k in ref if ref[k] != mtppo[k]} == {"bootstrap_truncation"}  # the deviation


def test_reference_presets_keep_their_benchmark():
    assert variants.resolve("ref_mt10", {"benchmark": "MT10"}).benchmark == "MT10"
    with pytest.raises(ConfigError, match="ref_mt10.*MT10 script.*MT50"):
        variants.resolve("ref_mt10", {"benchmark": "MT50"})


@pytest.mark.parametrize("overrides, key", [
    ({"popart": True}, "critic_heads"),
    ({"baseline": "linear", "bootstrap_truncation": False, "ln_critic": True}, "baseline"),
    ({"baseline": "linear"}, "bootstrap_truncation"),
    ({"baseline": "linear", "bootstrap_truncation": False, "rollout_steps_per_task": 1000,
      "max_episode_steps": 300}, "multiple of max_episode_steps"),
    ({"adv_norm": "per_task"}, "adv_norm"),
    ({"log_std_min": 3.0}, "log_std_min"),
])
def test_inconsistent_module_switches_are_refused(overrides, key):
    with pytest.raises(ConfigError, match=key):
        make_config(**overrides)


def test_combiner_grid_covers_all_pairs_without_duplicate_configs():
    assert len(registry.COMBINER_GRID) == 16
    assert registry.COMBINER_GRID[("pcgrad", "fairgrad")] == "toppo"
    configs = [variants.resolve(n) for n in registry.COMBINER_GRID.values()]
    assert len(set(configs)) == 16


def test_combiner_grid_names_exactly_the_cells_that_are_named_variants():
    """GRID_NAMED: each named cell is the same config as its grid overrides, and no other cell
    equals any named variant (so no configuration is trained twice under two names)."""
    named = {n: variants.resolve(n) for n in registry.VARIANTS if not n.startswith("grid_")}
    for (a, c), name in registry.COMBINER_GRID.items():
        cfg = make_config(registry.grid_overrides(a, c))
        same = [n for n, other in named.items() if other == cfg]
        assert same == ([name] if (a, c) in registry.GRID_NAMED else []), ((a, c), same)


@pytest.mark.parametrize("overrides, key", [
    ({"total_steps": -5}, "total_steps"),
    ({"benchmark": "MT20"}, "benchmark"),
    ({"rollout_steps_per_task": 10, "num_minibatches": 32}, "num_minibatches"),
    ({"critic_combiner": "mgda"}, "critic_combiner"),
    ({"gamma": 1.5}, "gamma"),
    ({"actor_combiner": "pcgrad"}, "stratified_minibatches"),
])
def test_impossible_values_are_refused_by_key(overrides, key):
    with pytest.raises(ConfigError, match=key):
        make_config(**overrides)


def test_unknown_key_and_variant():
    with pytest.raises(ConfigError, match="lerning_rate"):
        make_config(lerning_rate=1.0)
    with pytest.raises(ConfigError, match="unknown variant 'topo'"):
        variants.resolve("topo")
    with pytest.raises(ConfigError, match="unknown config key 'foo'"):
        parse_value("foo", "1")


def test_parse_value_types():
    assert parse_value("total_steps", "2e7") == 20_000_000
    assert parse_value("total_steps", "1_000") == 1000
    assert parse_value("hidden_sizes", "64,64") == (64, 64)
    assert parse_value("hidden_sizes", "[64, 32]") == (64, 32) == parse_value("hidden_sizes", "64 32")
    for bad in ("16,,16", "16,", ",16", "[]"):
        with pytest.raises(ConfigError, match=re.escape(f"config key 'hidden_sizes': empty entry in {bad!r}")):
            parse_value("hidden_sizes", bad)
    assert parse_value("popart", "true") is True
    assert parse_value("learning_rate", "1e-3") == 1e-3
    with pytest.raises(ConfigError, match="popart"):
        parse_value("popart", "maybe")


def test_cli_refuses_bad_input_before_building_envs(tmp_path, capsys):
    for argv, needle in [
        (["--variant", "nope", "--out-dir", str(tmp_path)], "unknown variant"),
        (["--out-dir", str(tmp_path), "bogus=1"], "bogus"),
        (["--total-steps", "-1", "--out-dir", str(tmp_path)], "total_steps"),
        (["--seed", "1", "--out-dir", str(tmp_path), "seed=2"], "seed"),
    ]:
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        assert needle in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing written


def test_config_hash_ignores_device_but_not_hyperparameters():
    a = TrainConfig()
    assert a.config_hash() == make_config(device="cpu").config_hash()
    assert a.config_hash() != make_config(learning_rate=1e-3).config_hash()


def test_every_config_field_is_in_the_fidelity_table():
    """docs/fidelity.md compares every TrainConfig field with the Meta-World+ reference."""
    import re
    from dataclasses import fields
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "fidelity.md").read_text()
    rows = [line for line in doc.splitlines() if line.startswith("| `")]
    documented = {name for row in rows for name in re.findall(r"`([a-z_0-9]+)`", row.split("|")[1])}
    missing = [f.name for f in fields(TrainConfig) if f.name not in documented]
    assert not missing, f"add these fields to docs/fidelity.md: {missing}"


BOOKKEEPING = {"device", "torch_threads", "cores", "progress_every_s", "checkpoint_every_updates",
               "eval_mode", "eval_workers",  # where evaluations run: same eval.csv (tested)
               "env_workers",  # where training envs step: same logs (tests/test_envworkers.py)
               "tensorboard", "wandb_project", "wandb_entity", "wandb_mode"}  # live curves


def test_config_hash_covers_every_field_that_changes_results():
    """Old run directories (other defaults) never pass for new ones: every field but the
    bookkeeping ones is hashed, and the pre-fidelity MT-PPO defaults hash differently."""
    import dataclasses

    base = variants.resolve("mtppo")
    for f in dataclasses.fields(TrainConfig):
        value = getattr(base, f.name)
        if isinstance(value, bool):
            other = dataclasses.replace(base, **{f.name: not value})
        elif isinstance(value, (int, float)):
            other = dataclasses.replace(base, **{f.name: value + 1})
        elif isinstance(value, tuple):
            other = dataclasses.replace(base, **{f.name: value + (8,)})
        else:
            other = dataclasses.replace(base, **{f.name: value + "x"})
        assert (other.config_hash() == base.config_hash()) == (f.name in BOOKKEEPING), f.name
    old_defaults = dict(activation="tanh", init="orthogonal", policy_std="per_task",
                        squash_tanh=False, clip_vloss=True, vf_coef=0.5, adv_norm="task")
    assert make_config(**old_defaults).config_hash() != base.config_hash()


def test_resolved_config_written_by_an_older_trainer_is_refused_by_name():
    from toppo.config import config_from_dict

    d = variants.resolve("mtppo").to_dict()
    assert config_from_dict(d) == variants.resolve("mtppo")
    for key in ("bootstrap_truncation", "adv_norm", "critic_heads"):
        d.pop(key)
    with pytest.raises(ConfigError, match="lacks key.*bootstrap_truncation.*older version"):
        config_from_dict(d)
    d = variants.resolve("mtppo").to_dict()
    d.pop("eval_mode")  # execution only: a config from before the field existed still loads
    assert config_from_dict(d) == variants.resolve("mtppo")


def test_cuda_requested_without_a_gpu_is_a_clean_error(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    code = main(["--variant", "mtppo", "--device", "cuda", "--out-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2
    assert "config key 'device': cuda requested but torch sees no CUDA device" in err
    assert "Traceback" not in err
