"""analysis.logs and synthetic (tests/synthetic.py): the design.md run-directory contract, read and checked."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import synthetic

from analysis import logs
from analysis.logs import LogError
from toppo.specs.logschema import TRAIN_METRIC_COLUMNS

REPO = Path(__file__).resolve().parents[1]


def run(root, variant="toppo", seed=0, **kw):
    kw.setdefault("success", np.array([[0.5, 1.0], [0.25, 0.75]]))
    return synthetic.write_run(root / "MT10-v1" / variant / f"seed{seed}", variant=variant, benchmark="MT10",
                               reward_version="v1", seed=seed, steps=[10, 20], **kw)


@pytest.mark.slow  # the quick tier's tests/test_layers.py imports these and every other analysis module
def test_analysis_does_not_import_torch():
    """The column contract and atomic writers are shared with the trainer without torch."""
    code = ("import sys, analysis.logs, analysis.tables, analysis.figures, analysis.protocols; "
            "assert 'torch' not in sys.modules, 'analysis imported torch'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_synthetic_run_directory_follows_the_contract(tmp_path):
    d = run(tmp_path, train_updates=4, param_total=1000)
    assert sorted(p.name for p in d.iterdir()) == ["config.yaml", "eval.csv", "manifest.json", "train_metrics.csv"]
    assert list(pd.read_csv(d / "eval.csv").columns) == logs.EVAL_COLUMNS
    train_cols = list(pd.read_csv(d / "train_metrics.csv").columns)
    assert train_cols == TRAIN_METRIC_COLUMNS + ["critic_gradnorm_t0", "critic_gradnorm_t1"]
    m = json.loads((d / "manifest.json").read_text())
    assert {"status", "config_hash", "git_commit", "packages", "device", "seed", "variant", "benchmark",
            "reward_version", "wall_time_s", "env_steps", "eval_env_steps", "updates", "param_count",
            "started_at", "finished_at"} <= set(m)
    assert m["param_count"]["total"] == 1000 and m["status"] == "complete" and m["env_steps"] == 20


def test_find_run_dirs_accepts_roots_run_dirs_and_files(tmp_path):
    a, b = run(tmp_path, seed=0), run(tmp_path, seed=1)
    assert logs.find_run_dirs([tmp_path]) == [a.resolve(), b.resolve()]
    assert logs.find_run_dirs([a, a / "eval.csv", tmp_path]) == [a.resolve(), b.resolve()]
    with pytest.raises(LogError, match="no such file"):
        logs.find_run_dirs([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(LogError, match="no run directories"):
        logs.load_evals(tmp_path / "empty")


def test_load_evals_concatenates_with_run_dir(tmp_path):
    a, b = run(tmp_path, seed=1), run(tmp_path, seed=0)
    evals = logs.load_evals(tmp_path)
    assert len(evals) == 8 and list(evals.seed) == [0] * 4 + [1] * 4
    assert set(evals.run_dir) == {str(a.resolve()), str(b.resolve())}
    assert evals.success_rate.dtype == float and evals.step.dtype == np.int64


def _rewrite(path, fn):
    df = pd.read_csv(path)
    fn(df)
    df.to_csv(path, index=False)


def test_missing_column_is_named(tmp_path):
    d = run(tmp_path)
    _rewrite(d / "eval.csv", lambda df: df.drop(columns=["episodes"], inplace=True))
    with pytest.raises(LogError, match=r"eval.csv: missing column\(s\) episodes"):
        logs.load_evals(tmp_path)


def test_bad_success_rate_names_file_and_line(tmp_path):
    run(tmp_path, seed=0)
    d = run(tmp_path, seed=1)
    _rewrite(d / "eval.csv", lambda df: df.__setitem__("success_rate", [0.1, 0.2, 1.5, 0.3]))
    with pytest.raises(LogError, match=r"seed1/eval.csv, line 4: success_rate outside \[0, 1\]"):
        logs.load_evals(tmp_path)


def test_non_numeric_and_duplicate_rows_are_refused(tmp_path):
    d = run(tmp_path)
    _rewrite(d / "eval.csv", lambda df: df.__setitem__("step", ["10", "x", "20", "20"]))
    with pytest.raises(LogError, match="line 3: column 'step' is not numeric"):
        logs.load_evals(tmp_path)
    _rewrite(d / "eval.csv", lambda df: df.__setitem__("step", [10, 10, 10, 20]))
    with pytest.raises(LogError, match="line 4: duplicate \\(step, task_index\\)"):
        logs.read_eval_csv(d / "eval.csv")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_success_rate_is_named_not_finite(tmp_path, value):
    d = run(tmp_path)
    text = (d / "eval.csv").read_text().splitlines()
    row = text[2].split(",")
    row[logs.EVAL_COLUMNS.index("success_rate")] = value
    (d / "eval.csv").write_text("\n".join([*text[:2], ",".join(row), *text[3:]]) + "\n")
    with pytest.raises(LogError, match="line 3: column 'success_rate' is not finite"):
        logs.load_evals(tmp_path)
    row[logs.EVAL_COLUMNS.index("success_rate")] = ""
    (d / "eval.csv").write_text("\n".join([*text[:2], ",".join(row), *text[3:]]) + "\n")
    with pytest.raises(LogError, match="line 3: empty value in column 'success_rate'"):
        logs.load_evals(tmp_path)


def test_empty_and_mixed_files_are_refused(tmp_path):
    d = run(tmp_path)
    _rewrite(d / "eval.csv", lambda df: df.__setitem__("seed", [0, 0, 1, 1]))
    with pytest.raises(LogError, match="one run per file.*'seed'"):
        logs.load_evals(tmp_path)
    (d / "eval.csv").write_text(",".join(logs.EVAL_COLUMNS) + "\n")
    with pytest.raises(LogError, match="no evaluation rows"):
        logs.load_evals(tmp_path)


def test_same_run_in_two_directories_names_both(tmp_path):
    a = run(tmp_path / "x")
    b = run(tmp_path / "y")
    with pytest.raises(LogError, match=f"more than one directory: {a.resolve()} and {b.resolve()}"):
        logs.load_evals([tmp_path / "x", tmp_path / "y"])


def test_manifests_and_train_metrics(tmp_path):
    run(tmp_path, seed=0, train_updates=3, param_total=500)
    d = run(tmp_path, seed=1, train_updates=None, status="running")
    man = logs.load_manifests(tmp_path)
    assert list(man["param_count.total"]) == [500, 1_000_000] and list(man.status) == ["complete", "running"]
    train = logs.load_train_metrics(tmp_path)
    assert len(train) == 3 and set(train.seed) == {0} and "critic_gradnorm_t1" in train
    assert (train.variant == "toppo").all() and (train.benchmark == "MT10").all()
    assert logs.load_train_metrics(tmp_path, variants=["mtppo"]).empty
    (d / "manifest.json").unlink()
    with pytest.raises(LogError, match="manifest.json: missing"):
        logs.load_manifests(tmp_path)
    assert len(logs.load_manifests(tmp_path, missing_ok=True)) == 1
    (d / "train_metrics.csv").write_text("update,step\n1,5\n")
    train = logs.load_train_metrics(tmp_path)  # identity from eval.csv when there is no manifest
    assert set(train.seed) == {0, 1}


@pytest.mark.parametrize("unplain", [
    lambda raw: raw.replace(b"\n", b"\r\n"),        # carriage returns
    lambda raw: raw[:-1],                              # no newline after the last row
    lambda raw: b'"' + raw.replace(b",", b'",', 1),   # a quoted header name
    lambda raw: raw.replace(b"\n", b"\n\n", 2),          # blank lines (read_csv skips them)
])
def test_files_read_together_equal_files_read_one_at_a_time(tmp_path, unplain):
    """load_evals and load_train_metrics parse plain files in one read_csv; one file they
    cannot (unplain) sends every file through the reading one at a time, with equal frames."""
    for variant, bench, seed in [("toppo", "MT10", 1), ("mtppo", "MT10", 0), ("toppo", "MT50", 0),
                                 ("mtppo", "MT50", 2)]:  # path order is not run order; two train headers
        synthetic.write_run(tmp_path / f"{bench}-v1" / variant / f"seed{seed}", variant=variant, benchmark=bench,
                            reward_version="v1", seed=seed, n_evals=3, train_updates=4)
    runs = logs.find_run_dirs(tmp_path)
    identities = [(r, logs._run_identity(r)) for r in runs]
    assert logs._read_evals_at_once(runs) is not None and logs._read_train_at_once(identities) is not None
    evals, train = logs.load_evals(tmp_path), logs.load_train_metrics(tmp_path)
    assert list(evals.drop_duplicates("run_dir").variant) == ["mtppo", "mtppo", "toppo", "toppo"]
    assert evals.benchmark.dtype == object and evals.run_dir.dtype == object
    for name in ("eval.csv", "train_metrics.csv"):
        (runs[2] / name).write_bytes(unplain((runs[2] / name).read_bytes()))
    assert logs._read_evals_at_once(runs) is None and logs._read_train_at_once(identities) is None
    pd.testing.assert_frame_equal(logs.load_evals(tmp_path), evals, check_exact=True)
    pd.testing.assert_frame_equal(logs.load_train_metrics(tmp_path), train, check_exact=True)


def test_write_text_atomic_leaves_no_temp_files(tmp_path):
    p = logs.write_text_atomic(tmp_path / "sub" / "a.tex", "x")
    logs.write_text_atomic(p, "y")
    assert p.read_text() == "y" and [q.name for q in p.parent.iterdir()] == ["a.tex"]
