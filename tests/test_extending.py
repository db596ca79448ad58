"""docs/extending.md, tested: a combiner, a variant row, a benchmark and a config field are
each added in the one place the page names, and the rest of the harness follows."""

import filecmp
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml

from toppo.algo import combiners as combiners_mod
from toppo.specs import config as config_mod
from toppo.specs import registry
from toppo.specs.config import ConfigError, TrainConfig, coerce_value, config_from_dict, make_config
from toppo.specs.grid import REPO, Grid, load_config
from toppo.specs.variants import resolve
from toppo.train import main
from toppo.trainer import Trainer

TINY = {"benchmark": "MT10", "reward_version": "v1", "seed": 3, "device": "cpu",
        "total_steps": 1000, "rollout_steps_per_task": 100, "num_epochs": 1,
        "num_minibatches": 2, "hidden_sizes": (32, 32), "eval_episodes": 1,
        "eval_envs_per_task": 1, "torch_threads": 1, "progress_every_s": 0.0,
        "eval_mode": "inline", "env_workers": 0, "diagnostics": False}


@pytest.mark.slow
def test_a_combiner_registered_in_one_place_trains(monkeypatch, tmp_path):
    """A toy combiner: its function and its one registry entry (with an option read from a
    config field); the config accepts it by name and one real update of MT10 uses it on
    both sides, with the option's value."""
    calls = []

    def halved_sum(G: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        calls.append((G.shape[0], scale))
        return G.sum(0) * scale

    monkeypatch.setitem(registry.COMBINERS, "halved_sum",
                        registry.Combiner(halved_sum, {"scale": "cagrad_c"}))
    cfg = make_config(TINY, actor_combiner="halved_sum", critic_combiner="halved_sum",
                      stratified_minibatches=True, cagrad_c=0.5)
    trainer = Trainer(cfg, tmp_path, "toy")
    try:
        row = trainer.train_one_update()
    finally:
        trainer.close()
    assert row["update"] == 1 and all(torch.isfinite(torch.tensor(row[k]))
                                      for k in ("policy_loss", "value_loss"))
    # 1 epoch x 2 minibatches x 2 sides, each over the 10 tasks' gradients, with scale 0.5
    assert calls == [(10, 0.5)] * 4
    with pytest.raises(ConfigError, match="actor_combiner.*unknown combiner"):
        make_config(TINY, actor_combiner="not_registered", stratified_minibatches=True)


def test_a_variant_row_is_one_registry_entry(monkeypatch):
    """A row in VARIANTS (and its label) is a variant everywhere: resolved by name, accepted by
    the workflow's grid and, listed in a group, part of that group's cells."""
    monkeypatch.setitem(registry.VARIANTS, "mtppo_lna", {**registry.PAPER_MTPPO, "ln_actor": True})
    monkeypatch.setitem(registry.LABELS, "mtppo_lna", "MT-PPO + LN-a")
    monkeypatch.setitem(registry.GROUPS, "single", [*registry.GROUPS["single"], "mtppo_lna"])
    cfg = resolve("mtppo_lna", {"benchmark": "MT50"})
    assert cfg.ln_actor and cfg.config_hash() != resolve("mtppo", {"benchmark": "MT50"}).config_hash()
    grid = Grid(load_config())
    group = next(g for g in grid.config["grid"] if g["name"] == "single")
    assert len(grid.groups["single"]) == len(registry.GROUPS["single"]) * group["seeds"]
    assert ("MT50", "v2", "mtppo_lna", 0) in grid.cells


def _insert_after(path: Path, line: str, text: str) -> None:
    """Put ``text`` on the lines after the first line that starts with ``line``."""
    lines = path.read_text().splitlines(keepends=True)
    at = next(i for i, x in enumerate(lines) if x.startswith(line))
    path.write_text("".join([*lines[:at + 1], text, *lines[at + 1:]]))


# What the copy reports back: its paper grid, the config that asks for the new combiner's grid,
# the new row's config, and the combiner's direction on a small G (as the learner calls it).
REPORT = """
import json, torch
from toppo.algo import combiners
from toppo.specs import registry
from toppo.specs.grid import Grid, load_config
from toppo.specs.variants import resolve
G = torch.tensor([[1.0, 2.0], [3.0, 6.0]])
print(json.dumps({
    "registry": registry.__file__,
    "paper": [str(c) for c in Grid(load_config()).cells],
    "mine": [str(c) for c in Grid(load_config(["config/mine.yaml"])).cells],
    "row": resolve("mtppo_meanc", {"benchmark": "MT50"}).to_dict(),
    "direction": combiners.combine("mean", G).tolist(),
}))
"""


@pytest.mark.slow
def test_the_recipe_adds_a_combiner_and_a_row_in_three_files_and_the_paper_grid_stays(tmp_path):
    """docs/extending.md's recipes, done as a user does them, in a copy of the harness: a
    combiner (its function, one line in COMBINERS), a variant row (its row and label) and a
    workflow config that asks for the new combiner's grid: three files. The paper grid keeps
    every cell, the new config's grid crosses its combiners, the row resolves and the
    combiner is the learner's."""
    repo = tmp_path / "repo"
    for folder in ("toppo", "analysis", "config", "workflow"):
        shutil.copytree(REPO / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__"))
    copy = {m: repo / Path(m.__file__).relative_to(REPO) for m in (registry, combiners_mod)}
    edited = [copy[combiners_mod], copy[registry], repo / "config" / "mine.yaml"]
    with open(copy[combiners_mod], "a") as f:  # 1. the function
        f.write("\n\ndef mean(G: torch.Tensor) -> torch.Tensor:\n    return G.mean(0)\n")
    _insert_after(copy[registry], "COMBINERS: dict[str, Combiner] = {",  # 2. its registry line
                  '    "mean": Combiner("toppo.algo.combiners:mean"),\n')
    _insert_after(copy[registry], "VARIANTS: dict[str, dict[str, Any]] = {",  # 3. a row
                  '    "mtppo_meanc": {**PAPER_MTPPO, **STRAT, "critic_combiner": "mean"},\n')
    _insert_after(copy[registry], "LABELS: dict[str, str] = {",
                  '    "mtppo_meanc": "MT-PPO + mean-c",\n')
    edited[2].write_text(textwrap.dedent("""\
        scale: mine
        grid:
          - {name: mine, benchmarks: [MT50], reward_versions: [v2],
             variants: {combiners: [sum, fairgrad, mean]}, seeds: 1}
          - {name: row, benchmarks: [MT50], reward_versions: [v2], variants: [mtppo_meanc], seeds: 1}
        """))
    changed = [f for f in repo.rglob("*") if f.is_file() and not (
        (REPO / f.relative_to(repo)).is_file() and filecmp.cmp(f, REPO / f.relative_to(repo), shallow=False))]
    assert sorted(changed) == sorted(edited) and len(edited) <= 3
    proc = subprocess.run([sys.executable, "-c", REPORT], cwd=repo, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(repo)}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert Path(out["registry"]) == copy[registry]  # the copy ran, not this checkout
    assert out["paper"] == [str(c) for c in Grid(load_config()).cells]  # not one cell more
    grid = [f"grid_a-{a}_c-{c}" for a in ("sum", "fairgrad", "mean") for c in ("sum", "fairgrad", "mean")]
    assert out["mine"] == sorted(f"MT50-v2/{v}/seed0" for v in [*grid, "mtppo_meanc"])
    row = resolve("mtppo", {"benchmark": "MT50"}).to_dict()
    assert {k for k in row if row[k] != out["row"][k]} == {"critic_combiner", "stratified_minibatches"}
    assert out["direction"] == [2.0, 4.0]


def _resolve(dotted: str) -> object:
    """The object a ``module.symbol`` path names: the longest importable module, then
    attributes (an AttributeError or ImportError when it names nothing)."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def test_every_symbol_the_page_cites_exists():
    """docs/extending.md cites symbols, never line numbers: every `module.symbol`, every
    `tests/file.py::test` and every repository path it names exists."""
    page = (REPO / "docs" / "extending.md").read_text()
    symbols = set(re.findall(r"`((?:toppo|analysis)(?:\.\w+)+)`", page))
    tests = set(re.findall(r"`(tests/\w+\.py)::(\w+)`", page))
    paths = set(re.findall(r"`((?:[\w.-]+/)+[\w.-]*)`", page))
    assert len(symbols) > 20 and len(tests) > 5 and "toppo.specs.registry.COMBINERS" in symbols
    for dotted in sorted(symbols):
        _resolve(dotted)
    for path, test in sorted(tests):
        assert re.search(rf"^def {test}\(", (REPO / path).read_text(), re.M), f"{path}::{test}"
    assert [p for p in sorted(paths) if not (REPO / p).exists()] == []
    assert not re.search(r"\blines? \d", page)


def test_a_benchmark_is_one_registry_entry(monkeypatch):
    """A benchmark's task names in BENCHMARKS: the config's validation, the workflow config's
    schema and grid (budgets, resources, overrides, groups) and the task count follow."""
    monkeypatch.setitem(registry.BENCHMARKS, "MT3", ("reach-v3", "push-v3", "pick-place-v3"))
    assert make_config(benchmark="MT3", rollout_steps_per_task=100).steps_per_update == 300
    config = load_config()
    config["budgets"]["MT3"] = 3000
    config["resources"]["MT3"] = {"threads": 1, "mem_mb": 1000, "runtime": 10}
    config["grid"] = [{"name": "small", "benchmarks": ["MT3"], "reward_versions": ["v2"],
                       "variants": "main", "seeds": 1}]
    grid = Grid(config)
    assert [str(c) for c in grid.cells] == ["MT3-v2/mtppo/seed0", "MT3-v2/toppo/seed0"]
    assert grid.train_config(grid.cells[0]).num_tasks == 3
    monkeypatch.delitem(registry.BENCHMARKS, "MT3")
    with pytest.raises(ValueError, match="budgets.MT3: unknown benchmark"):
        Grid(config)


def test_an_added_field_keeps_every_recorded_hash(monkeypatch):
    """A field listed in ADDED_FIELDS is out of the hash at its default (a record from before
    it existed keeps its hash and loads without it) and in the hash when set."""
    default = TrainConfig()
    recorded = default.to_dict()
    del recorded["cagrad_c"]  # as if written before the field existed
    with pytest.raises(ConfigError, match="lacks key.*cagrad_c"):
        config_from_dict(recorded)
    monkeypatch.setattr(config_mod, "ADDED_FIELDS", ("cagrad_c",))
    assert config_from_dict(recorded) == default
    plain_hash = default.config_hash()
    monkeypatch.setattr(config_mod, "ADDED_FIELDS", ())
    assert plain_hash != default.config_hash()  # it was left out
    monkeypatch.setattr(config_mod, "ADDED_FIELDS", ("cagrad_c",))
    assert TrainConfig(cagrad_c=0.5).config_hash() != plain_hash


def test_yaml_values_are_used_in_their_types():
    assert coerce_value("total_steps", 2e7) == 20_000_000
    assert coerce_value("learning_rate", 1) == 1.0 and isinstance(coerce_value("learning_rate", 1), float)
    assert coerce_value("hidden_sizes", [64, 32]) == (64, 32)
    assert coerce_value("popart", True) is True
    assert coerce_value("learning_rate", "1e-3") == 1e-3  # YAML 1.1 reads 1e-3 as text
    assert coerce_value("env_workers", 3) == 3 and coerce_value("env_workers", "auto") == "auto"
    for key, bad in (("num_epochs", 2.5), ("popart", 1), ("hidden_sizes", []), ("num_epochs", True),
                     ("learning_rate", float("inf")), ("hidden_sizes", [64, True])):
        with pytest.raises(ConfigError, match=key):
            coerce_value(key, bad)


def test_the_trainer_takes_a_resolved_config_file(tmp_path, capsys):
    """--config FILE: the file's config, flags and key=value on top; --variant only names the
    run. The workflow's cell file and a run's config.yaml are such files."""
    cfg = Grid(load_config([REPO / "config" / "cpu.yaml"])).train_config(("MT10", "v2", "toppo", 1))
    path = tmp_path / "cell.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    assert main(["--config", str(path), "--print-config"]) == 0
    assert config_from_dict(yaml.safe_load(capsys.readouterr().out)) == cfg
    assert main(["--config", str(path), "--print-config", "--seed", "7", "num_epochs=3"]) == 0
    changed = config_from_dict(yaml.safe_load(capsys.readouterr().out))
    assert (changed.seed, changed.num_epochs) == (7, 3) and changed.popart == cfg.popart
    path.write_text(yaml.safe_dump({k: v for k, v in cfg.to_dict().items() if k != "popart"}))
    with pytest.raises(SystemExit):
        main(["--config", str(path), "--print-config"])
    assert f"--config {path}: resolved config lacks key(s) popart" in capsys.readouterr().err
