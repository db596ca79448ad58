"""Config validation and the named variants: bad input is refused by name, before any env."""

import pytest

from toppo import variants
from toppo.config import ConfigError, TrainConfig, make_config, parse_value
from toppo.train import main


def test_every_variant_resolves_and_toppo_is_the_paper_configuration():
    for name in variants.VARIANTS:
        variants.resolve(name)
    t = variants.resolve("toppo")
    assert (t.popart, t.ln_critic, t.actor_combiner, t.critic_combiner, t.fairgrad_alpha) == (
        True, True, "pcgrad", "fairgrad", 1.0)
    assert t.stratified_minibatches and t.clip_vloss
    plain = variants.resolve("mtppo")
    assert (plain.popart, plain.ln_critic, plain.actor_combiner, plain.critic_combiner) == (
        False, False, "sum", "sum")


def test_cumulative_rows_add_one_module_each():
    cfgs = [variants.resolve(n).to_dict() for n in variants.CUMULATIVE]
    for prev, nxt in zip(cfgs, cfgs[1:]):
        changed = {k for k in prev if prev[k] != nxt[k]} - {"stratified_minibatches"}
        assert len(changed) == 1, changed


def test_combiner_grid_covers_all_pairs_without_duplicate_configs():
    assert len(variants.COMBINER_GRID) == 16
    assert variants.COMBINER_GRID[("pcgrad", "fairgrad")] == "toppo"
    configs = [variants.resolve(n) for n in variants.COMBINER_GRID.values()]
    assert len(set(configs)) == 16


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
