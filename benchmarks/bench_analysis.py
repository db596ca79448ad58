"""Time the analysis pipeline on paper-sized synthetic logs: import -> load -> tables -> figures.

    .venv/bin/python benchmarks/bench_analysis.py [--seeds 10] [--evals 100] [--reps 2000] [--keep DIR]
        [--runs DIR] [--compare DIR] [--profile FILE]

Writes synthetic run directories (tests/synthetic.py, the tests' fixture) for the default report spec: MT50 and
MT10 with V1 rewards for TOPPO and MT-PPO (table 3), and MT50 with V2 rewards for the
cumulative, single-module and combiner-grid variants (ablations), each with
``--seeds`` seeds x ``--evals`` evaluations and train metrics; then times each stage, the
import of the analysis modules included, in wall time and in this process's CPU time (the
CPU time is what to compare on a machine that others load).

``--keep DIR`` writes the runs to ``DIR/runs`` and the outputs to ``DIR/out``; ``--runs DIR``
reads runs an earlier ``--keep`` wrote instead of writing them again; ``--compare DIR``
checks that every table and figure equals, byte for byte, the one in ``DIR`` (an earlier
run's ``out``); ``--profile FILE`` writes a cProfile of the pipeline (CPU time) to ``FILE``
and prints its costliest functions.
"""

from __future__ import annotations

import time

START = (time.perf_counter(), time.process_time())

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' fixtures

import synthetic

from analysis import figures, load_report_spec, tables
from analysis.protocols import RunSet
from toppo.specs.registry import GROUPS

IMPORTED = (time.perf_counter(), time.process_time())


class Stages:
    """Wall and CPU seconds of each named stage, in order."""

    def __init__(self) -> None:
        self.times: dict[str, tuple[float, float]] = {}

    def add(self, name: str, since: tuple[float, float]) -> None:
        self.times[name] = (time.perf_counter() - since[0], time.process_time() - since[1])

    def report(self) -> None:
        print("    wall       CPU")
        for stage, (wall, cpu) in self.times.items():
            print(f"{wall:8.2f} s {cpu:8.2f} s  {stage}")
        parts = [v for k, v in self.times.items() if "not part" not in k]
        print(f"{sum(w for w, _ in parts):8.2f} s {sum(c for _, c in parts):8.2f} s  "
              "total (import + load + tables + figures)")


def now() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def write_runs(root: Path, seeds: int, evals: int, updates: int) -> None:
    ablation_variants = list(dict.fromkeys([*GROUPS["cumulative"], *GROUPS["single"], *GROUPS["combiners"]]))
    groups = [("MT50", "v1", ["toppo", "mtppo"]), ("MT10", "v1", ["toppo", "mtppo"]),
              ("MT50", "v2", ablation_variants)]
    runs = synthetic.write_suite(root, scale="bench", groups=groups, seeds=range(seeds),
                                 n_evals=evals, train_updates=updates,
                                 total_steps={"MT50": 100_000_000, "MT10": 20_000_000})
    print(f"{len(runs)} runs: {seeds} seeds x {evals} evaluations; MT50 has 50 tasks")


def pipeline(runs: Path, out: Path, spec: dict, reps: int, stages: Stages) -> None:
    """Load the runs, write every table and figure to ``out``."""
    t0 = now()
    runset = RunSet.load([runs], reps=reps, seed=spec["bootstrap_seed"], train=figures.GRADNORM_VARIANTS)
    stages.add("load (eval.csv, manifest.json, train_metrics.csv)", t0)
    print(f"loaded {len(runset.evals):,} eval rows, {len(runset.train):,} train rows; bootstrap reps {reps}")

    t0 = now()
    baselines = None
    for name, build in (("table3", lambda: tables.table3(runset, baselines, spec, "bench")),
                        ("ablation_cumulative", lambda: tables.ablation_cumulative(runset, spec, "bench")),
                        ("ablation_combiners", lambda: tables.ablation_combiners(runset, spec, "bench")),
                        ("protocols", lambda: tables.protocol_breakdown(runset, spec, "bench")),
                        ("per_task", lambda: tables.per_task(runset, spec, "bench"))):
        (out / f"{name}.tex").parent.mkdir(parents=True, exist_ok=True)
        (out / f"{name}.tex").write_text(build())
    stages.add("all tables", t0)

    t0 = now()
    for name, build in (("curves", lambda: figures.training_curves(runset, spec, "bench")),
                        ("worst_k", lambda: figures.worst_k_curve(runset, spec, "bench", baselines)),
                        ("gradnorm_spread", lambda: figures.gradnorm_spread(runset, spec, "bench")),
                        ("heatmap", lambda: figures.success_heatmap(runset, spec, "bench"))):
        figures.save_figure(build(), out / "figures", name)
    stages.add("all figures (PDF + PNG)", t0)


def compare(out: Path, reference: Path) -> int:
    """Every file under ``reference`` against the same file under ``out``: the count that differ."""
    names = sorted(p.relative_to(reference) for p in reference.rglob("*") if p.is_file())
    differ = [str(n) for n in names if not (out / n).is_file() or (out / n).read_bytes() != (reference / n).read_bytes()]
    print(f"compared {len(names)} outputs with {reference}: "
          + (f"{len(differ)} differ: {', '.join(differ)}" if differ else "all byte-identical"))
    return len(differ)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--evals", type=int, default=100, help="evaluations per run")
    ap.add_argument("--updates", type=int, default=500, help="train_metrics rows per run")
    ap.add_argument("--reps", type=int, default=None, help="bootstrap resamples (default: the spec's)")
    ap.add_argument("--keep", type=Path, default=None, help="write runs and outputs here instead of a temp dir")
    ap.add_argument("--runs", type=Path, default=None, help="read the runs an earlier --keep wrote (DIR/runs)")
    ap.add_argument("--compare", type=Path, default=None, help="check the outputs against this folder, byte for byte")
    ap.add_argument("--profile", type=Path, default=None, help="write a cProfile (CPU time) of the pipeline here")
    args = ap.parse_args()

    stages = Stages()
    stages.times["import (analysis, toppo.specs.registry)"] = (IMPORTED[0] - START[0], IMPORTED[1] - START[1])
    spec = load_report_spec()
    reps = args.reps or spec["bootstrap_reps"]
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        if args.runs:
            runs = args.runs / "runs"
            if not runs.is_dir():
                ap.error(f"--runs {args.runs}: no runs folder in it (write one with --keep)")
        else:
            runs = root / "runs"
            t0 = now()
            write_runs(runs, args.seeds, args.evals, args.updates)
            stages.add("write synthetic logs (not part of the pipeline)", t0)
        out = root / "out"
        if args.profile:
            import cProfile
            import pstats

            prof = cProfile.Profile(time.process_time)
            prof.runcall(pipeline, runs, out, spec, reps, stages)
            prof.dump_stats(args.profile)
            pstats.Stats(prof).sort_stats("cumulative").print_stats(40)
        else:
            pipeline(runs, out, spec, reps, stages)
        stages.report()
        differ = compare(out, args.compare) if args.compare else 0
        if args.keep:
            print(f"outputs in {out}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
