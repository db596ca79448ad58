"""A retrain through Snakemake loses nothing: `--force <cell>/eval.csv --config retrain=true`
on a finished cell moves its whole record (config, manifest, logs, checkpoints,
benchmark.tsv, and train.log as that run left it) to superseded/, byte for byte, with and without
checkpoints (a committed record has none), and trains the cell again."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CELL = "results/runs/rt/MT10-v1/mtppo/seed0"
CONFIG = """\
scale: rt
device: cpu
numerics: portable
budgets: {MT10: 5000}
resources:
  MT10: {threads: 1, mem_mb: 2000, runtime: 30}
trainer_overrides:
  rollout_steps_per_task: 500
  max_episode_steps: 100
  num_epochs: 1
  num_minibatches: 2
  hidden_sizes: [16, 16]
  eval_every_steps: 5000
  eval_episodes: 1
  eval_envs_per_task: 1
  eval_mode: inline
  progress_every_s: 0
grid:
  - {name: main, benchmarks: [MT10], reward_versions: [v1], variants: [mtppo], seeds: 1}
"""
RECORD = ("config.yaml", "manifest.json", "eval.csv", "train_metrics.csv", "benchmark.tsv",
          "checkpoints/latest.pt")


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
                           "--directory", str(workdir), "--cores", "1", f"{CELL}/eval.csv",
                           "--configfile", str(workdir / "rt.yaml"), *args],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return proc


def record(run: Path) -> dict[str, bytes]:
    return {name: (run / name).read_bytes() for name in RECORD if (run / name).exists()}


@pytest.mark.slow
def test_retrain_through_snakemake_sets_the_whole_record_aside(tmp_path):
    (tmp_path / "rt.yaml").write_text(textwrap.dedent(CONFIG))
    run = tmp_path / CELL
    snakemake(tmp_path)
    assert json.loads((run / "manifest.json").read_text())["status"] == "complete"

    for with_checkpoints in (True, False):
        if not with_checkpoints:  # as in a fresh clone of the committed study
            for ck in (run / "checkpoints").iterdir():
                ck.unlink()
            (run / "checkpoints").rmdir()
        before, log_before = record(run), (run / "train.log").read_bytes()
        assert ("checkpoints/latest.pt" in before) == with_checkpoints and len(before) >= 5
        aside_before = set((run / "superseded").glob("*")) if (run / "superseded").exists() else set()
        snakemake(tmp_path, "--force", "--config", "retrain=true")
        (aside,) = set((run / "superseded").glob("*")) - aside_before
        assert aside.name.endswith("-retrain")
        assert record(aside) == before  # every file of the finished run, byte for byte
        # the train.log as the finished run left it, without this attempt's lines (issue 28)
        assert (aside / "train.log").read_bytes() == log_before
        log = (run / "train.log").read_bytes()
        assert log.startswith(log_before) and b"retrain: moved the finished run" in log
        m = json.loads((run / "manifest.json").read_text())
        assert m["status"] == "complete" and m["machine"]["numerics"] == "portable"  # the config's
        assert (run / "checkpoints" / "latest.pt").exists()
        assert (run / "eval.csv").read_bytes() == before["eval.csv"]  # same machine, same bits
