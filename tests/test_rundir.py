"""Run directories that cannot be corrupted (issue 11, docs/design.md "Run-directory
guarantees"): the lock, completion judged from manifest + logs + checkpoint, corrupt
checkpoints set aside, whole-run set-aside on a config change, no orphan trainers when
Snakemake dies, validation of every input (finite numbers, eval.csv vs benchmark and
manifest, manifests, the report: section), clean OSError messages, stale temp files and
group-readable output.

Most tests use a stand-in Trainer (no env is built); the few real runs are marked slow.
"""

import copy
import errno
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import synthetic
import torch
import yaml

import toppo.train as train_mod
from analysis import load_report_spec, logs
from analysis.logs import LogError
from toppo.harness import io as tio
from toppo.harness import rundir
from toppo.harness.procs import alive
from toppo.specs import runfiles
from toppo.specs.config import ConfigError, make_config, parse_value
from toppo.specs.logschema import EVAL_COLUMNS
from toppo.specs.registry import BENCHMARKS

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
                                                                   os.environ.get("PYTHONPATH")]))}
# the trainer CLI's tiny config (tests/test_train_e2e.py): 2 updates of 5,000 steps on MT10
TINY = ["--variant", "toppo", "--benchmark", "MT10", "--reward-version", "v1", "--seed", "3",
        "--device", "cpu", "--total-steps", "10000", "rollout_steps_per_task=500",
        "max_episode_steps=100", "num_epochs=2", "num_minibatches=2", "hidden_sizes=32,32", "eval_episodes=1", "eval_envs_per_task=1",
        "eval_every_steps=5000", "torch_threads=1", "progress_every_s=0"]


# ---------------------------------------------------------------------- a finished run on disk
def fake_state(cfg, update_idx):
    """A checkpoint with the keys and shapes Trainer.state_dict writes (no networks)."""
    steps = cfg.steps_per_update
    evals = [{"step": u * steps, "task_index": k} for u in range(1, update_idx + 1)
             for k in range(cfg.num_tasks)]
    return {"config_hash": cfg.config_hash(), "update_idx": update_idx, "learner": {"w": 1},
            "eval_rows": evals, "metric_rows": [{"update": u} for u in range(1, update_idx + 1)],
            "eval_env_steps": 10, "wall_time": 1.0, "marker": f"update{update_idx}"}


def write_finished_run(out: Path, cfg, variant="toppo") -> Path:
    """The files of a complete run of ``cfg``, consistent with each other."""
    n, steps, k = cfg.num_updates, cfg.steps_per_update, cfg.num_tasks
    names = BENCHMARKS[cfg.benchmark]
    ev = pd.DataFrame([{"benchmark": cfg.benchmark, "reward_version": cfg.reward_version,
                        "variant": variant, "seed": cfg.seed, "step": u * steps, "task_index": i,
                        "task": names[i], "success_rate": 0.5, "mean_return": 1.0, "episodes": 1}
                       for u in range(1, n + 1) for i in range(k)], columns=EVAL_COLUMNS)
    runfiles.write_csv_atomic(out / "eval.csv", ev.to_dict("records"), EVAL_COLUMNS)
    runfiles.write_csv_atomic(out / "train_metrics.csv",
                              [{"update": u, "step": u * steps} for u in range(1, n + 1)])
    runfiles.write_yaml_atomic(out / "config.yaml", cfg.to_dict())
    runfiles.write_json_atomic(out / "manifest.json", {
        "status": "complete", "variant": variant, "benchmark": cfg.benchmark,
        "reward_version": cfg.reward_version, "seed": cfg.seed, "config_hash": cfg.config_hash(),
        "env_steps": n * steps, "total_steps": cfg.total_steps, "updates": n,
        "param_count": {"actor": 1, "critic": 1, "total": 2}})
    latest, previous = rundir.checkpoint_paths(out)
    tio.save_torch_atomic(latest, fake_state(cfg, n - 1))
    tio.save_torch_atomic(latest, fake_state(cfg, n), previous=previous)
    return out


class FakeTrainer:
    """Stands in for toppo.trainer.Trainer: records what main() hands it, builds no env."""
    built: list["FakeTrainer"] = []

    def __init__(self, cfg, out, variant="custom"):
        self.cfg, self.out, self.state = cfg, Path(out), None
        self.ckpt_path, self.prev_path = rundir.checkpoint_paths(self.out)
        self.update_idx, self.device = 0, "cpu"
        # what the directory looked like when the (expensive) env build would start
        self.files_at_build = sorted(str(p.relative_to(self.out)) for p in self.out.rglob("*"))
        self.learner = type("L", (), {"param_counts": staticmethod(
            lambda: {"actor": 1, "critic": 1, "total": 2})})()
        FakeTrainer.built.append(self)

    def load_state_dict(self, state):
        self.state, self.update_idx = state, state["update_idx"]

    def run(self):
        pass

    def close(self):
        pass


@pytest.fixture
def fake_trainer(monkeypatch):
    FakeTrainer.built = []
    monkeypatch.setattr(train_mod, "Trainer", FakeTrainer)
    return FakeTrainer


def cli(out: Path, *extra: str) -> list[str]:
    """TINY with ``extra`` flags appended and ``key=value`` extras replacing TINY's."""
    kv = {e.split("=")[0]: e for e in extra if "=" in e and not e.startswith("-")}
    base = [kv.pop(a.split("=")[0], a) if "=" in a else a for a in TINY]
    flags = [e for e in extra if e.startswith("-")]
    return [*base, *kv.values(), "--out-dir", str(out), *flags]


# ---------------------------------------------------------------------- completion
def test_complete_run_is_a_no_op(tmp_path, fake_trainer, capsys):
    out = write_finished_run(tmp_path / "run", TINY_CFG())
    assert train_mod.main(cli(out)) == 0
    assert "nothing to do" in capsys.readouterr().out and fake_trainer.built == []


@pytest.mark.parametrize("damage, reason", [
    (lambda out: pd.read_csv(out / "eval.csv").iloc[:10].to_csv(out / "eval.csv", index=False),
     "last evaluation at step 5000"),
    (lambda out: pd.read_csv(out / "train_metrics.csv").iloc[:1].to_csv(
        out / "train_metrics.csv", index=False), "train_metrics.csv: 1 rows, expected 2"),
    (lambda out: tio.save_torch_atomic(rundir.checkpoint_paths(out)[0],
                                       fake_state(TINY_CFG(), 1)), "update 1 of config"),
    (lambda out: rundir.checkpoint_paths(out)[0].unlink(), "latest.pt is missing"),
])
def test_manifest_alone_does_not_make_a_run_complete(tmp_path, fake_trainer, capsys, damage,
                                                     reason):
    """The issue's lagging second trainer: manifest 'complete', logs or checkpoint behind."""
    out = write_finished_run(tmp_path / "run", TINY_CFG())
    damage(out)
    assert not rundir.completion(out, TINY_CFG()).complete
    assert train_mod.main(cli(out)) == 0
    text = capsys.readouterr().out
    assert "nothing to do" not in text and "is not complete" in text and reason in text
    assert len(fake_trainer.built) == 1  # it trains (resumes) instead of skipping


def TINY_CFG():
    """The TrainConfig the CLI builds from TINY."""
    return train_mod.config_from_args(train_mod.build_parser().parse_args(TINY))


# ---------------------------------------------------------------------- corrupt checkpoints
@pytest.mark.parametrize("corrupt", ["truncated", "zero-filled", "not-a-checkpoint"])
def test_corrupt_checkpoint_is_named_set_aside_and_previous_used(tmp_path, fake_trainer,
                                                                 capsys, corrupt):
    out = write_finished_run(tmp_path / "run", TINY_CFG())
    latest, previous = rundir.checkpoint_paths(out)
    (out / "manifest.json").write_text(
        (out / "manifest.json").read_text().replace('"complete"', '"running"'))
    data = latest.read_bytes()
    latest.write_bytes({"truncated": data[: len(data) // 2], "zero-filled": bytes(len(data)),
                        "not-a-checkpoint": _torch_bytes([1, 2, 3])}[corrupt])
    assert train_mod.main(cli(out)) == 0
    text = capsys.readouterr().out
    assert f"error: {latest}" in text and "set aside as" in text
    assert f"resuming from the previous checkpoint {previous}" in text
    (trainer,) = fake_trainer.built
    assert trainer.state["marker"] == "update1"
    # detected before the env build: the corrupt file was already set aside then
    assert "checkpoints/latest.pt" not in trainer.files_at_build
    assert len(list(latest.parent.glob("latest.corrupt-*.pt"))) == 1


def _torch_bytes(obj) -> bytes:
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def test_checkpoint_that_does_not_fit_the_networks_is_set_aside(tmp_path, fake_trainer,
                                                              monkeypatch, capsys):
    def load(self, state):
        if state["marker"] == "update2":
            raise RuntimeError("Error(s) in loading state_dict for Actor: size mismatch\nmore")
        self.state = state

    monkeypatch.setattr(FakeTrainer, "load_state_dict", load)
    out = write_finished_run(tmp_path / "run", TINY_CFG())
    (out / "eval.csv").unlink()  # not complete: it must resume
    latest, previous = rundir.checkpoint_paths(out)
    assert train_mod.main(cli(out)) == 0
    text = capsys.readouterr().out
    assert f"error: {latest}: does not fit this trainer (RuntimeError: Error(s) in loading " \
           "state_dict for Actor: size mismatch); set aside as" in text
    assert f"resumed from {previous}" in text
    first, second = fake_trainer.built  # a fresh trainer for the next candidate
    assert first.state is None and second.state["marker"] == "update1"


def test_no_usable_checkpoint_restarts_from_scratch_setting_the_logs_aside(tmp_path, fake_trainer,
                                                                          capsys):
    out = write_finished_run(tmp_path / "run", TINY_CFG())
    latest, previous = rundir.checkpoint_paths(out)
    latest.write_bytes(b"\0" * 100)
    previous.write_bytes(b"PK\x03\x04 truncated")
    assert train_mod.main(cli(out)) == 0
    text = capsys.readouterr().out
    assert f"error: {latest}" in text and f"error: {previous}" in text
    assert "starting from scratch" in text
    (trainer,) = fake_trainer.built
    assert trainer.state is None
    assert not (out / "eval.csv").exists() and not (out / "train_metrics.csv").exists()
    (aside,) = (out / rundir.SUPERSEDED).iterdir()
    assert (aside / "eval.csv").exists() and (aside / "checkpoints").is_dir()
    assert sorted(p.name for p in (aside / "checkpoints").iterdir())[0].startswith("latest.corrupt")


# ---------------------------------------------------------------------- config change
def test_config_change_sets_the_whole_previous_run_aside(tmp_path, fake_trainer, capsys):
    old = TINY_CFG()
    out = write_finished_run(tmp_path / "run", old)
    (out / "tensorboard").mkdir()  # its live curves (toppo.harness.livelog) go with it
    (out / "tensorboard" / "events.out.tfevents.0.host").write_bytes(b"")
    assert train_mod.main(cli(out, "eval_episodes=2")) == 0
    text = capsys.readouterr().out
    assert f"held a run of config {old.config_hash()}" in text
    (aside,) = (out / rundir.SUPERSEDED).iterdir()
    assert old.config_hash() in aside.name
    assert sorted(p.name for p in aside.iterdir()) == sorted(rundir.RUN_FILES)
    # nothing of the old run is left beside the new config
    assert sorted(p.name for p in out.iterdir()) == [".lock", "config.yaml", rundir.SUPERSEDED]
    assert yaml.safe_load((out / "config.yaml").read_text())["eval_episodes"] == 2
    assert fake_trainer.built[0].state is None
    # analysis does not find the set-aside run below a root
    assert logs.find_run_dirs([tmp_path]) == []


def test_retrain_sets_a_finished_run_aside(tmp_path, fake_trainer, capsys):
    out = write_finished_run(tmp_path / "run", TINY_CFG())
    assert train_mod.main(cli(out, "--retrain")) == 0
    assert "retrain: moved the finished run" in capsys.readouterr().out
    assert fake_trainer.built[0].state is None and not rundir.checkpoint_paths(out)[1].exists()
    # Snakemake --force deletes the job's outputs first: the finished checkpoint decides
    out = write_finished_run(tmp_path / "forced", TINY_CFG())
    for name in ("eval.csv", "manifest.json", "train_metrics.csv", "config.yaml"):
        (out / name).unlink()
    assert train_mod.main(cli(out, "--retrain")) == 0
    assert "retrain: moved the finished run" in capsys.readouterr().out
    assert fake_trainer.built[1].state is None
    # an unfinished run is resumed, retrain or not
    out = write_finished_run(tmp_path / "unfinished", TINY_CFG())
    tio.save_torch_atomic(rundir.checkpoint_paths(out)[0], fake_state(TINY_CFG(), 1))
    assert train_mod.main(cli(out, "--retrain")) == 0
    assert fake_trainer.built[2].state["update_idx"] == 1
    # a finished record kept without its checkpoints (the committed study) is set aside whole
    out = write_finished_run(tmp_path / "committed", TINY_CFG())
    shutil.rmtree(out / "checkpoints")
    record = {n: (out / n).read_bytes() for n in rundir.RUN_FILES if (out / n).is_file()}
    assert train_mod.main(cli(out, "--retrain")) == 0
    assert "retrain: moved the finished run" in capsys.readouterr().out
    (aside,) = (out / "superseded").iterdir()
    assert aside.name.endswith("-retrain") and fake_trainer.built[3].state is None
    assert {n: (aside / n).read_bytes() for n in record} == record


def test_a_retrain_sets_train_log_aside_as_the_finished_run_left_it(tmp_path, fake_trainer,
                                                                    monkeypatch):
    """The job script appends this attempt's `[workflow ...]` lines to train.log before the
    trainer sets the run aside (issue 28: they ended up in the set-aside copy); it tells the
    trainer the file's size before them, and the copy is exactly those bytes."""
    out = write_finished_run(tmp_path / "run", TINY_CFG())
    before = (b"[workflow 2026-12-05T01:00:00Z] train run on vm, config abc\n[toppo 01:00:01] done\n"
              b"[workflow 2026-12-05T01:03:00Z] exit status 0\n")
    attempt = (b"[workflow 2026-12-06T01:00:00Z] train run on vm, config abc\n"
               b"[workflow 2026-12-06T01:00:00Z] $ python -m toppo.train ... --retrain\n")
    (out / "train.log").write_bytes(before + attempt)
    (out / "benchmark.tsv").write_text("s\th:m:s\n180.0\t0:03:00\n")
    monkeypatch.setenv(rundir.JOB_LOG_BYTES_ENV, str(len(before)))
    assert train_mod.main(cli(out, "--retrain")) == 0
    (aside,) = (out / "superseded").iterdir()
    assert (aside / "train.log").read_bytes() == before  # byte for byte, none of this attempt
    assert (out / "train.log").read_bytes() == before + attempt  # the cell's log keeps every attempt
    assert (aside / "benchmark.tsv").exists() and not (out / "benchmark.tsv").exists()
    # a trainer started by hand (no job script), or a size the file never had: the whole file
    for value in (None, str(len(before + attempt) + 1), "x"):
        out = write_finished_run(tmp_path / f"by_hand_{value}", TINY_CFG())
        (out / "train.log").write_bytes(before + attempt)
        if value is None:
            monkeypatch.delenv(rundir.JOB_LOG_BYTES_ENV)
        else:
            monkeypatch.setenv(rundir.JOB_LOG_BYTES_ENV, value)
        assert train_mod.main(cli(out, "--retrain")) == 0
        (aside,) = (out / "superseded").iterdir()
        assert (aside / "train.log").read_bytes() == before + attempt
        assert (aside / "train.log").stat().st_mtime == (out / "train.log").stat().st_mtime


# ---------------------------------------------------------------------- the lock
HOLD = textwrap.dedent("""\
    import multiprocessing, os, sys, time
    from toppo.harness.io import RunLock

    def child():  # runs after the fork hooks, so its line says the child dropped the lock
        print(os.getpid(), flush=True)
        time.sleep(120)

    lock = RunLock(sys.argv[1]).acquire()
    multiprocessing.get_context("fork").Process(target=child).start()
    time.sleep(120)
    """)


def test_lock_refuses_a_second_holder_and_dies_with_its_process(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE,
                              text=True, env=ENV)
    try:
        child_pid = int(holder.stdout.readline())
        with pytest.raises(tio.RunLocked) as exc:
            tio.RunLock(run).acquire()
        msg = str(exc.value)
        assert str(run) in msg and f"pid {holder.pid}" in msg
        assert f"host {socket.gethostname()}" in msg
        holder.send_signal(signal.SIGKILL)  # its forked child lives on, without the lock
        holder.wait()
        os.kill(child_pid, 0)
        with tio.RunLock(run) as lock:
            assert f"pid {os.getpid()}" in lock.path.read_text()
    finally:
        holder.kill()
        try:
            os.kill(child_pid, signal.SIGKILL)
        except (ProcessLookupError, UnboundLocalError):
            pass


def test_second_trainer_on_a_locked_directory_exits_at_once(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    with tio.RunLock(run):
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "toppo.train", *cli(run)],
                              capture_output=True, text=True, timeout=120, env=ENV)
        elapsed = time.monotonic() - t0
    assert proc.returncode == train_mod.EXIT_LOCKED, proc.stderr
    assert f"{run} is in use by another trainer (pid {os.getpid()} on host " \
           f"{socket.gethostname()}" in proc.stderr
    assert "Traceback" not in proc.stderr and "built envs" not in proc.stdout
    assert elapsed < 60  # torch import only; no env is built
    assert not (run / "config.yaml").exists()


def test_two_trainers_on_one_directory(tmp_path):
    """The issue's case: a second trainer started on a directory a live one is training in."""
    run = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "toppo.train", *cli(run)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and first.poll() is None:
            if (run / ".lock").exists() and (run / ".lock").read_text().startswith("pid "):
                break
            time.sleep(0.1)
        assert first.poll() is None
        first.send_signal(signal.SIGSTOP)  # live and holding the lock, not computing beside the second
        second = subprocess.run([sys.executable, "-m", "toppo.train", *cli(run)],
                                capture_output=True, text=True, timeout=120, env=ENV)
        assert second.returncode == train_mod.EXIT_LOCKED
        assert f"{run} is in use by another trainer (pid {first.pid} on host " \
               f"{socket.gethostname()}" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        first.kill()
        first.wait()
    with tio.RunLock(run):  # the killed trainer's lock is gone with it
        pass


# ---------------------------------------------------------------------- io
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_files_respect_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        p = runfiles.write_text_atomic(tmp_path / "a.csv", "x")
        tio.save_torch_atomic(tmp_path / "c.pt", {"a": 1})
    finally:
        os.umask(old)
    assert p.stat().st_mode & 0o777 == mode
    assert (tmp_path / "c.pt").stat().st_mode & 0o777 == mode


def test_disk_full_names_the_file_and_leaves_no_temp_file(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tio.os, "fsync", full)
    with pytest.raises(OSError) as exc:
        runfiles.write_text_atomic(tmp_path / "eval.csv", "x")
    assert str(tmp_path / "eval.csv") in str(exc.value) and "No space left" in str(exc.value)
    assert list(tmp_path.iterdir()) == []


def test_stale_temp_files_are_removed_on_start(tmp_path, fake_trainer, capsys):
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    stale = [out / ".eval.csv.k2j3.tmp", out / "checkpoints" / ".latest.pt.abc.tmp"]
    for p in stale:
        p.write_text("partial")
    (out / "keep.tmp").write_text("not ours")
    assert train_mod.main(cli(out)) == 0
    text = capsys.readouterr().out
    assert all(not p.exists() and f"removed {p}" in text for p in stale)
    assert (out / "keep.tmp").exists()


def test_filesystem_errors_are_one_clean_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert train_mod.main(cli(blocker / "run")) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(blocker) in err and err.startswith("python -m toppo.train")


def test_disk_full_during_training_is_one_clean_line(tmp_path, fake_trainer, monkeypatch, capsys):
    def full(self):
        raise OSError(errno.ENOSPC, "No space left on device", str(self.out / "eval.csv"))

    monkeypatch.setattr(FakeTrainer, "run", full)
    assert train_mod.main(cli(tmp_path / "run")) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and str(tmp_path / "run" / "eval.csv") in err


# ---------------------------------------------------------------------- finite numbers
@pytest.mark.parametrize("key", ["learning_rate", "max_grad_norm", "gamma", "progress_every_s"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_config_values_are_refused(key, value):
    with pytest.raises(ConfigError, match=f"'{key}': must be a finite number"):
        make_config(**{key: value})
    with pytest.raises(ConfigError, match=f"'{key}'"):
        parse_value(key, str(value))


def test_non_finite_cli_values_are_refused(tmp_path, capsys):
    for argv, key in [(["--total-steps", "nan"], "total_steps"),
                      (["--total-steps", "inf"], "total_steps"),
                      (["learning_rate=nan"], "learning_rate"),
                      (["max_grad_norm=inf"], "max_grad_norm")]:
        with pytest.raises(SystemExit) as exc:
            train_mod.main(["--out-dir", str(tmp_path / "r"), *argv])
        assert exc.value.code == 2 and key in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------------- eval.csv and manifests
def synth(root, **kw):
    kw.setdefault("success", np.full((2, 3), 0.5))
    return synthetic.write_run(root / "MT10-v1" / "toppo" / "seed0", variant="toppo",
                               benchmark="MT10", reward_version="v1", seed=0, steps=[10, 20],
                               train_updates=2, **kw)


def edit_csv(path, fn):
    df = pd.read_csv(path)
    fn(df)
    df.to_csv(path, index=False)


def edit_manifest(run, **changes):
    m = json.loads((run / "manifest.json").read_text())
    m.update(changes)
    (run / "manifest.json").write_text(json.dumps(m))


def test_benchmark_task_lists_are_metaworlds():
    import metaworld.env_dict as d

    assert BENCHMARKS == {"MT10": tuple(d.MT10_V3), "MT50": tuple(d.MT50_V3)}


@pytest.mark.parametrize("change, message", [
    (lambda df: df.__setitem__("task", ["reach-v3", "push-v3", "pick-place-v3"] * 1
                               + ["reach-v3", "push-v3", "jump-v3"]),
     r"line 7: task 'jump-v3' is not task 2 of MT10 \('pick-place-v3'\)"),
    (lambda df: df.__setitem__("task_index", [0, 1, 2, 0, 1, 10]),
     r"line 7: task_index outside the benchmark's tasks"),
    (lambda df: df.__setitem__("benchmark", "MT20"), r"line 2: unknown benchmark"),
    (lambda df: df.__setitem__("benchmark", "MT50"),
     r"benchmark 'MT50' in eval.csv, 'MT10' in the manifest"),
])
def test_eval_rows_are_checked_against_benchmark_and_manifest(tmp_path, change, message):
    run = synth(tmp_path)
    edit_csv(run / "eval.csv", change)
    if "MT50" in message:  # MT50's task 0..2 names, so only the manifest disagrees
        edit_csv(run / "eval.csv", lambda df: df.__setitem__(
            "task", list(BENCHMARKS["MT50"][:3]) * 2))
    with pytest.raises(LogError, match=message):
        logs.load_evals(tmp_path)
    with pytest.raises(LogError, match=message):
        logs.read_eval_csv(run / "eval.csv")


def test_complete_manifest_must_match_the_last_evaluation(tmp_path):
    run = synth(tmp_path)
    edit_manifest(run, env_steps=40)
    with pytest.raises(LogError, match="complete at env_steps 40 but its last evaluation is at "
                                       "step 20"):
        logs.load_evals(tmp_path)
    edit_manifest(run, env_steps=15, status="running")
    with pytest.raises(LogError, match="step 20, past the manifest's env_steps 15"):
        logs.load_evals(tmp_path)
    edit_manifest(run, env_steps=20, status="complete", updates=4)
    with pytest.raises(LogError, match="2 update rows, the complete run has 4 updates"):
        logs.load_train_metrics(tmp_path)


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    (None, "missing key 'param_count'"),
    ('{"status": "done"}', "key 'status' must be 'running' or 'complete'"),
])
def test_invalid_manifest_is_an_error_even_with_missing_ok(tmp_path, text, message):
    run = synth(tmp_path)
    if text is None:
        m = json.loads((run / "manifest.json").read_text())
        del m["param_count"]
        text = json.dumps(m)
    elif text.startswith('{"status"'):
        m = json.loads((run / "manifest.json").read_text())
        m["status"] = "done"
        text = json.dumps(m)
    (run / "manifest.json").write_text(text)
    for load in (lambda: logs.load_manifests(tmp_path, missing_ok=True),
                 lambda: logs.load_evals(tmp_path), lambda: logs.load_train_metrics(tmp_path)):
        with pytest.raises(LogError, match=f"manifest.json: {message}"):
            load()
    (run / "manifest.json").unlink()  # missing (not invalid) is still skippable
    assert logs.load_manifests(tmp_path, missing_ok=True).empty


# ---------------------------------------------------------------------- the report: section
def test_report_typo_and_unknown_names_are_refused_by_python_m_analysis(tmp_path, capsys):
    from analysis.__main__ import main as analysis_main

    base = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for change, message in [
        (lambda r: r["table3"].__setitem__("protocl", "final/iqm/std"),
         "report.table3.protocl: unknown key (known keys: "),
        (lambda r: r["table3"].__setitem__("protocol", "final/iqm/sd"),
         r"report.table3.protocol: 'final/iqm/sd' does not match"),
        (lambda r: r["table3"]["blocks"][0]["ours"].append("topo"), "unknown variant 'topo'"),
        (lambda r: r["table3"]["blocks"][1]["baselines"].append("MTMHSCA"),
         "'MTMHSCA' is not a method of the baselines file"),
        (lambda r: r["ablations"].__setitem__("cumulative", ["mtppo", "topo"]),
         "report.ablations.cumulative: unknown variant 'topo'"),
        (lambda r: r["ablations"].__setitem__("single", "singel"),
         "report.ablations.single: unknown variant group 'singel'"),
        (lambda r: r["ablations"].__setitem__("benchmark", "MT20"),
         "report.ablations.benchmark: unknown 'MT20'"),
        (lambda r: r["table3"]["blocks"][0].__setitem__("reward_version", "v3"),
         "reward_version: unknown 'v3' (toppo.specs.registry: v1, v2)"),
    ]:
        cfg = copy.deepcopy(base)
        change(cfg["report"])
        path = tmp_path / "cfg.yaml"
        path.write_text(yaml.safe_dump(cfg))
        rc = analysis_main(["tables", "--runs", str(tmp_path), "--config", str(path),
                            "--scale", "s", "--out-dir", str(tmp_path / "out")])
        err = capsys.readouterr().err
        assert rc == 1 and str(path) in err and message in err, err
        if "MTMHSCA" not in message:
            with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
                load_report_spec(path)
    assert not (tmp_path / "out").exists()


def test_snakemake_refuses_the_same_report_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    for text, message in [("report: {table3: {protocl: final/iqm/std}}\n", "protocl"),
                          ("report:\n  table3:\n    blocks:\n      - {benchmark: MT10, "
                           "ours: [topo]}\n", "unknown variant 'topo'")]:
        bad.write_text(text)
        proc = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile",
                               str(REPO / "Snakefile"), "--directory", str(tmp_path),
                               "--dry-run", "--configfile", str(bad)],
                              capture_output=True, text=True, timeout=300, env=ENV)
        assert proc.returncode != 0 and message in proc.stdout + proc.stderr


# ---------------------------------------------------------------------- workflow scripts
def test_aggregate_validates_and_writes_atomically(tmp_path):
    sys.path.insert(0, str(REPO / "workflow" / "scripts"))
    try:
        import aggregate
    finally:
        sys.path.pop(0)
    run = synth(tmp_path / "runs")
    out = tmp_path / "agg" / "MT10-v1.csv"
    old = os.umask(0o002)
    try:
        assert aggregate.main(["--scale", "s", "--out", str(out), str(run)]) == 0
    finally:
        os.umask(old)
    assert len(pd.read_csv(out)) == 6 and out.stat().st_mode & 0o777 == 0o664
    assert [p.name for p in out.parent.iterdir()] == ["MT10-v1.csv"]
    edit_csv(run / "eval.csv", lambda df: df.__setitem__("task", "jump-v3"))
    assert aggregate.main(["--scale", "s", "--out", str(out), str(run)]) == 1


# ---------------------------------------------------------------------- killing Snakemake
TINY_WORKFLOW = """\
    scale: kill
    device: cpu
    budgets: {MT10: 1000000}
    resources:
      MT10: {threads: 1, mem_mb: 2000, runtime: 30}
    trainer_overrides:
      rollout_steps_per_task: 500
      num_epochs: 1
      num_minibatches: 2
      hidden_sizes: [32, 32]
      eval_episodes: 1
      eval_envs_per_task: 1
    grid:
      - {name: main, benchmarks: [MT10], reward_versions: [v1], variants: [mtppo], seeds: 1}
    """



@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killing_snakemake_stops_its_trainer(tmp_path, sig):
    cfg = tmp_path / "kill.yaml"
    cfg.write_text(textwrap.dedent(TINY_WORKFLOW))
    run = tmp_path / "results" / "runs" / "kill" / "MT10-v1" / "mtppo" / "seed0"
    smk = subprocess.Popen([sys.executable, "-m", "snakemake", "--snakefile",
                            str(REPO / "Snakefile"), "--directory", str(tmp_path), "--cores", "1",
                            f"{run.relative_to(tmp_path)}/eval.csv", "--configfile", str(cfg)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    trainer = None
    try:
        deadline = time.time() + 240
        while time.time() < deadline and smk.poll() is None:  # the trainer writes its pid
            text = (run / ".lock").read_text() if (run / ".lock").exists() else ""
            if text.startswith("pid "):
                trainer = int(text.split()[1])
                break
            time.sleep(0.2)
        assert trainer is not None and alive(trainer), "the trainer never started"
        smk.send_signal(sig)
        smk.wait(timeout=120)
        deadline = time.time() + 60
        while alive(trainer) and time.time() < deadline:
            time.sleep(0.2)
        assert not alive(trainer), f"trainer {trainer} outlived Snakemake ({sig.name})"
        with tio.RunLock(run):  # a retry gets the directory at once
            pass
    finally:
        if smk.poll() is None:
            smk.kill()
        if trainer is not None and alive(trainer):
            os.kill(trainer, signal.SIGKILL)


# ---------------------------------------------------------------------- real runs
def trainer(out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "toppo.train", *cli(out, *extra)],
                          capture_output=True, text=True, timeout=600, env=ENV)


@pytest.mark.slow
def test_real_run_lagging_logs_and_corrupt_checkpoint(tmp_path):
    out = tmp_path / "run"
    first = trainer(out)
    assert first.returncode == 0, first.stderr[-3000:]
    reference = (out / "eval.csv").read_bytes()
    latest, previous = rundir.checkpoint_paths(out)
    assert previous.exists()  # the checkpoint before the last save, kept as the fallback

    # a lagging writer's state: manifest complete, eval.csv at the first of two evaluations
    pd.read_csv(out / "eval.csv").iloc[:10].to_csv(out / "eval.csv", index=False)
    again = trainer(out)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "nothing to do" not in again.stdout and "is not complete" in again.stdout
    assert (out / "eval.csv").read_bytes() == reference
    assert json.loads((out / "manifest.json").read_text())["status"] == "complete"

    # a zero-filled latest.pt: named, set aside before the env build, resumed from previous.pt
    latest.write_bytes(bytes(latest.stat().st_size))
    (out / "manifest.json").write_text("{broken")
    fixed = trainer(out)
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    text = fixed.stdout
    assert f"error: {latest}: unreadable checkpoint" in text
    assert text.index("set aside as") < text.index("built envs")
    assert "resuming from the previous checkpoint" in text and f"resumed from {previous}" in text
    assert (out / "eval.csv").read_bytes() == reference
    assert trainer(out).stdout.count("nothing to do") == 1


def test_write_config_writes_atomically(tmp_path):
    from types import SimpleNamespace

    sys.path.insert(0, str(REPO / "workflow" / "scripts"))
    try:
        import write_config
    finally:
        sys.path.pop(0)
    out, log = tmp_path / "results" / "s" / "config.yaml", tmp_path / "log"
    smk = SimpleNamespace(scriptdir=str(REPO / "workflow" / "scripts"), output=[str(out)],
                          log=[str(log)], params=SimpleNamespace(config={"scale": "s"}))
    old = os.umask(0o002)
    try:
        assert write_config.main(smk) == 0
    finally:
        os.umask(old)
    assert yaml.safe_load(out.read_text()) == {"scale": "s"}
    assert out.stat().st_mode & 0o777 == 0o664 and [p.name for p in out.parent.iterdir()] == [
        "config.yaml"]


def test_a_final_checkpoint_with_an_evaluation_pending_is_not_finished(tmp_path):
    """The final update is checkpointed before its evaluation is committed: until the
    evaluation is in, ``--retrain`` must resume that run, not set it aside as finished."""
    cfg = TINY_CFG()
    latest, _ = rundir.checkpoint_paths(tmp_path)
    state = fake_state(cfg, cfg.num_updates)
    tio.save_torch_atomic(latest, state)
    assert rundir.finished_checkpoint(tmp_path, cfg)
    tio.save_torch_atomic(latest, {**state, "eval_pending": [(cfg.num_updates * cfg.steps_per_update,
                                                         {"w": torch.zeros(1)})]})
    assert not rundir.finished_checkpoint(tmp_path, cfg)


def test_git_commit_is_dirty_for_code_changes_not_for_the_record(tmp_path):
    """A cell trained while other cells write results/ runs committed code: no '+dirty'."""
    from toppo.harness.io import git_commit

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "toppo").mkdir()
    (tmp_path / "results").mkdir()
    (tmp_path / "toppo" / "a.py").write_text("x = 1\n")
    (tmp_path / "results" / "eval.csv").write_text("step\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True,
                          text=True, check=True).stdout.strip()
    assert git_commit(tmp_path / "toppo") == head
    (tmp_path / "results" / "eval.csv").write_text("step\n1\n")  # another cell's log
    assert git_commit(tmp_path / "toppo") == head
    (tmp_path / "toppo" / "a.py").write_text("x = 2\n")  # the code
    assert git_commit(tmp_path / "toppo") == head + "+dirty"
