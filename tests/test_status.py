"""``python -m analysis status``: run directories in every state, written with the trainer's
own writers (toppo.specs.runfiles, toppo.specs.logschema columns, the RunLock), read back as the grid's
status; and its speed on the paper grid."""

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from dag_configs import tiny_dag_config

from analysis.plan import plan_text
from analysis.status import STALE_AFTER_S, grid_status, render_text
from toppo.specs.grid import Cell, Grid, load_config
from toppo.specs.logschema import EVAL_COLUMNS, TRAIN_METRIC_COLUMNS
from toppo.specs.registry import BENCHMARKS
from toppo.specs.runfiles import LOCK_NAME, write_csv_atomic, write_json_atomic, write_text_atomic

REPO = Path(__file__).resolve().parents[1]
# 20,000 steps per cell in 2 updates of 10,000 (1,000 per task), evaluated at 10K and 20K.
CONFIG = tiny_dag_config("st", rollout_steps_per_task=1000, num_minibatches=4, mem_mb=2000,
                         runtime=30).replace("seeds: 1}", "seeds: 5}")


def fake_run(run: Path, cell: Cell, grid: Grid, updates: int, status: str = "running",
             config_hash: str | None = None, sps: float = 500.0, success: float = 0.25) -> None:
    """A run directory as the trainer leaves it after ``updates`` updates."""
    cfg = grid.train_config(cell)
    per_update = cfg.steps_per_update
    rows = [{**dict.fromkeys(TRAIN_METRIC_COLUMNS, 0.0), "update": u, "step": u * per_update,
             "wall_time_s": u * per_update / sps, "env_sps": sps} for u in range(1, updates + 1)]
    write_csv_atomic(run / "train_metrics.csv", rows, TRAIN_METRIC_COLUMNS)
    tasks = BENCHMARKS[cell.benchmark]
    evals = [{"benchmark": cell.benchmark, "reward_version": cell.reward, "variant": cell.variant,
              "seed": cell.seed, "step": step, "task_index": k, "task": t,
              "success_rate": success if k % 2 else 0.0, "mean_return": 1.0, "episodes": 1}
             for step in range(cfg.eval_every_steps, updates * per_update + 1, cfg.eval_every_steps)
             for k, t in enumerate(tasks)]
    write_csv_atomic(run / "eval.csv", evals, EVAL_COLUMNS)
    write_json_atomic(run / "manifest.json", {
        "status": status, "variant": cell.variant, "benchmark": cell.benchmark,
        "reward_version": cell.reward, "seed": cell.seed,
        "config_hash": config_hash or cfg.config_hash(), "env_steps": updates * per_update,
        "total_steps": cfg.total_steps, "updates": updates, "param_count": {"total": 1},
        "wall_time_s": updates * per_update / sps})


def job_log(run: Path, *lines: str) -> None:
    write_text_atomic(run / "train.log", "".join(f"{line}\n" for line in (
        "[workflow 2026-12-05T01:00:00Z] train ... on vm, config abc", "$ python -m toppo.train ...",
        *lines)))


@pytest.fixture
def grid(tmp_path):
    path = tmp_path / "st.yaml"
    path.write_text(textwrap.dedent(CONFIG))
    return Grid(load_config([path]))


def test_every_state(tmp_path, grid):
    root = tmp_path / "work"
    mt, tp = "mtppo", "toppo"
    cell = {name: Cell("MT10", "v1", v, s) for name, (v, s) in {
        "complete": (mt, 0), "running_here": (mt, 1), "running_elsewhere": (mt, 2),
        "stale_elsewhere": (mt, 3), "failed": (mt, 4), "stopped": (tp, 0), "killed": (tp, 1),
        "superseded": (tp, 2), "pending": (tp, 3), "never_started": (tp, 4)}.items()}
    run = {name: root / grid.run_dir(c) for name, c in cell.items()}

    fake_run(run["complete"], cell["complete"], grid, 2, "complete", sps=400.0, success=0.5)
    job_log(run["complete"], "[toppo 01:02:03] done", "[workflow 2026-12-05T01:03:00Z] exit status 0")
    # a live trainer on this host: a process whose command line runs toppo.train holds the lock
    fake_run(run["running_here"], cell["running_here"], grid, 1, sps=250.0)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from toppo.harness.io import RunLock; "
         "RunLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(120)",
         str(run["running_here"]), "toppo.train"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert holder.stdout.readline().strip() == "locked"
        # another host's trainer: trusted while the run files are fresh, not once they are old
        for name in ("running_elsewhere", "stale_elsewhere"):
            fake_run(run[name], cell[name], grid, 1)
            write_text_atomic(run[name] / LOCK_NAME, "pid 4242 on host node042, since 2026-12-05T00:00:00Z\n")
        old = time.time() - STALE_AFTER_S - 60
        for p in run["stale_elsewhere"].iterdir():
            os.utime(p, (old, old))
        fake_run(run["failed"], cell["failed"], grid, 1)
        job_log(run["failed"], "[toppo 01:02:03] update 1/2", "[toppo 01:02:04] error: training diverged "
                "at update 2: non-finite critic loss", "[workflow 2026-12-05T01:03:00Z] exit status 3")
        fake_run(run["stopped"], cell["stopped"], grid, 1)
        job_log(run["stopped"], "[workflow 2026-12-05T01:03:00Z] exit status -15 (trainer stopped: got SIGTERM)")
        # killed with its job (SIGKILL, node lost): no exit line, a lock left by a dead process
        fake_run(run["killed"], cell["killed"], grid, 1)
        job_log(run["killed"], "[toppo 01:02:03] update 1/2")
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
        write_text_atomic(run["killed"] / LOCK_NAME, f"pid {dead.stdout.strip()} on host "
                          f"{socket.gethostname()}, since 2026-12-05T00:00:00Z\n")
        fake_run(run["superseded"], cell["superseded"], grid, 2, "complete", config_hash="0123456789ab")
        (run["superseded"] / "superseded" / "20261204T000000Z-fedcba987654").mkdir(parents=True)
        run["pending"].mkdir(parents=True)  # Snakemake made the folder; nothing written yet

        status = grid_status(grid, root)
    finally:
        holder.kill()
        holder.wait()

    by = {s.cell: s for s in status.cells}
    got = {name: by[str(c)] for name, c in cell.items()}
    assert {n: s.state for n, s in got.items()} == {
        "complete": "complete", "running_here": "running", "running_elsewhere": "running",
        "stale_elsewhere": "interrupted", "failed": "failed", "stopped": "interrupted",
        "killed": "interrupted", "superseded": "superseded", "pending": "pending",
        "never_started": "pending"}
    assert got["running_here"].detail == f"pid {holder.pid} on {socket.gethostname()}"
    assert got["running_elsewhere"].detail == "pid 4242 on node042"
    assert got["failed"].detail == ("exit status 3: [toppo 01:02:04] error: training diverged at "
                                    "update 2: non-finite critic loss")
    assert got["stopped"].detail == "stopped (trainer stopped: got SIGTERM)"
    assert got["superseded"].detail.startswith("holds config 0123456789ab, the grid's is ")
    assert got["superseded"].set_aside == 1

    done = got["complete"]
    assert (done.steps, done.total_steps, done.eval_step) == (20_000, 20_000, 20_000)
    assert done.success == pytest.approx(0.25)  # 0.5 on the odd tasks, 0 on the even ones
    assert done.env_sps == pytest.approx(400.0) and done.eta_s is None
    half = got["running_here"]
    assert (half.steps, half.eval_step) == (10_000, 10_000)
    assert half.env_sps == pytest.approx(250.0) and half.eta_s == pytest.approx(10_000 / 250.0)
    # a cell without a rate of its own gets the mean of its benchmark's measured rates
    rates = [400.0, 250.0, 500.0, 500.0, 500.0, 500.0, 500.0, 500.0]
    assert got["pending"].eta_s == pytest.approx(20_000 / (sum(rates) / len(rates)))
    assert (got["pending"].eta_rate, half.eta_rate, done.eta_rate) == ("grid", "own", None)

    g = status.grid
    assert g.cells == 10 and status.groups["main"].cells == 10
    assert g.states == {"complete": 1, "running": 2, "interrupted": 3, "failed": 1,
                        "superseded": 1, "pending": 2}
    # every attempt: the job's time in train.log where it has an exit line (01:00:00 to
    # 01:03:00: complete, failed, stopped, though they trained 50 and 20 s), else the run's
    # own wall time (running here 40 s; two elsewhere and the killed one, no exit line, 20 s
    # each; superseded 40 s)
    spent = [180.0, 180.0, 180.0, 40.0, 20.0, 20.0, 20.0, 40.0]
    assert g.node_hours_spent == pytest.approx(sum(spent) / 3600)
    left = sum(s.eta_s for s in status.cells if s.state != "complete")
    assert g.node_hours_left == pytest.approx(left / 3600) and g.cells_without_rate == 0

    text = render_text(status)
    assert "MT10-v1/mtppo/seed0  complete" in text.replace("   ", "  ")
    assert "scale st: 1 of 10 cells complete, 2 running" in text
    assert json.loads(status.to_json())["grid"]["states"]["failed"] == 1


def test_node_hours_spent_count_set_aside_and_killed_attempts(tmp_path, grid):
    """Issue 28: "node-h spent" counted the current run's training time only."""
    cell = Cell("MT10", "v1", "mtppo", 0)
    run = tmp_path / grid.run_dir(cell)
    fake_run(run, cell, grid, 2, "complete", sps=400.0)  # this run trained 50 s
    # set aside by a retrain, with its job's benchmark.tsv (moved with it): 260.5 s
    retrained = run / "superseded" / "20261204T000000Z-0123456789ab-retrain"
    fake_run(retrained, cell, grid, 2, "complete", sps=100.0)
    write_text_atomic(retrained / "benchmark.tsv", "s\th:m:s\n260.5\t0:04:20\n")
    # set aside for another config after it was killed: its manifest's 100 s, no benchmark.tsv
    killed = run / "superseded" / "20261203T000000Z-fedcba987654"
    fake_run(killed, cell, grid, 1, "running", config_hash="fedcba987654", sps=100.0)

    def spent() -> float:
        status = grid_status(grid, tmp_path)
        (s,) = [s for s in status.cells if s.cell == str(cell)]
        assert s.state == "complete" and s.set_aside == 2
        assert status.grid.node_hours_spent == pytest.approx(s.spent_s / 3600)
        return s.spent_s

    assert spent() == pytest.approx(50 + 260.5 + 100)  # no train.log: the runs' own times
    # the cell's train.log keeps every attempt: the killed run's stopped one (10 min), then
    # a resumed one killed with its job script (no exit line), the retrained run's (5 min),
    # this run's (1 min): the jobs took longer than the runs trained, and that counts
    write_text_atomic(run / "train.log", "".join(f"{line}\n" for line in (
        "[workflow 2026-12-03T00:00:00Z] train ... on vm, config fedcba987654",
        "[toppo 00:05:00] update 1/2 | ...",
        "[workflow 2026-12-03T00:10:00Z] exit status -15 (trainer stopped: got SIGTERM)",
        "[workflow 2026-12-03T01:00:00Z] train ... on vm, config fedcba987654",
        "[workflow 2026-12-04T00:00:00Z] train ... on vm, config 0123456789ab",
        "[workflow 2026-12-04T00:05:00Z] exit status 0",
        "[workflow 2026-12-05T00:00:00Z] train ... on vm, config 0123456789ab",
        "[toppo 00:00:30] retrain: moved the finished run ...",
        "[workflow 2026-12-05T00:01:00Z] exit status 0")))
    assert spent() == pytest.approx(600 + 300 + 60)


def test_counts_of_one_read_singular(tmp_path):
    """Issue 28: "1 jobs", "1 cells"."""
    path = tmp_path / "one.yaml"
    path.write_text(textwrap.dedent(CONFIG).replace("seeds: 5}", "seeds: 1}").replace(
        "variants: [mtppo, toppo]", "variants: [mtppo]"))
    grid = Grid(load_config([path]))
    (cell,) = grid.cells
    run = tmp_path / grid.run_dir(cell)
    fake_run(run, cell, grid, 1)  # running on another host: its files are fresh
    write_text_atomic(run / LOCK_NAME, "pid 4242 on host node042, since 2026-12-05T00:00:00Z\n")
    text = render_text(grid_status(grid, tmp_path))
    assert "scale st: 0 of 1 cell complete, 1 running; " in text
    assert " at 1 job at once (read " in text
    fake_run(run, cell, grid, 0)  # no update yet: no rate of its own, the documented one
    (run / LOCK_NAME).unlink()
    assert "(1 cell at docs/throughput.md's rate)" in render_text(grid_status(grid, tmp_path))


def test_cli_reads_the_committed_cpu_study():
    proc = subprocess.run([sys.executable, "-m", "analysis", "status", "--configfile",
                           "config/cpu.yaml", "--json"], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["grid"]["cells"] == 33 and data["grid"]["states"]["complete"] == 33
    assert data["groups"]["diagnosis"]["cells"] == 15 and data["groups"]["learning"]["cells"] == 12
    assert data["groups"]["diagnosis_reference"]["cells"] == 6


def test_cli_names_a_bad_config_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("budgets: {MT10: -5}\n")
    proc = subprocess.run([sys.executable, "-m", "analysis", "status", "--configfile", str(bad)],
                          cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 1 and proc.stderr.startswith("python -m analysis status: error: ")
    assert str(bad) in proc.stderr and proc.stderr.count("\n") == 1


def test_a_grid_not_started_is_estimated_from_the_documented_rates(tmp_path):
    grid = Grid(load_config())
    status = grid_status(grid, tmp_path)
    n = len(grid.cells)
    assert status.grid.states["pending"] == n and status.grid.cells_at_documented_rate == n
    # the plan's model of each job on docs/throughput.md's cuda rows, evaluation and env builds
    # included: the same node-hours as the plan of the paper grid on a GPU cluster
    # (tests/test_plan.py checks that plan against the model written out)
    plan = plan_text(grid, grid.cells, gpu=True, portable=True)
    assert f"; {status.grid.node_hours_left:,.1f} node-hours in all" in plan
    assert f"({n} cells at docs/throughput.md's rate)" in render_text(status)


def test_paper_grid_reads_in_well_under_a_second_per_hundred_cells(tmp_path, monkeypatch):
    grid = Grid(load_config())
    with monkeypatch.context() as m:  # the same bytes unsynced: 1,140 fsyncs took seconds
        m.setattr(os, "fsync", lambda fd: None)
        for i, c in enumerate(grid.cells):  # a grid in full swing: a third done, the rest half-way
            fake_run(tmp_path / grid.run_dir(c), c, grid, 200 if i % 3 == 0 else 100,
                     "complete" if i % 3 == 0 else "running")
    grid_status(grid, tmp_path)  # warm the file cache, as a second call on a login node
    t0 = time.perf_counter()
    status = grid_status(grid, tmp_path)
    n = len(grid.cells)
    per_hundred = (time.perf_counter() - t0) / n * 100
    print(f"status of {n} cells: {per_hundred:.3f} s per hundred cells")
    assert status.grid.states["complete"] == len(range(0, n, 3))
    assert status.grid.states["interrupted"] == n - len(range(0, n, 3))
    assert per_hundred < 0.5
