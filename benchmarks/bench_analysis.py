"""Time the analysis pipeline on paper-sized synthetic logs: load -> tables -> figures.

    .venv/bin/python benchmarks/bench_analysis.py [--seeds 10] [--evals 100] [--reps 2000] [--keep DIR]

Writes synthetic run directories (tests/synthetic.py, the tests' fixture) for the default report spec: MT50 and
MT10 with V1 rewards for TOPPO and MT-PPO (table 3), and MT50 with V2 rewards for the
cumulative, single-module and combiner-grid variants (ablations), each with
``--seeds`` seeds x ``--evals`` evaluations and train metrics; then times each stage.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' fixtures

import synthetic

from analysis import figures, load_report_spec, tables
from analysis.protocols import RunSet
from toppo.specs.registry import GROUPS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--evals", type=int, default=100, help="evaluations per run")
    ap.add_argument("--updates", type=int, default=500, help="train_metrics rows per run")
    ap.add_argument("--reps", type=int, default=None, help="bootstrap resamples (default: the spec's)")
    ap.add_argument("--keep", type=Path, default=None, help="write runs and outputs here instead of a temp dir")
    args = ap.parse_args()

    spec = load_report_spec()
    reps = args.reps or spec["bootstrap_reps"]
    ablation_variants = list(dict.fromkeys([*GROUPS["cumulative"], *GROUPS["single"], *GROUPS["combiners"]]))
    groups = [("MT50", "v1", ["toppo", "mtppo"]), ("MT10", "v1", ["toppo", "mtppo"]),
              ("MT50", "v2", ablation_variants)]
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        times = {}
        t0 = time.perf_counter()
        runs = synthetic.write_suite(root / "runs", scale="bench", groups=groups, seeds=range(args.seeds),
                                     n_evals=args.evals, train_updates=args.updates,
                                     total_steps={"MT50": 100_000_000, "MT10": 20_000_000})
        times["write synthetic logs (not part of the pipeline)"] = time.perf_counter() - t0
        print(f"{len(runs)} runs: {args.seeds} seeds x {args.evals} evaluations; MT50 has 50 tasks; "
              f"bootstrap reps {reps}")

        t0 = time.perf_counter()
        runset = RunSet.load([root / "runs"], reps=reps, seed=spec["bootstrap_seed"],
                             train=figures.GRADNORM_VARIANTS)
        times["load (eval.csv, manifest.json, train_metrics.csv)"] = time.perf_counter() - t0
        print(f"loaded {len(runset.evals):,} eval rows, {len(runset.train):,} train rows")

        t0 = time.perf_counter()
        out = root / "out"
        baselines = None
        for name, build in (("table3", lambda: tables.table3(runset, baselines, spec, "bench")),
                            ("ablation_cumulative", lambda: tables.ablation_cumulative(runset, spec, "bench")),
                            ("ablation_combiners", lambda: tables.ablation_combiners(runset, spec, "bench")),
                            ("protocols", lambda: tables.protocol_breakdown(runset, spec, "bench")),
                            ("per_task", lambda: tables.per_task(runset, spec, "bench"))):
            (out / f"{name}.tex").parent.mkdir(parents=True, exist_ok=True)
            (out / f"{name}.tex").write_text(build())
        times["all tables"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        for name, build in (("curves", lambda: figures.training_curves(runset, spec, "bench")),
                            ("worst_k", lambda: figures.worst_k_curve(runset, spec, "bench", baselines)),
                            ("gradnorm_spread", lambda: figures.gradnorm_spread(runset, spec, "bench")),
                            ("heatmap", lambda: figures.success_heatmap(runset, spec, "bench"))):
            figures.save_figure(build(), out / "figures", name)
        times["all figures (PDF + PNG)"] = time.perf_counter() - t0

        for stage, seconds in times.items():
            print(f"{seconds:8.2f} s  {stage}")
        total = sum(v for k, v in times.items() if "not part" not in k)
        print(f"{total:8.2f} s  total (load + tables + figures)")
        if args.keep:
            print(f"outputs in {out}")


if __name__ == "__main__":
    main()
