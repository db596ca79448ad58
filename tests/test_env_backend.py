"""The ``env_backend`` setting (issue 18; docs/envpool.md) without EnvPool itself: config
hashing (every recorded hash unchanged), refused combinations, how env workers resolve, the
parity scale's configs, the captions that name the backend, and the learning-parity report.
What needs the envpool package is in tests/test_envpool_parity.py."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import synthetic
import yaml

from analysis import backend_parity, figures, load_report_spec, reproduction, tables
from analysis.protocols import RunSet
from toppo.specs import cores
from toppo.specs.config import ConfigError, TrainConfig, config_from_dict, make_config
from toppo.specs.grid import Grid, load_config
from toppo.specs.registry import GROUPS
from toppo.specs.variants import resolve

REPO = Path(__file__).resolve().parents[1]


def test_every_recorded_config_hash_is_unchanged():
    """config.yaml files written before env_backend existed lack it and still hash to the
    config_hash their manifest recorded; envpool hashes differently, metaworld set
    explicitly does not."""
    records = [p for p in sorted((REPO / "results" / "runs" / "cpu").glob("*/*/seed*/config.yaml"))
               if (p.parent / "manifest.json").exists()]  # (a cell being retrained has none)
    assert len(records) >= 6
    for path in records:
        raw = yaml.safe_load(path.read_text())
        assert raw.pop("env_backend", "metaworld") == "metaworld"
        cfg = config_from_dict(raw)  # as a trainer without the field wrote it
        recorded = json.loads((path.parent / "manifest.json").read_text())["config_hash"]
        assert cfg.config_hash() == recorded, path
        assert config_from_dict({**raw, "env_backend": "metaworld"}).config_hash() == recorded
        if cfg.benchmark == "MT10":
            assert dataclasses.replace(cfg, env_backend="envpool").config_hash() != recorded
    assert TrainConfig().env_backend == "metaworld"
    assert make_config(env_backend="envpool").config_hash() != TrainConfig().config_hash()


@pytest.mark.parametrize("overrides, key", [
    ({"reward_version": "v1"}, "reward_version"),
    ({"benchmark": "MT50"}, "benchmark"),
    ({"env_workers": 2}, "env_workers"),
    ({"async_envs": True}, "async_envs"),
    ({"max_episode_steps": 501}, "max_episode_steps"),
])
def test_envpool_refuses_what_it_cannot_train_naming_the_key(overrides, key):
    with pytest.raises(ConfigError, match=f"^config key '{key}': env_backend=envpool") as exc:
        make_config(env_backend="envpool", **overrides)
    assert "\n" not in str(exc.value)
    if key != "max_episode_steps":
        make_config(**overrides)  # fine on metaworld


def test_unknown_backend_is_refused():
    with pytest.raises(ConfigError, match="^config key 'env_backend': expected one of"):
        make_config(env_backend="brax")


def test_env_workers_auto_is_zero_with_envpool_and_pools_step_in_parallel_on_spare_cores():
    mw = resolve("mtppo", {"cores": 8})
    ep = resolve("mtppo", {"cores": 8, "env_backend": "envpool"})
    assert cores.env_worker_count(mw) > 0 and cores.env_worker_count(ep) == 0
    assert cores.env_worker_count(resolve("mtppo", {"env_backend": "envpool", "env_workers": 0})) == 0
    one = resolve("mtppo", {"cores": 1, "env_backend": "envpool", "eval_mode": "inline"})
    assert not cores.envpool_parallel_pools(one)  # a one-core job: one pool at a time
    assert not cores.envpool_parallel_pools(dataclasses.replace(one, cores=2, eval_mode="overlap",
                                                                eval_workers=1))
    assert cores.envpool_parallel_pools(ep)


def test_parity_scale_trains_the_cpu_studys_mt10_cells_with_envpool_alone():
    parity = Grid(load_config([REPO / "config" / "envpool_parity.yaml"]))
    cpu = Grid(load_config([REPO / "config" / "cpu.yaml"]))
    assert parity.scale == "envpool_parity" and parity.runs_root == "results/runs/envpool_parity"
    assert [tuple(c) for c in parity.cells] == [("MT10", "v2", "mtppo_ref", s) for s in range(3)]
    for cell in parity.cells:
        assert cell in cpu.cells
        want = dataclasses.replace(cpu.train_config(cell), env_backend="envpool")
        assert parity.train_config(cell) == want
        assert parity.resources["MT10"] == cpu.resources["MT10"]


def test_a_grid_with_envpool_on_mt50_fails_at_start_naming_the_key():
    from toppo.specs.grid import GridError

    config = load_config([REPO / "config" / "cpu.yaml"])
    config["trainer_overrides"] = {**config["trainer_overrides"], "env_backend": "envpool"}
    with pytest.raises(GridError, match="config key 'benchmark': env_backend=envpool trains MT10 only"):
        Grid(config)


# ------------------------------------------------------------------ captions
def _with_backend(run_dirs, backend):
    for run in run_dirs:
        path = Path(run) / "manifest.json"
        m = json.loads(path.read_text())
        m["env_backend"] = backend
        path.write_text(json.dumps(m))


@pytest.fixture()
def spec():
    s = load_report_spec()
    s["table3"] = {"protocol": "final/mean/std", "reward_version": "v2",
                   "blocks": [{"benchmark": "MT10", "ours": ["toppo", "mtppo"], "baselines": []}]}
    s["ablations"] = {"benchmark": "MT10", "reward_version": "v2", "protocol": "final/mean/std"}
    s["bootstrap_reps"] = 50
    return s


def test_every_caption_and_footnote_names_an_envpool_run(tmp_path, spec):
    runs_dirs = synthetic.write_suite(tmp_path, scale="s", groups=[("MT10", "v2", ["toppo", "mtppo"])],
                                      seeds=range(2), n_evals=3, train_updates=4)
    _with_backend(runs_dirs, "metaworld")  # recorded by today's trainer: no note
    runs = RunSet.load([tmp_path / "s"], reps=50, train=True)
    assert runs.backend_note() == ""
    assert "env\\_backend" not in tables.per_task(runs, spec, "s")
    _with_backend([d for d in runs_dirs if "mtppo" in str(d)], "envpool")
    runs = RunSet.load([tmp_path / "s"], reps=50, train=True)
    note = ("training envs on envpool (env_backend=envpool) in 2 of 4 runs (MT10-v2 mtppo), "
            "evaluation on metaworld's envs")
    assert runs.backend_note() == note
    tex_note = "Training envs on envpool (env\\_backend=envpool) in 2 of 4 runs"
    paths = tables.render_all([tmp_path / "s"], spec, None, tmp_path / "out", "s", reps=50,
                              log=None)
    captions = [" ".join(p.read_text().split()) for p in paths]
    captions = [c for c in captions if "\\caption" in c]
    assert len(captions) == len(tables.TABLE_FILES)
    for text in captions:
        assert tex_note in text, text[:200]
    assert tex_note in " ".join(reproduction.render_tex([], "s", runs).split())
    for make in (figures.training_curves, figures.success_heatmap, figures.gradnorm_spread):
        fig = make(runs, spec, "s")
        assert "env_backend=envpool" in " ".join(fig._supxlabel.get_text().split()), make.__name__
        figures.plt.close(fig)


# ------------------------------------------------------------------ the parity report
def _side(root: Path, backend: str, finals: list[float]) -> Path:
    for seed, f in enumerate(finals):
        success = np.vstack([np.full(10, 0.1), np.full(10, f / 2), np.full(10, f)])
        run = synthetic.write_run(root / f"seed{seed}", variant="mtppo", benchmark="MT10",
                                  reward_version="v2", seed=seed, success=success,
                                  steps=[200_000, 400_000, 600_000], episodes=10)
        _with_backend([run], backend)
    return root


def test_compare_finds_equal_and_different_means():
    same = backend_parity.compare([0.30, 0.40, 0.35], [0.33, 0.38, 0.41])
    assert same.same and same.ci_low < 0 < same.ci_high
    assert same.difference == pytest.approx(np.mean([0.33, 0.38, 0.41]) - 0.35)
    apart = backend_parity.compare([0.30, 0.31, 0.32], [0.60, 0.61, 0.62])
    assert not apart.same and apart.ci_low > 0 and apart.p_value < 0.01
    assert backend_parity.compare([0.2, 0.2], [0.2, 0.2]).same
    assert not backend_parity.compare([0.2, 0.2], [0.3, 0.3]).same


def test_parity_report_reads_both_sides_and_refuses_a_wrong_backend(tmp_path, capsys):
    mw = _side(tmp_path / "mw", "metaworld", [0.30, 0.40, 0.35])
    ep = _side(tmp_path / "ep", "envpool", [0.33, 0.38, 0.41])
    out = tmp_path / "out"
    assert backend_parity.main(["--metaworld", str(mw), "--envpool", str(ep), "--out-dir", str(out)]) == 0
    md = (out / "backend_parity.md").read_text()
    assert "**Verdict: same success within seed noise**" in md
    assert "metaworld 35.0 ± 5.0, envpool 37.3 ± 4.0" in md and "difference envpool − metaworld +2.3" in md
    assert (out / "backend_parity.png").stat().st_size > 0 and (out / "backend_parity.pdf").exists()
    rows = (out / "backend_parity.csv").read_text().splitlines()
    assert len(rows) == 1 + 6 and rows[1].startswith("metaworld,0,600000,0.3,")
    # the sides swapped: the metaworld side's manifests say envpool
    assert backend_parity.main(["--metaworld", str(ep), "--envpool", str(mw), "--out-dir", str(out)]) == 1
    assert "were not trained with env_backend=metaworld" in capsys.readouterr().err


# ------------------------------------------------------------------ aggregates
def _aggregate_module():
    import sys

    sys.path.insert(0, str(REPO / "workflow" / "scripts"))
    try:
        import aggregate
    finally:
        sys.path.pop(0)
    return aggregate


def test_aggregate_names_the_backend_only_where_a_run_used_envpool(tmp_path, monkeypatch):
    """The committed CPU study's aggregate re-aggregates byte for byte (no new column);
    a group with an envpool run gets an env_backend column."""
    aggregate = _aggregate_module()
    committed = REPO / "results" / "cpu" / "aggregate" / "MT10-v2.csv"
    runs = sorted(f"results/runs/cpu/MT10-v2/{v}/seed{s}" for v in GROUPS["reference_check"]
                  for s in range(3))
    monkeypatch.chdir(REPO)
    out = tmp_path / "MT10-v2.csv"
    assert aggregate.main(["--scale", "cpu", "--out", str(out), *runs]) == 0
    assert out.read_bytes() == committed.read_bytes()
    dirs = synthetic.write_suite(tmp_path / "s", scale="s", groups=[("MT10", "v2", ["mtppo"])],
                                 seeds=range(2), n_evals=2, train_updates=None)
    _with_backend(dirs[:1], "envpool")
    frame = aggregate.aggregate(dirs, "s")
    assert list(frame.columns[-2:]) == ["env_backend", "run_dir"]
    assert sorted(frame.env_backend.unique()) == ["envpool", "metaworld"]
