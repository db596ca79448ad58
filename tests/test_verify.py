"""python -m analysis verify: a recorded cell retrained in a scratch directory, under the
record's own numerics mode whatever the environment says, is reported identical, the record
untouched; a record that differs is reported at its first differing update and column, with
the final success judged against the seeds' spread."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis.verify import VerifyError, compare, first_divergence, record_numerics, retrain_command

REPO = Path(__file__).resolve().parents[1]
TINY = ["--variant", "mtppo", "--benchmark", "MT10", "--reward-version", "v1", "--seed", "0",
        "--device", "cpu", "--total-steps", "10000", "rollout_steps_per_task=500",
        "max_episode_steps=100", "num_epochs=1",
        "num_minibatches=2", "hidden_sizes=16,16", "eval_episodes=1", "eval_envs_per_task=1",
        "eval_every_steps=5000", "torch_threads=1", "progress_every_s=0", "eval_mode=inline"]


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            **extra}


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def record(tmp_path_factory) -> Path:
    """A finished tiny cell (2 updates, evaluated twice, portable numerics) and a second
    seed's eval.csv."""
    root = tmp_path_factory.mktemp("record") / "MT10-v1" / "mtppo"
    subprocess.run([sys.executable, "-m", "toppo.train", "--out-dir", str(root / "seed0"), *TINY,
                    "--numerics", "portable"], check=True, env=env(), capture_output=True, timeout=600)
    (root / "seed1").mkdir()
    ev = pd.read_csv(root / "seed0" / "eval.csv")
    ev["seed"], ev["success_rate"] = 1, 1.0  # a seed far from seed 0: a wide seed range
    ev.to_csv(root / "seed1" / "eval.csv", index=False)
    return root / "seed0"


@pytest.mark.slow
def test_verify_retrains_in_scratch_and_finds_the_record_identical(record, tmp_path):
    before = snapshot(record.parent)
    proc = subprocess.run([sys.executable, "-m", "analysis", "verify", str(record), "--scratch",
                           str(tmp_path / "scratch")], env=env(TOPPO_NUMERICS="native"),
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "eval.csv: identical" in out and "train_metrics.csv: identical" in out
    assert "agrees within seed noise" in out and out.strip().endswith("result: identical")
    assert "under numerics portable, the record's" in out  # not the environment's native
    assert "record:    numerics portable" in out and "retrained: numerics portable" in out
    assert snapshot(record.parent) == before  # the record is untouched
    assert (tmp_path / "scratch" / "eval.csv").is_file()


def perturbed(record: Path, tmp_path: Path, **changes) -> Path:
    copy = tmp_path / "MT10-v1" / "mtppo" / "seed0"
    shutil.copytree(record.parent, copy.parent)
    for name, (row, column, value) in changes.items():
        df = pd.read_csv(copy / name, dtype=str, keep_default_na=False)
        df.loc[row, column] = value
        df.to_csv(copy / name, index=False)
    return copy


@pytest.mark.slow
def test_a_different_record_is_named_at_its_first_divergence(record, tmp_path):
    metrics = pd.read_csv(record / "train_metrics.csv", dtype=str)
    other = perturbed(record, tmp_path, **{
        "train_metrics.csv": (1, "policy_loss", "0.123"),
        "eval.csv": (len(pd.read_csv(record / "eval.csv")) - 1, "success_rate", "1.0")})
    lines = []
    assert compare(other, record, lines.append) is False
    text = "\n".join(lines)
    assert (f"train_metrics.csv: first differs at update 2, column policy_loss (record 0.123, "
            f"retrained {metrics.loc[1, 'policy_loss']})") in text
    assert "eval.csv: first differs at step 10000, task window-close-v3, column success_rate" in text
    assert "agrees within seed noise" in text  # one task of ten moved by 1: 0.1, seeds span more
    assert text.endswith("result: different")
    # timing columns never count
    timing = perturbed(record, tmp_path / "t", **{"train_metrics.csv": (0, "wall_time_s", "99")})
    assert first_divergence(timing / "train_metrics.csv", record / "train_metrics.csv", ["update"]) is None


def fake_record(folder: Path, machine: dict | None) -> Path:
    """A run directory's config.yaml and manifest.json, enough for retrain_command."""
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text("torch_threads: 0\n")
    manifest = {"variant": "toppo", "torch_threads": 1, **({"machine": machine} if machine else {})}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.mark.parametrize(("machine", "mode"), [
    ({"numerics": "portable"}, "portable"), ({"numerics": "native"}, "native"),
    (None, "native")])  # a record of before the mode: native kernels
@pytest.mark.parametrize("environment", ["portable", "native", None])
def test_the_retrain_runs_the_records_mode_whatever_the_environment_says(
        tmp_path, monkeypatch, machine, mode, environment):
    monkeypatch.delenv("TOPPO_NUMERICS", raising=False)
    if environment:
        monkeypatch.setenv("TOPPO_NUMERICS", environment)
    run = fake_record(tmp_path / "run", machine)
    cmd = retrain_command(run, tmp_path / "scratch")
    assert record_numerics(run) == mode
    assert cmd[cmd.index("--numerics") + 1] == mode and cmd.count("--numerics") == 1
    assert cmd[-1] == "torch_threads=1"


def test_a_record_of_an_unknown_mode_is_refused_by_name(tmp_path):
    run = fake_record(tmp_path / "run", {"numerics": "fast"})
    with pytest.raises(VerifyError, match=r"manifest.json: machine.numerics 'fast': not a mode"):
        retrain_command(run, tmp_path / "scratch")


def test_verify_refuses_a_folder_that_is_not_a_finished_run(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "analysis", "verify", str(tmp_path)], env=env(),
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"python -m analysis verify: error: {tmp_path / 'config.yaml'}: "
                                   "missing (not a finished run directory)")
