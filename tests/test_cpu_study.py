"""The committed CPU-scale study (config/cpu.yaml; docs/results-cpu.md) is a
complete, consistent record: every cell of its grid is there, finished, trained with the
config the workflow resolves today, without checkpoints, and its tables re-render byte for
byte from the committed logs."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from dag_configs import grid_cells

from analysis import tables
from toppo.specs.config import UNHASHED_FIELDS, cli_value, config_from_dict, parse_value
from toppo.specs.variants import resolve

REPO = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((REPO / "config" / "cpu.yaml").read_text())
SCALE = CONFIG["scale"]
RUNS = REPO / "results" / "runs" / SCALE
REPORT = REPO / "results" / SCALE


def expected_config(benchmark, reward, variant, seed):
    """What the workflow resolves for the cell: trainer_overrides, then benchmark_overrides;
    torch_threads from the job's resources."""
    overrides = {**CONFIG.get("trainer_overrides", {}), **CONFIG.get("benchmark_overrides", {}).get(benchmark, {})}
    typed = {k: parse_value(k, cli_value(v)) for k, v in overrides.items()}
    return resolve(variant, {**typed, "benchmark": benchmark, "reward_version": reward, "seed": seed,
                             "total_steps": CONFIG["budgets"][benchmark], "device": CONFIG["device"],
                             "torch_threads": CONFIG["resources"][benchmark]["threads"]})


@pytest.mark.parametrize("cell", sorted(grid_cells(CONFIG)), ids=lambda c: "{}-{}/{}/seed{}".format(*c))
def test_every_cell_is_committed_finished_and_current(cell):
    benchmark, reward, variant, seed = cell
    run = RUNS / f"{benchmark}-{reward}" / variant / f"seed{seed}"
    manifest = json.loads((run / "manifest.json").read_text())
    want = expected_config(*cell)
    assert manifest["status"] == "complete" and manifest["env_steps"] == CONFIG["budgets"][benchmark]
    assert manifest["config_hash"] == want.config_hash(), f"{run}: trained with another config than today's"
    assert manifest["machine"]["numerics"] == CONFIG["numerics"] == "portable"  # the mode its config runs
    recorded = config_from_dict(yaml.safe_load((run / "config.yaml").read_text()))
    # every field that decides a result, named in the diff; execution-only ones (where the
    # envs and evaluations ran: eval_workers, env_workers, ...) may differ
    deciding = lambda cfg: {k: v for k, v in cfg.to_dict().items() if k not in UNHASHED_FIELDS}  # noqa: E731
    assert deciding(recorded) == deciding(want)
    evals = pd.read_csv(run / "eval.csv")
    assert evals.step.max() == CONFIG["budgets"][benchmark] and set(evals.variant) == {variant}
    assert len(pd.read_csv(run / "train_metrics.csv")) == manifest["updates"] == want.num_updates


def test_no_checkpoint_is_committed():
    tracked = subprocess.run(["git", "ls-files", "results"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.split()
    assert tracked, "no results committed"
    assert not [p for p in tracked if p.endswith(".pt") or "/checkpoints/" in p]


def test_tables_rerender_byte_for_byte(tmp_path):
    res = subprocess.run([sys.executable, "-m", "analysis", "tables", "--runs", str(RUNS),
                          "--config", str(REPORT / "config.yaml"), "--out-dir", str(tmp_path),
                          "--scale", SCALE], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    for name in tables.TABLE_FILES:
        assert (tmp_path / f"{name}.tex").read_bytes() == (REPORT / f"{name}.tex").read_bytes(), name
