"""Command line: ``python -m analysis {tables,figures,reproduction,status,convert} ...``.

    python -m analysis tables  --runs results/runs/paper --config config/config.yaml \\
        --out-dir results --scale paper
    python -m analysis figures --runs results/runs/paper --config config/config.yaml \\
        --out-dir results/figures --scale paper
    python -m analysis reproduction --runs results/runs/paper --config config/config.yaml \\
        --out-dir results --scale paper
    python -m analysis reference-check --runs results/runs/paper --config config/config.yaml \\
        --out-dir results --scale paper
    python -m analysis status [--configfile config/cpu.yaml] [--json]
    python -m analysis convert --help
    python -m analysis verify results/runs/cpu/MT50-v2/mtppo/seed0 [--scratch DIR] [--keep]

``--config`` is the workflow config; only its ``report:`` section is read (merged over
analysis/default_report.yaml, which is also what is used without ``--config``).

The workflow passes ``--out-dir results`` (figures: ``results/figures``) for the paper scale
and ``results/{scale}`` (``results/{scale}/figures``) for any other, so scales never mix
(``REPORT`` in workflow/rules/common.smk); the defaults below are the paper scale's.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from analysis import DEFAULT_REPORT_PATH, baseline_methods, check_report, load_report_spec
from analysis.baselines import DEFAULT_PATH as DEFAULT_BASELINES


def _add_common(p: argparse.ArgumentParser, out_default: str) -> None:
    p.add_argument("--runs", nargs="+", required=True, metavar="PATH",
                   help="run directories (containing eval.csv) or roots searched recursively for them")
    p.add_argument("--config", type=Path, default=None, metavar="YAML",
                   help=f"workflow config whose 'report:' section selects rows and protocols "
                        f"(default: {DEFAULT_REPORT_PATH.name} built in)")
    p.add_argument("--baselines", type=Path, default=DEFAULT_BASELINES, metavar="CSV",
                   help="published baselines table (default: %(default)s)")
    p.add_argument("--no-baselines", action="store_true", help="render without published baselines")
    p.add_argument("--out-dir", type=Path, default=Path(out_default), metavar="DIR",
                   help="where the files are written (default: %(default)s, the paper scale's; "
                        "the workflow writes any other scale's under results/<scale>/)")
    p.add_argument("--scale", required=True, metavar="NAME",
                   help="experiment scale name, stated in every caption (e.g. smoke, paper)")
    p.add_argument("--reps", type=int, default=None, metavar="N",
                   help="bootstrap resamples (default: the spec's bootstrap_reps)")
    p.add_argument("--seed", type=int, default=None, metavar="S",
                   help="bootstrap seed (default: the spec's bootstrap_seed)")
    p.add_argument("--partial", action="store_true",
                   help="render from the cells evaluated so far, each cut at the last evaluation "
                        "every cell of its benchmark and reward version reached (a run directory "
                        "not there yet is left out); captions say which, partial_cells.csv lists them")


STATUS_DESCRIPTION = ("One row per cell of the workflow config's grid (state, env steps, last "
                      "evaluation, rate, ETA) and totals per group, read from the run directories "
                      "only (analysis.status).")


def _add_status(status: argparse.ArgumentParser) -> argparse.ArgumentParser:
    status.add_argument("--configfile", nargs="+", action="extend", default=[], type=Path,
                        metavar="YAML", help="the run's --configfile(s), merged over "
                                             "config/config.yaml as Snakemake merges them")
    status.add_argument("--directory", type=Path, default=Path("."), metavar="DIR",
                        help="Snakemake's working directory, where results/ is (default: .)")
    status.add_argument("--json", action="store_true", help="print JSON instead of the table")
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m analysis",
                                     description="Tables, figures and baseline conversion from TOPPO run logs.")
    sub = parser.add_subparsers(dest="command", required=True,
                                metavar="{tables,figures,reproduction,reference-check,status,convert,"
                                            "verify}")
    _add_common(sub.add_parser("tables", help="write the LaTeX tables (table3, ablations, protocols, per task, diagnosis)",
                               description="Write table3.tex, ablation_cumulative.tex, ablation_combiners.tex, "
                                           "protocols.tex, per_task.tex and diagnosis.tex."), "results")
    _add_common(sub.add_parser("figures", help="write the figures as PDF and PNG",
                               description="Write curves, worst_k, gradnorm_spread, heatmap and diagnosis "
                                           "(.pdf and .png)."),
                "results/figures")
    _add_common(sub.add_parser("reproduction", help="write reproduction.tex and .csv: the paper's numbers vs ours",
                               description="Write reproduction.tex and reproduction.csv: every number of the "
                                           "report's paper methods (report.reproduction.methods) in the baselines "
                                           "file, ours under the same protocol with a 95% bootstrap CI, the "
                                           "difference and a verdict (analysis.reproduction)."), "results")
    _add_common(sub.add_parser("reference-check",
                               help="write reference_check.tex, .csv and figure: TOPPO's gain over each MT-PPO",
                               description="Write reference_check.tex, reference_check.csv and "
                                           "figures/reference_check.{pdf,png}: the paper's MT-PPO and TOPPO "
                                           "and the reference MT-PPO and TOPPO side by side (mean, IQM, "
                                           "worst-k with 95% CIs) and TOPPO's gain over each MT-PPO with a "
                                           "95% CI and a verdict (analysis.reference_check)."), "results")
    _add_status(sub.add_parser(
        "status", help="where the configured grid stands: one row per cell, totals per group",
        description=STATUS_DESCRIPTION))
    ver = sub.add_parser("verify", help="retrain a recorded cell in a scratch directory and compare",
                         description="Train the cell of RUN_DIR again from scratch (its recorded config) "
                                     "in a scratch directory, never in the record, and report: identical, or "
                                     "the first update and column where the logs differ, and whether the "
                                     "final success agrees within seed noise (analysis.verify). Exit status "
                                     "0 identical, 1 different, 2 error.")
    ver.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a finished run directory")
    ver.add_argument("--scratch", type=Path, default=None, metavar="DIR",
                     help="where to retrain (default: a temporary folder, removed afterwards)")
    ver.add_argument("--keep", action="store_true", help="keep the temporary scratch folder")
    try:
        from analysis import convert_cli
    except ImportError as e:
        reason = f"{type(e).__name__}: {e}"
        conv = sub.add_parser("convert", help=f"convert baselines (unavailable: {reason})")
        conv.set_defaults(unavailable=reason)
    else:
        convert_cli.add_parser(sub)
    return parser


def _render(args: argparse.Namespace) -> int:
    if args.reps is not None and args.reps < 1:
        raise ValueError(f"--reps must be >= 1, got {args.reps}")
    spec = load_report_spec(args.config)
    baselines = None if args.no_baselines else args.baselines
    if baselines is not None and not baselines.is_file():
        raise ValueError(f"{baselines}: baselines file not found (pass --baselines CSV or --no-baselines)")
    if baselines is not None:  # report.table3 baselines must be methods of this file
        check_report(spec, args.config or DEFAULT_REPORT_PATH, baseline_methods(baselines))
    if args.command == "tables":
        from analysis.tables import render_all
    elif args.command == "reproduction":
        from analysis.reproduction import render_all
    elif args.command == "reference-check":
        from analysis.reference_check import render_all
    else:
        from analysis.figures import render_all
    start = time.perf_counter()
    print(f"{args.command}: runs {' '.join(args.runs)} -> {args.out_dir} (scale {args.scale})", flush=True)
    paths = render_all(args.runs, spec, baselines, args.out_dir, args.scale, reps=args.reps, seed=args.seed,
                       log=lambda line: print(line, flush=True), partial=args.partial)
    print(f"{args.command}: {len(paths)} files in {time.perf_counter() - start:.1f} s", flush=True)
    return 0


def _status(args: argparse.Namespace) -> int:
    from analysis.status import grid_status, render_text
    from toppo.specs.grid import Grid, GridError, load_config

    try:
        status = grid_status(Grid(load_config(args.configfile)), args.directory)
    except (GridError, OSError) as e:
        print(f"python -m analysis status: error: {e}", file=sys.stderr)
        return 1
    print(status.to_json() if args.json else render_text(status), end="" if not args.json else "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["status"]:  # without building the convert parser (scipy): a fast start
        status = _add_status(argparse.ArgumentParser(prog="python -m analysis status",
                                                     description=STATUS_DESCRIPTION))
        return _status(status.parse_args(argv[1:]))
    args = build_parser().parse_args(argv)
    if args.command == "convert":
        if getattr(args, "unavailable", None):
            print(f"python -m analysis convert: unavailable ({args.unavailable})", file=sys.stderr)
            return 2
        from analysis import convert_cli

        return convert_cli.run(args) or 0
    if args.command == "status":
        return _status(args)
    if args.command == "verify":
        from analysis.verify import VerifyError, verify

        try:
            return 0 if verify(args.run_dir, args.scratch, args.keep) else 1
        except (VerifyError, OSError, ValueError) as e:
            print(f"python -m analysis verify: error: {e}", file=sys.stderr)
            return 2
    from analysis.logs import LogError
    from analysis.protocols import ProtocolError

    try:
        return _render(args)
    except (LogError, ProtocolError, ValueError, OSError) as e:  # OSError names its path
        print(f"python -m analysis {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
