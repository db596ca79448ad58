"""A report from what has finished (``--partial``, analysis.partial), on a copy of the
committed CPU study with one cell cut short (still running), one not started and one
started without an evaluation yet."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from analysis import figures, reproduction, tables
from analysis.latex import latex_escape
from analysis.partial import PARTIAL_CELLS
from analysis.protocols import RunSet
from toppo.specs.runfiles import write_csv_atomic, write_json_atomic

REPO = Path(__file__).resolve().parents[1]
STUDY = REPO / "results" / "runs" / "cpu"
SPEC = yaml.safe_load((REPO / "results" / "cpu" / "config.yaml").read_text())["report"]
BASELINES = REPO / "analysis" / "data" / "baselines.csv"
REPS = 50  # bootstrap resamples: enough to compare two renders, fast


def cells(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.glob("*/*/seed*/manifest.json"))


@pytest.fixture
def grid(tmp_path):
    """The CPU study's 33 cells, with MT10-v2 toppo seed 1 running at 300K of 600K steps
    (its manifest written at its start, at 100K), MT50-v2 toppo seed 2 not started and
    MT50-v2 mtppo seed 2 started but not evaluated yet."""
    root = tmp_path / "runs"
    shutil.copytree(STUDY, root)
    run = root / "MT10-v2" / "toppo" / "seed1"
    for name, columns in (("eval.csv", None), ("train_metrics.csv", None)):
        frame = pd.read_csv(run / name)
        write_csv_atomic(run / name, frame[frame.step <= 300_000].to_dict("records"), columns or list(frame.columns))
    manifest = json.loads((run / "manifest.json").read_text())
    write_json_atomic(run / "manifest.json", {**manifest, "status": "running", "env_steps": 100_000,
                                              "updates": 4, "finished_at": None})
    shutil.rmtree(root / "MT50-v2" / "toppo" / "seed2")
    started = root / "MT50-v2" / "mtppo" / "seed2"
    frame = pd.read_csv(started / "eval.csv")
    write_csv_atomic(started / "eval.csv", [], list(frame.columns))  # the header, no evaluation
    write_json_atomic(started / "manifest.json", {**json.loads((started / "manifest.json").read_text()),
                                                  "status": "running", "env_steps": 0, "updates": 0})
    # what the workflow passes: every cell's run directory, whether it exists yet or not
    return root, [str(p) for p in cells(STUDY)]


def given(root: Path, paths: list[str]) -> list[str]:
    return [str(root / Path(p).relative_to(STUDY)) for p in paths]


def test_cells_are_cut_at_the_step_every_included_cell_reached(grid):
    root, paths = grid
    runs = RunSet.load(given(root, paths), reps=REPS, train=True, partial=True)
    cov = runs.coverage
    assert cov.cutoff == {("MT10", "v2"): 300_000, ("MT50", "v2"): 160_000}
    for variant in ("toppo", "mtppo"):  # both variants, every seed, compared at 300K
        h = runs.history("MT10", "v2", variant)
        assert list(h.steps) == [100_000, 200_000, 300_000] and h.seeds == (0, 1, 2)
    assert runs.history("MT50", "v2", "toppo").seeds == (0, 1)
    assert runs.history("MT50", "v2", "mtppo").seeds == (0, 1)
    assert runs.train[runs.train.benchmark == "MT10"].step.max() == 300_000
    states = {c.name: (c.state, c.used_to) for c in cov.cells}
    assert len(states) == 33
    assert states["MT10-v2/toppo/seed1"] == ("cut", 300_000)
    assert states["MT10-v2/toppo/seed0"] == ("complete", 300_000)
    assert states["MT50-v2/toppo/seed2"] == ("not evaluated", None)
    assert states["MT50-v2/mtppo/seed2"] == ("not evaluated", None)
    assert cov.sentence() == (
        "partial report, 31 of 33 cells, each up to the last evaluation all cells of its benchmark "
        "and reward version reached: MT10-v2 12 cells (11 complete, 1 unfinished) to 300K of 600K env "
        "steps; MT50-v2 19 cells (19 complete, 0 unfinished) to 160K of 160K env steps; unfinished: "
        "MT10-v2/toppo/seed1; not evaluated yet: MT50-v2/mtppo/seed2, MT50-v2/toppo/seed2 (every "
        "cell: partial_cells.csv)")
    assert cov.group_note("MT10", "v2", "toppo") == \
        "partial: seeds 0-2 to 300K env steps, seed 1 unfinished"
    assert cov.group_note("MT50", "v2", "toppo") == "partial: seeds 0-1 to 160K env steps"


def test_full_report_of_the_same_cells_refuses_the_unfinished_ones(grid):
    root, paths = grid
    from analysis.logs import LogError

    with pytest.raises(LogError, match="toppo/seed2: no such file or directory"):
        RunSet.load(given(root, paths), reps=REPS)
    started = [p for p in paths if "MT50-v2/toppo/seed2" not in p]
    with pytest.raises(LogError, match="no evaluation rows yet"):
        RunSet.load(given(root, started), reps=REPS)
    evaluated = [p for p in started if "MT50-v2/mtppo/seed2" not in p]
    with pytest.raises(LogError, match="past the manifest's env_steps 100000"):
        RunSet.load(given(root, evaluated), reps=REPS)


def test_tables_figures_and_verdicts_say_which_cells(grid, tmp_path):
    root, paths = grid
    out = tmp_path / "partial"
    proc = subprocess.run([sys.executable, "-m", "analysis", "tables", "--partial", "--runs",
                           *given(root, paths), "--config", str(REPO / "results" / "cpu" / "config.yaml"),
                           "--out-dir", str(out), "--scale", "cpu", "--reps", str(REPS)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table3 = (out / "table3.tex").read_text()
    assert "Partial report, 31 of 33 cells" in table3 and "MT10-v2/toppo/seed1" in table3
    assert "& 300K &" in table3  # ours, at the cutoff
    for name in tables.TABLE_FILES:
        assert "Partial report, 31 of 33 cells" in (out / f"{name}.tex").read_text(), name
    listed = pd.read_csv(out / PARTIAL_CELLS)
    assert len(listed) == 33 and listed.state.value_counts().to_dict() == {
        "complete": 30, "not evaluated": 2, "cut": 1}

    runs = given(root, paths)
    entries = reproduction.reproduction(RunSet.load(runs, reps=REPS, partial=True),
                                        pd.read_csv(BASELINES), SPEC)
    assert entries and all(e.verdict.endswith(")") and "(partial: seeds " in e.verdict for e in entries)
    written = figures.render_all(runs, SPEC, BASELINES, tmp_path / "figs", "cpu", reps=REPS, log=None,
                                 partial=True)
    assert tmp_path / "figs" / PARTIAL_CELLS in written


def test_a_partial_report_of_finished_cells_has_the_full_numbers(tmp_path):
    """Every cell complete: the partial tables are the full ones plus the caption's note."""
    paths = [str(p) for p in cells(STUDY)]
    tables.render_all(paths, SPEC, BASELINES, tmp_path / "full", "cpu", reps=REPS, log=None)
    tables.render_all(paths, SPEC, BASELINES, tmp_path / "part", "cpu", reps=REPS, log=None, partial=True)
    note = RunSet.load(paths, reps=REPS, partial=True).partial_note()
    assert note.startswith("partial report, 33 of 33 cells") and "unfinished:" not in note
    latex = latex_escape(note[0].upper() + note[1:])
    for name in tables.TABLE_FILES:
        full = (tmp_path / "full" / f"{name}.tex").read_text()
        part = (tmp_path / "part" / f"{name}.tex").read_text()
        assert part.replace(f" {latex}.", "") == full, name
