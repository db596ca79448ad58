"""Config validation and the named variants: bad input is refused by name, before any env."""

import re

import pytest

from toppo.specs import registry, variants
from toppo.specs.config import ConfigError, TrainConfig, make_config, parse_value
from toppo.train import main


def test_every_variant_resolves_and_toppo_is_the_paper_configuration():
    for name in registry.VARIANTS:
        variants.resolve(name)
    t = variants.resolve("toppo")
    assert (t.popart, t.critic_heads, t.ln_critic, t.actor_combiner, t.critic_combiner,
            t.actor_fairgrad_alpha, t.critic_fairgrad_alpha) == (
        True, "shared", True, "pcgrad", "fairgrad", 1.0, 1.0)
    plain = variants.resolve("mtppo")
    assert (plain.popart, plain.ln_critic, plain.actor_combiner, plain.critic_combiner,
            plain.critic_heads) == (False, False, "sum", "sum", "shared")
    for paper_row in (t, plain):  # the settings the paper states for all its configurations
        assert (paper_row.policy_std, paper_row.clip_vloss, paper_row.max_grad_norm) == (
            "per_task", True, 1.0)
    assert t.stratified_minibatches


def _changed(a: str, b: str) -> set[str]:
    x, y = variants.resolve(a).to_dict(), variants.resolve(b).to_dict()
    return {k for k in x if x[k] != y[k]}


# Each paper row against the paper's MT-PPO: exactly the fields of its named modules (a
# combiner row also switches on the task-stratified minibatches it needs).
PAPER_ROW_MODULES = {
    "mtppo_popart": {"popart"},
    "mtppo_lnc": {"ln_critic"},
    "mtppo_fgc": {"critic_combiner", "stratified_minibatches"},
    "mtppo_pcga": {"actor_combiner", "stratified_minibatches"},
    "mtppo_strat": {"stratified_minibatches"},
    "mtppo_mhc": {"critic_heads"},
    "mtppo_lnc_pcga": {"ln_critic", "actor_combiner", "stratified_minibatches"},
    "mtppo_lnc_pcga_fgc": {"ln_critic", "actor_combiner", "critic_combiner",
                           "stratified_minibatches"},
    "toppo": {"ln_critic", "actor_combiner", "critic_combiner", "stratified_minibatches",
              "popart"},
}


def test_each_paper_row_differs_from_mtppo_in_exactly_its_named_modules():
    named = [n for n in registry.VARIANTS if not n.startswith(("grid_", "ref_"))
             and not n.endswith("_ref") and n != "mtppo"]
    assert sorted(named) == sorted(PAPER_ROW_MODULES)  # a new paper row is listed here
    for name, fields in PAPER_ROW_MODULES.items():
        assert _changed("mtppo", name) == fields, name


def test_cumulative_group_is_the_papers_order():
    """MT-PPO, one module per row, then + FG-c (LN-c and FG-c, no PopArt), then + PopArt:
    "PopArt's marginal over LN-c+FG-c ... (rows 4->5)"."""
    cumulative = registry.GROUPS["cumulative"]
    assert cumulative[0] == "mtppo" and cumulative[-1] == "toppo"
    for prev, nxt in zip(cumulative, cumulative[1:]):
        assert len(_changed(prev, nxt) - {"stratified_minibatches"}) == 1, (prev, nxt)
    before = variants.resolve(cumulative[-2])
    assert before.ln_critic and before.critic_combiner == "fairgrad" and not before.popart
    assert _changed(cumulative[-2], "toppo") == {"popart"}
    assert "mtppo_mhc" not in cumulative and "mtppo_mhc" in registry.GROUPS["single"]


def test_single_rows_change_one_module_of_mtppo():
    for name in registry.GROUPS["single"][1:]:
        changed = _changed("mtppo", name)
        if changed != {"stratified_minibatches"}:
            changed -= {"stratified_minibatches"}
        assert len(changed) == 1, (name, changed)


# The reference family's config hashes, pinned: the committed CPU-study and EnvPool-parity
# records of mtppo_ref/toppo_ref were trained as `mtppo`/`toppo` before issue 27 with these
# very configs (results/runs/cpu/*/*_ref/seed*/manifest.json).
REFERENCE_HASHES = {
    ("mtppo_ref", "MT10"): "ebfbcdcf1e1c", ("mtppo_ref", "MT50"): "8080acc00140",
    ("toppo_ref", "MT10"): "c41b6d65e086", ("toppo_ref", "MT50"): "4373cac63137",
    ("ref_mt10", "MT10"): "2707d8625fcf", ("ref_mt50", "MT50"): "8c22104acdff",
}


@pytest.mark.parametrize("variant, benchmark", sorted(REFERENCE_HASHES))
def test_reference_rows_keep_their_config_hashes(variant, benchmark):
    cfg = variants.resolve(variant, {"benchmark": benchmark})
    assert cfg.config_hash() == REFERENCE_HASHES[(variant, benchmark)]


def test_reference_rows_are_the_reference_base_with_toppos_modules():
    ref = variants.resolve("mtppo_ref")
    assert (ref.policy_std, ref.clip_vloss, ref.critic_heads) == ("head", False, "shared")
    assert _changed("mtppo_ref", "toppo_ref") == {
        "critic_heads", "popart", "ln_critic", "stratified_minibatches", "actor_combiner",
        "critic_combiner"}
    # the paper's MT-PPO is the reference base plus the two settings the paper states
    assert _changed("mtppo_ref", "mtppo") == {"policy_std", "clip_vloss"}


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
    mtppo = variants.resolve("mtppo_ref", {"benchmark": "MT50"}).to_dict()
    ref = mt50.to_dict()
    assert {k for k in ref if ref[k] != mtppo[k]} == {"bootstrap_truncation"}  # the deviation


def test_reference_presets_keep_their_benchmark():
    assert variants.resolve("ref_mt10", {"benchmark": "MT10"}).benchmark == "MT10"
    with pytest.raises(ConfigError, match="ref_mt10.*MT10 script.*MT50"):
        variants.resolve("ref_mt10", {"benchmark": "MT50"})


@pytest.mark.parametrize("overrides, key", [
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
    """The paper's grid crosses the combiners the paper names (PCGrad, CAGrad, FairGrad and
    the plain sum), each on each side; every pair of registered combiners is a variant, each
    its own config."""
    assert registry.PAPER_COMBINERS == ("sum", "pcgrad", "cagrad", "fairgrad")
    assert list(registry.COMBINER_GRID) == [(a, c) for a in registry.PAPER_COMBINERS
                                            for c in registry.PAPER_COMBINERS]
    assert registry.GROUPS["combiners"] == list(registry.COMBINER_GRID.values())
    assert registry.COMBINER_GRID[("pcgrad", "fairgrad")] == "toppo"
    assert list(registry.COMBINER_PAIRS) == [(a, c) for a in registry.COMBINERS
                                             for c in registry.COMBINERS]
    assert registry.COMBINER_GRID.items() <= registry.COMBINER_PAIRS.items()
    configs = [variants.resolve(n) for n in registry.COMBINER_PAIRS.values()]
    assert len(set(configs)) == len(configs)


def test_a_config_asks_for_a_combiner_grid_by_its_combiners():
    """`variants: {combiners: [...]}` in a grid group (or a report's ablation rows): the grid
    crossing those combiners, each on each side; an unregistered one is refused by name."""
    from analysis import check_report
    from toppo.specs.grid import Grid, GridError, load_config, validate_config

    two = registry.variant_list({"combiners": ["sum", "fairgrad"]})
    assert two == ["grid_a-sum_c-sum", "grid_a-sum_c-fairgrad", "grid_a-fairgrad_c-sum",
                   "grid_a-fairgrad_c-fairgrad"]
    assert registry.variant_list({"combiners": list(registry.PAPER_COMBINERS)}) == \
        registry.GROUPS["combiners"]
    config = load_config()
    config["grid"] = [{"name": "mine", "benchmarks": ["MT50"], "reward_versions": ["v2"],
                       "variants": {"combiners": ["sum", "fairgrad"]}, "seeds": 2}]
    validate_config(config)  # the workflow's schema takes the form
    assert [c.variant for c in Grid(config).cells] == sorted(two * 2)
    config["grid"][0]["variants"]["combiners"].append("mine")
    with pytest.raises(GridError, match="grid group 'mine': unknown combiner.s. 'mine'; registered "
                                        "combiners .toppo.specs.registry.COMBINERS.: sum, pcgrad"):
        Grid(config)
    report = {**config["report"], "ablations": {**config["report"]["ablations"],
                                                "combiners": {"combiners": ["sum", "mine"]}}}
    with pytest.raises(ValueError, match="report.ablations.combiners: unknown combiner.s. 'mine'"):
        check_report(report, "r.yaml")


def test_combiner_grid_names_exactly_the_cells_that_are_named_variants():
    """GRID_NAMED: each named cell is the same config as its grid overrides, and no other cell
    equals any named variant (so no configuration is trained twice under two names)."""
    named = {n: variants.resolve(n) for n in registry.VARIANTS if not n.startswith("grid_")}
    for (a, c), name in registry.COMBINER_PAIRS.items():
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
    from toppo.specs.config import config_from_dict

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


def test_fairgrad_alpha_is_set_per_side_and_hashed_as_one_field_while_the_sides_agree():
    """``fairgrad_alpha`` was one field for both sides: a recorded config that names it
    gives it to both, and the per-side pair hashes as the old field while they agree."""
    from toppo.specs.config import config_from_dict

    base = TrainConfig()
    assert make_config(actor_fairgrad_alpha=2.0).config_hash() != base.config_hash()
    assert make_config(actor_fairgrad_alpha=2.0).config_hash() != \
        make_config(critic_fairgrad_alpha=2.0).config_hash()
    recorded = {k: v for k, v in TrainConfig(actor_fairgrad_alpha=2.0,
                                             critic_fairgrad_alpha=2.0).to_dict().items()
                if not k.endswith("_fairgrad_alpha")}
    recorded["fairgrad_alpha"] = 2.0  # as the trainer wrote it before the split
    old = config_from_dict(recorded)
    assert (old.actor_fairgrad_alpha, old.critic_fairgrad_alpha) == (2.0, 2.0)
    assert old == make_config(actor_fairgrad_alpha=2.0, critic_fairgrad_alpha=2.0)
    for key in ("actor_fairgrad_alpha", "critic_fairgrad_alpha"):
        with pytest.raises(ConfigError, match=key):
            make_config(**{key: 0.0})


def test_popart_on_a_shared_head_keeps_statistics_only():
    """The paper rows' PopArt: a shared value head (no per-task row to rescale), per-task
    statistics; with per-task heads each row is rescaled so outputs are preserved."""
    import torch

    from toppo.algo.popart import PopArt

    targets = torch.tensor([[1.0, 3.0, 5.0], [100.0, 300.0, 500.0]])
    shared, per_task = PopArt(2), PopArt(2)
    shared.update(targets, None)
    head = torch.nn.Linear(4, 2).double()
    h = torch.randn(5, 4, dtype=torch.float64)
    before = per_task.denormalize(head(h), torch.zeros(5, dtype=torch.long)[:, None] +
                                  torch.arange(2))
    per_task.update(targets, head)
    after = per_task.denormalize(head(h), torch.zeros(5, dtype=torch.long)[:, None] +
                                 torch.arange(2))
    torch.testing.assert_close(after, before)  # outputs preserved precisely
    torch.testing.assert_close(shared.mu, per_task.mu)  # the same statistics either way
    torch.testing.assert_close(shared.mu, torch.tensor([3.0, 300.0], dtype=torch.float64))
